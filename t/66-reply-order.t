# A transfer's final reply comes after its data's end, as on a direct
# connection: ftpfwd holds the server's 226 until the server's bytes
# have all been passed on to the client (active mode: its own join has
# passed their end on; passive: the master has closed the channel).  Some clients take a 226 before the data's
# end for the end of their data (lftp then hangs at the end of its
# script).  The client here reads the data while it waits for the
# reply and closes the data connection only after it, so it sees the
# order exactly as it comes.
import hashlib
import os
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402

TRANSFERS = 200
SIZE = 64 * 1024

t = L.Tap()
lab = L.Lab.started(t, "order")
with lab.setup(t):
    vs = lab.start_vsftpd()
    fwd = lab.start_ftpfwd(vs.port)
src = os.path.join(vs.root, "f")
L.make_file(src, SIZE)
os.chmod(src, 0o644)
want = L.sha256(src)


def data_socket(c, active):
    """The data connection of the next RETR: (socket, or None and why)."""
    if not active:
        r = c.cmd("EPSV")
        if not r.startswith("229 "):
            return None, r
        port = int(r.split("|||")[1].split("|")[0])
        d = socket.create_connection(("127.0.0.1", port), timeout=20)
        c.send(("RETR %s/f\r\n" % vs.cwd).encode())
        first = c.reply()
        return (d, first) if first.startswith("150 ") else (None, first)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    r = c.cmd(L.port_command(ls.getsockname()[1]))
    if not r.startswith("200 "):
        return None, r
    c.send(("RETR %s/f\r\n" % vs.cwd).encode())
    first = c.reply()
    if not first.startswith("150 "):
        return None, first
    ls.settimeout(20)
    d, _ = ls.accept()
    ls.close()
    return d, first


def one_retr(c, active):
    """A RETR: (the data's sha256, EOF before the reply?, reply)."""
    d, first = data_socket(c, active)
    if d is None:
        return None, False, first
    data, eof_first, reply = b"", None, ""
    deadline = time.monotonic() + 20
    while not reply and time.monotonic() < deadline:
        if b"\n" in c.buf:     # it came with the 150
            reply = c.reply()
            break
        watch = [c.sock] + ([d] if eof_first is None else [])
        ready, _, _ = select.select(watch, [], [], 1)
        if d in ready:
            chunk = d.recv(65536)
            data += chunk
            if not chunk:
                eof_first = True
        if c.sock in ready:
            reply = c.reply()
    # Was the data's end there when the reply came?  Read what is
    # there without waiting: on loopback what was sent before the reply
    # has arrived before it.
    d.setblocking(False)
    try:
        while not eof_first:
            chunk = d.recv(65536)
            data += chunk
            eof_first = not chunk
    except BlockingIOError:
        pass
    # The rest of the data, if the reply overtook it.
    d.settimeout(10)
    while not eof_first:
        chunk = d.recv(65536)
        if not chunk:
            break
        data += chunk
    d.close()
    return hashlib.sha256(data).hexdigest(), bool(eof_first), reply


for mode in ("active", "passive"):
    c = L.Raw(fwd.port)
    c.login(vs.user, vs.password)
    c.cmd("TYPE I")
    results = [one_retr(c, mode == "active") for _ in range(TRANSFERS)]
    intact = sum(1 for s, _, r in results
                 if s == want and r.startswith("226"))
    overtaken = sum(1 for s, e, r in results
                    if r.startswith("226") and not e)
    t.is_(intact, TRANSFERS, "%d %s RETRs of %d KiB: all 226, all intact "
          "by sha256" % (TRANSFERS, mode, SIZE // 1024))
    t.is_(overtaken, 0, "%s: no 226 reached the client before its data's "
          "end" % mode)
    t.is_(c.cmd("NOOP")[:4], "200 ", "%s: the session goes on" % mode)
    c.close()
t.done()
