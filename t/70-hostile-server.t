# A server that sends what it should not: ftpfwd answers the client
# precisely, keeps the session, and stays up for everyone else; the same
# when the bad reply answers ftpfwd's own PASV (ActiveMode=passive).
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import Ftplib                        # noqa: E402

PAYLOAD_SUM = hashlib.sha256(b"hostile but honest data\n" * 1000).hexdigest()

t = L.Tap()
lab = L.Lab.started(t, "hostile")
with lab.setup(t):
    port = L.free_port()
    lab.spawn([L.PY, os.path.join(L.HERE, "hostile_ftpd.py"), str(port)],
              "hostile.log")
    L.wait_for("hostile_ftpd", lambda: "ready" in lab.log("hostile.log"))
    fwd = lab.start_ftpfwd(port, "-o", "IdleTimeout=3")


def session(user):
    c = L.Raw(fwd.port)
    c.login(user, "x")
    return c


for user, cmd in (("garbage", "PASV"), ("range", "PASV"),
                  ("portzero", "PASV"), ("epsvbad", "EPSV"),
                  ("longpasv", "PASV")):
    c = session(user)
    if cmd == "EPSV":
        c.cmd("FEAT")       # so that ftpfwd, too, sends EPSV upstream
    t.is_(c.cmd(cmd), "425 ftpfwd: cannot parse the server's passive reply",
          "%s reply to %s: 425 from ftpfwd" % (user, cmd))
    t.is_(c.cmd("NOOP"), "200 ok", "%s: the session goes on" % user)
    c.close()


# The same replies to ftpfwd's own PASV (ActiveMode=passive): the
# client's transfer command gets the 425, and is not sent on.
with lab.setup(t):
    a2p = lab.start_ftpfwd(port, "-o", "ActiveMode=passive",
                           log="ftpfwd-a2p.log")
for user in ("garbage", "range", "portzero", "longpasv"):
    c = L.Raw(a2p.port)
    c.login(user, "x")
    mine = c.sock.getsockname()[1]
    c.cmd(L.port_command(mine))
    t.is_(c.cmd("RETR x"), "425 ftpfwd: cannot parse the server's passive "
          "reply", "%s reply to ftpfwd's PASV: RETR gets 425" % user)
    t.is_(c.cmd("NOOP"), "200 ok", "%s: the session goes on" % user)
    c.close()


# The user names the server's trick; the file is always x.
for user, what in (("elsewhere", "a 227 naming another host is ignored "
                    "(PasvAddress=ignore)"),
                   ("multiline", "a multi-line 227 is rewritten"),
                   ("split", "replies split into single bytes")):
    ok, text = L.fetch(Ftplib(fwd.port, user, "x", False), "x",
                       lab.path("got-" + user), PAYLOAD_SUM)
    t.ok(ok, what + ": the download arrives intact", text)
    ok, text = L.fetch(Ftplib(a2p.port, user, "x", True), "x",
                       lab.path("got-a2p-" + user), PAYLOAD_SUM)
    t.ok(ok, what + ", to ftpfwd's own PASV: the active download arrives "
         "intact", text)

# PasvAddress: the 227's address (127.0.0.2 here) is ignored by default
# and used with PasvAddress=trust.
trusting = lab.start_ftpfwd(port, "-o", "PasvAddress=trust",
                            log="ftpfwd-trust.log")
for f, want in ((fwd, "127.0.0.1"), (trusting, "127.0.0.2")):
    c = L.Raw(f.port)
    c.login("elsewhere", "x")
    r = c.cmd("PASV")
    c.close()
    t.ok(r.startswith("227 ") and ("passive port %s -> %s:" % (
         L.ftp_port_of(r), want)) in lab.log(f.logname),
         "PasvAddress=%s: the data connection goes to %s" %
         ("trust" if f is trusting else "ignore", want), r)

# A server that closes the control connection mid-transfer.
c = session("dropper")
c.cmd("PASV")
r = c.cmd("RETR x")
t.is_((r, c.reply()), ("150 here it comes", "421 ftpfwd: the FTP server "
      "closed the control connection"), "a server gone mid-transfer: 421")
t.ok(c.closed(), "and the client's connection closes")

# A server that never answers: the session is idle, and IdleTimeout ends
# it with 421 while other sessions are served.
mute = L.Raw(fwd.port)
mute.reply()
mute.send(b"USER mute\r\n")
ok, text = L.fetch(Ftplib(fwd.port, "plain", "x", False), "x",
                   lab.path("got-plain"), PAYLOAD_SUM)
t.ok(ok, "a mute server's session stalls no other", text)
mute.sock.settimeout(15)
t.is_(mute.reply(), "421 ftpfwd: idle timeout, closing control connection",
      "the mute server's client gets 421 at IdleTimeout")
t.ok(fwd.poll() is None, "ftpfwd is still running")
t.is_(lab.remote_listeners(), [], "no forward left behind")
t.done()
