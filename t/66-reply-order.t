# A transfer's final reply comes after its data's end, as on a direct
# connection: ftpfwd holds the server's 226 until the server's bytes
# have all been passed on to the client (active mode: its own join has
# passed their end on; passive: no process holds the client's socket
# any more once the master has written it and closed it).  Some clients
# take a 226 before the data's end for the end of their data (lftp then
# hangs at the end of its script).  The client here reads the data while
# it waits for the reply and closes the data connection only after it,
# so it sees the order exactly as it comes.  pyftpdlib sends its 226 as
# soon as it has written the data, vsftpd only once its lingering close
# is done, so only the former tests the hold in passive mode well.
import hashlib
import os
import select
import shutil
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
    py = lab.start_pyftpdlib()
    fwd = lab.start_ftpfwd(vs.port)
    fwd_py = lab.start_ftpfwd(py.port, log="ftpfwd-py.log")
    fwd_xl = lab.start_ftpfwd(vs.port, "-o", "ActiveMode=passive",
                              log="ftpfwd-xl.log")
src = os.path.join(vs.root, "f")
L.make_file(src, SIZE)
os.chmod(src, 0o644)
shutil.copy(src, os.path.join(py.root, "f"))
want = L.sha256(src)


def data_socket(c, active, path):
    """The data connection of the next RETR: (socket, or None and why)."""
    if not active:
        r = c.cmd("EPSV")
        if not r.startswith("229 "):
            return None, r
        port = int(r.split("|||")[1].split("|")[0])
        d = socket.create_connection(("127.0.0.1", port), timeout=20)
        c.send(("RETR %s\r\n" % path).encode())
        first = c.reply()
        return (d, first) if first[:3] in ("125", "150") else (None, first)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    r = c.cmd(L.port_command(ls.getsockname()[1]))
    if not r.startswith("200 "):
        return None, r
    c.send(("RETR %s\r\n" % path).encode())
    first = c.reply()
    if first[:3] not in ("125", "150"):
        return None, first
    ls.settimeout(20)
    d, _ = ls.accept()
    ls.close()
    return d, first


def one_retr(c, active, path):
    """A RETR: (the data's sha256, EOF before the reply?, reply)."""
    d, first = data_socket(c, active, path)
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


cases = [("active", vs, fwd, True, vs.cwd + "/f"),
         ("passive", vs, fwd, False, vs.cwd + "/f"),
         ("passive to pyftpdlib", py, fwd_py, False, "f"),
         ("ActiveMode=passive", vs, fwd_xl, True, vs.cwd + "/f")]
for mode, srv, f, active, path in cases:
    c = L.Raw(f.port)
    c.login(srv.user, srv.password)
    c.cmd("TYPE I")
    results = [one_retr(c, active, path) for _ in range(TRANSFERS)]
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

# The transfer command before the connection, as some clients send it:
# the connection goes to the master as it comes, which way its data
# goes taken from the command already sent.  An upload taken for a
# download would never be read, and hang.
def command_first(c, line):
    """EPSV, then line, then the connection: (socket, first reply)."""
    r = c.cmd("EPSV")
    if not r.startswith("229 "):
        return None, r
    c.send((line + "\r\n").encode())
    d = socket.create_connection(("127.0.0.1", int(r.split("|||")[1].split(
        "|")[0])), timeout=20)
    return d, c.reply()


c = L.Raw(fwd.port)
c.login(vs.user, vs.password)
c.cmd("TYPE I")
whole = 0
for _ in range(20):
    d, first = command_first(c, "RETR %s/f" % vs.cwd)
    data = L.recv_all(d) if d is not None else b""
    final = c.reply() if d is not None else first
    whole += (hashlib.sha256(data).hexdigest() == want and
              final.startswith("226 "))
t.is_(whole, 20, "20 passive RETRs sent before connecting: all 226, all "
      "intact by sha256")
up = os.urandom(SIZE)
d, first = command_first(c, "STOR %s/up" % vs.cwd)
if d is not None:
    d.sendall(up)
    d.close()
final = c.reply() if d is not None else first
stored = os.path.join(vs.root, "up")
t.ok(final.startswith("226 ") and os.path.exists(stored) and
     L.sha256(stored) == hashlib.sha256(up).hexdigest(),
     "a passive STOR sent before connecting: 226, stored intact",
     "got: %s then %s" % (first, final))
c.close()

# A client that closes its data connection in the middle of a passive
# download: the server learns it as it would straight from the client,
# and says so (426) instead of a 226 for data that never arrived.  2 GiB
# (sparse) take seconds through ssh: the server is still sending.
big = os.path.join(vs.root, "big")
with open(big, "wb") as f:
    f.truncate(2 << 30)
os.chmod(big, 0o644)
c = L.Raw(fwd.port)
c.login(vs.user, vs.password)
c.cmd("TYPE I")
r = c.cmd("EPSV")
d = socket.create_connection(("127.0.0.1", int(r.split("|||")[1].split(
    "|")[0])), timeout=20)
c.send(("RETR %s/big\r\n" % vs.cwd).encode())
first, got = c.reply(), 0
while first[:3] in ("125", "150") and got < 1 << 20:
    got += len(d.recv(65536))
d.close()
c.sock.settimeout(60)
final = c.reply()
t.ok(final.startswith("426 "), "passive RETR cut short by the client after "
     "%d bytes: the server's 426" % got, "got: %s then %s" % (first, final))
t.is_(c.cmd("NOOP")[:4], "200 ", "and the session goes on")
c.close()
t.done()
