# ftpfwd under valgrind's memcheck through a day in its life: every
# client in both modes, ABOR, refusals, a pipelined burst, the master
# killed and restarted, SIGTERM; and again with each side in the other
# mode (ActiveMode=passive, PassiveMode=active).  No invalid access, no
# leak.
import ftplib
import os
import re
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import CLIENTS, Ftplib               # noqa: E402

if L.SANITIZED:
    print("1..0 # SKIP valgrind cannot run an ASan build; the plain "
          "make check runs this")
    sys.exit(0)
t = L.Tap()
lab = L.Lab.started(t, "memcheck")
with lab.setup(t):
    srv = lab.start_vsftpd()
src = L.make_file(os.path.join(srv.root, "f"), 3 * 1000 * 1000)
srcsum = L.sha256(src)


def under_valgrind(name, *args):
    """ftpfwd under memcheck: the process, its port, its report."""
    report = lab.path(name + "-valgrind.txt")
    p = lab.start_ftpfwd(srv.port, *args, log=name + ".log", timeout=120,
                         under=["valgrind", "--quiet", "--leak-check=full",
                                "--show-leak-kinds=definite,indirect",
                                "--errors-for-leak-kinds=definite,indirect",
                                "--error-exitcode=99",
                                "--log-file=" + report])
    return p, p.port, report


def report_clean(p, report, what):
    with open(report) as f:
        # "--pid--" lines are valgrind's notes on itself (3.19 does not
        # know pidfd_open(2), so ftpfwd polls the master's pid instead);
        # errors and leaks are "==pid==" lines.
        text = "".join(ln for ln in f if not re.match(r"--\d+-- ", ln))
    t.ok(p.returncode == 0 and text.strip() == "",
         "valgrind%s: no invalid access, no leak (exit %d)" %
         (what, p.returncode), text)


def every_client(port, what):
    done = 0
    for c in L.matrix(CLIENTS, port, srv):
        tag = "%s-%s-%d" % (c.name, c.mode, len(what))
        done += all([transfer()[0] for _, transfer in L.both_ways(
            c, srv, "f", lab.path("o-" + tag), src, "u-" + tag, srcsum)])
    t.is_(done, 2 * len(CLIENTS), "every client, both modes, under "
          "valgrind" + what)


def aborts(port):
    for active in (False, True):
        f = srv.client(Ftplib, port, active).session()
        conn = f.transfercmd("RETR f")
        conn.recv(1000)
        if active:
            conn.close()
        try:
            f.abort()
            f.getresp()
        except ftplib.Error:
            pass
        conn.close()
        f.close()                       # hang up without QUIT


# The other modes first, while the master is young.
p, port, report = under_valgrind("turned", "-o", "ActiveMode=passive", "-o",
                                 "PassiveMode=active")
every_client(port, " in the other modes")
aborts(port)
c = L.Raw(port)
c.login(srv.user, srv.password)
dead = L.free_port()
c.cmd("CWD " + srv.cwd)
# A dead data port (425), then a passive port the client never uses:
# the server's connection waits in a half-made pair when it hangs up.
for line in (L.port_command(dead), "RETR f",
             "EPSV ALL", "PORT 127,0,0,1,4,1", "EPSV", "RETR f"):
    c.cmd(line)
c.close()
p.send_signal(signal.SIGTERM)
p.wait(timeout=120)
report_clean(p, report, " in the other modes")

p, port, report = under_valgrind("ftpfwd")
every_client(port, "")
aborts(port)
c = L.Raw(port)
c.login(srv.user, srv.password)
for line in ("PORT 1,2,3", "EPRT |9|x|1|", "AUTH TLS", "LPSV",
             "PORT 127,0,0,1,0,21"):
    c.cmd(line)
c.send(b"NOOP\r\n" * 300)
t.is_(sum(c.reply().startswith("200") for _ in range(300)), 300,
      "300 pipelined commands under valgrind")
c.close()

c = L.Raw(port)
c.login(srv.user, srv.password)
os.kill(lab.master_pid, signal.SIGTERM)
c.sock.settimeout(10)
t.is_(c.reply(), "421 ftpfwd: ssh connection closed", "master gone: 421")
c.close()
lab.start_master()
c = L.Raw(port, timeout=30)
c.login(srv.user, srv.password)
p.send_signal(signal.SIGTERM)
t.is_(c.reply(), "421 ftpfwd: shutting down", "SIGTERM: 421")
p.wait(timeout=120)
report_clean(p, report, "")
t.done()
