# Faults: the master dies mid-transfer, sshd's forwarding policy says no
# in each of its ways, and clients vanish mid-command and mid-transfer.
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import Ftplib                        # noqa: E402

t = L.Tap()


def lab_with(name, sshd_extra=(), *ftpfwd_args):
    new = L.Lab.started(t, name, list(sshd_extra))
    with new.setup(t):
        srv = new.start_vsftpd()
        fwd = new.start_ftpfwd(srv.port, *ftpfwd_args)
    L.make_file(os.path.join(srv.root, "f50m"), 50 * 1000 * 1000)
    return new, srv, fwd


# -- The master dies in the middle of a transfer ------------------------
lab, srv, fwd = lab_with("faults")
busy = srv.client(Ftplib, fwd.port).session(timeout=10)
conn = busy.transfercmd("RETR f50m")
conn.recv(65536)                       # the transfer is under way
idle = L.Raw(fwd.port)
idle.login(srv.user, srv.password)
start = time.monotonic()
os.kill(lab.master_pid, signal.SIGKILL)
for who, sock in (("the transferring client", busy.sock),
                  ("an idle client", idle.sock)):
    sock.settimeout(2)
    try:
        data = b""
        while b"\n" not in data:
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
        line = data.decode("utf-8", "replace").strip()
    except OSError as e:
        line = repr(e)
    t.is_(line, "421 ftpfwd: ssh connection closed",
          "master killed mid-transfer: %s gets 421 within 2 s" % who)
t.ok(time.monotonic() - start < 4, "both told within the same 2 s windows")
conn.close()
busy.close()
idle.close()
t.ok(fwd.poll() is None, "ExitWithMaster=no: ftpfwd keeps listening")
# A killed master leaves its socket behind, and ssh will not replace it:
# remove it, as its user would.
os.unlink(lab.ctl)
lab.start_master()
c = L.Raw(fwd.port)
t.ok(c.login(srv.user, srv.password)[1].startswith("230"),
     "a new master at the same path serves again")
c.close()

# -- Clients that vanish ------------------------------------------------
c = L.Raw(fwd.port)
c.login(srv.user, srv.password)
c.send(b"PORT 127,0,0")                # mid-command, no end of line
c.close()
f = srv.client(Ftplib, fwd.port, True).session(timeout=10)
conn = f.transfercmd("RETR f50m")      # active: a remote forward is open
conn.recv(65536)
conn.close()
f.close()                              # mid-transfer, control and data
L.wait_for("the forward to be cancelled", lambda: not lab.remote_listeners(),
           timeout=15)
t.is_(lab.remote_listeners(), [], "clients gone mid-command and "
      "mid-transfer: no forward left")
c = L.Raw(fwd.port)
t.ok(c.login(srv.user, srv.password)[1].startswith("230"),
     "and the next client is served")
c.close()
lab.stop()

# -- sshd's forwarding policy -------------------------------------------
REFUSED = ("425 ftpfwd: ssh refused the remote forward: remote port "
           "forwarding failed for listen port 0")
for policy in (["PermitListen none"], ["AllowTcpForwarding local"]):
    lab, srv, fwd = lab_with("policy", policy, "-o", "ActiveMode=forward")
    c = L.Raw(fwd.port)
    c.login(srv.user, srv.password)
    t.is_(c.cmd("PORT 127,0,0,1,4,1"), REFUSED,
          "%s: ActiveMode=forward: active gets 425 with ssh's reason" %
          policy[0])
    r = c.cmd("EPSV")
    t.ok(r.startswith("229 "), "%s: the session goes on, EPSV answered" %
         policy[0], r)
    c.close()
    # The default, ActiveMode=auto, takes the PORT and goes passive.
    with lab.setup(t):
        auto = lab.start_ftpfwd(srv.port, log="ftpfwd-auto.log")
    c = L.Raw(auto.port)
    c.login(srv.user, srv.password)
    t.is_(c.cmd("PORT 127,0,0,1,4,1"), "200 PORT command successful",
          "%s: ActiveMode=auto: PORT taken, to go passive" % policy[0])
    c.close()
    lab.stop()
for policy in (["AllowTcpForwarding no"], ["PermitOpen none"]):
    lab, srv, fwd = lab_with("policy", policy)
    c = L.Raw(fwd.port)
    r = c.reply()
    t.ok(r.startswith("421 ftpfwd: cannot reach 127.0.0.1:%d through ssh: "
                      % srv.port), "%s: 421 with the reason" % policy[0], r)
    t.ok(c.closed(), "%s: and closed" % policy[0])
    t.ok(fwd.poll() is None, "%s: ftpfwd stays up" % policy[0])
    lab.stop()
t.done()
