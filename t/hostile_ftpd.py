"""An FTP server that misbehaves on purpose, for t/70-hostile-server.t:
no real server sends these replies on demand.  It speaks just enough FTP
(USER, PASS, FEAT, TYPE, PASV, EPSV, RETR, QUIT) and serves one file from a
real passive listener; its PASV/EPSV reply is chosen by the client's
USER name.  usage: hostile_ftpd.py port"""

import socket
import sys
import threading

PAYLOAD = b"hostile but honest data\n" * 1000


def replies_for(user, port):
    p1, p2 = port >> 8, port & 255
    good = "227 Entering Passive Mode (127,0,0,1,%d,%d)." % (p1, p2)
    return {
        "garbage": ["227 I will not tell you"],
        "range": ["227 Entering Passive Mode (127,0,0,1,300,%d)." % p2],
        "portzero": ["227 Entering Passive Mode (127,0,0,1,0,0)."],
        "elsewhere": ["227 Entering Passive Mode (127,0,0,2,%d,%d)." %
                      (p1, p2)],
        "multiline": ["227-Entering Passive Mode", good[:3] + " " +
                      good[4:]],
        "epsvbad": ["229 Entering Extended Passive Mode (|||99999|)"],
        # longer than ftpfwd will rewrite, though its last line is good
        "longpasv": ["227-" + "x" * 5000, good],
    }.get(user, [good])


def serve(conn):
    f = conn.makefile("rb")
    split = False
    user = ""
    lst = None

    def send(text):
        data = (text + "\r\n").encode()
        if split:                   # a reply one byte per segment
            for b in data:
                conn.sendall(bytes([b]))
        else:
            conn.sendall(data)

    send("220 hostile ready")
    for raw in f:
        line = raw.decode("latin-1").strip()
        verb, _, arg = line.partition(" ")
        verb = verb.upper()
        if verb == "USER":
            user = arg
            split = user == "split"
            if user == "mute":
                threading.Event().wait()    # never answer again
            send("331 send password")
        elif verb == "PASS":
            send("230 ok")
        elif verb == "FEAT":
            for r in ("211-Features:", " EPSV", " EPRT", "211 End"):
                send(r)
        elif verb in ("PASV", "EPSV"):
            lst = socket.socket()
            lst.bind(("127.0.0.1", 0))
            lst.listen(1)
            port = lst.getsockname()[1]
            if verb == "EPSV":
                send("229 Entering Extended Passive Mode (|||%d|)" % port
                     if user != "epsvbad" else replies_for(user, port)[0])
            else:
                for r in replies_for(user, port):
                    send(r)
        elif verb == "RETR" and user == "dropper":
            send("150 here it comes")
            conn.close()            # and gone, mid-transfer
            return
        elif verb == "RETR" and lst is not None:
            send("150 here it comes")
            d, _ = lst.accept()
            d.sendall(PAYLOAD)
            d.close()
            lst.close()
            lst = None
            send("226 done")
        elif verb == "QUIT":
            send("221 bye")
            break
        else:
            send("200 ok")
    conn.close()


def main():
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", int(sys.argv[1])))
    s.listen(16)
    print("hostile_ftpd ready", flush=True)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
