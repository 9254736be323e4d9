# ftpfwd as a process: its command line, exit codes and messages, -f and
# -W, limits, and what happens when the master or sshd says no.
import ftplib
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import Curl, Ftplib                  # noqa: E402

t = L.Tap()
lab = L.Lab.started(t, "process")
with lab.setup(t):
    srv = lab.start_pyftpdlib()
L.make_file(os.path.join(srv.root, "f1m"), 1000 * 1000)
L.make_file(os.path.join(srv.root, "f50m"), 50 * 1000 * 1000)
want = L.sha256(os.path.join(srv.root, "f1m"))


def ftpfwd(*args, timeout=30):
    return subprocess.run([L.FTPFWD] + list(args), capture_output=True,
                          text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout)


# -- The command line --------------------------------------------------
r = ftpfwd("-V")
t.ok(r.returncode == 0 and r.stdout.startswith("ftpfwd "), "-V prints "
     "the version", r.stdout + r.stderr)
r = ftpfwd("-L", "nonsense", "-S", lab.ctl)
t.ok(r.returncode == 1 and "bad -L specification \"nonsense\"" in r.stderr,
     "a bad -L: exit 1 and says why", r.stderr)
r = ftpfwd("-o", "NoSuchOption=1", "-S", lab.ctl)
t.ok(r.returncode == 1 and "unknown option \"NoSuchOption\"" in r.stderr,
     "an unknown -o: exit 1 and names it", r.stderr)
for name, value, says in (
        ("ActiveMode", "sideways", "ActiveMode must be forward, passive, "
         "auto or off, not \"sideways\""),
        ("PassiveMode", "auto", "PassiveMode must be forward or active, "
         "not \"auto\""),
        ("ActiveBindAddress", "localhost", "ActiveBindAddress must be a "
         "numeric address, not \"localhost\"")):
    r = ftpfwd("-o", "%s=%s" % (name, value), "-S", lab.ctl)
    t.ok(r.returncode == 1 and says in r.stderr,
         "a bad %s: exit 1 and says why" % name, r.stderr)
r = ftpfwd("-L", "0:127.0.0.1:99999", "-S", lab.ctl)
t.ok(r.returncode == 1 and "99999" in r.stderr, "a port above 65535 is "
     "refused before any master sees it", r.stderr)
r = ftpfwd()
t.ok(r.returncode == 1 and "usage:" in r.stderr, "no destination: usage",
     r.stderr)

# -- No master ---------------------------------------------------------
nowhere = lab.path("no-such-ctl")
r = ftpfwd("-S", nowhere)
t.is_((r.returncode, r.stderr.strip()),
      (255, "ftpfwd: no ControlMaster at %s: No such file or directory "
       "(start one with: ssh -fNM -S %s destination)" % (nowhere, nowhere)),
      "no master at -S: exit 255, the path and the fix")
cfg = lab.path("ssh_config_nomaster")
with open(lab.ssh_config) as f, open(cfg, "w") as o:
    o.write(f.read().replace(lab.ctl, nowhere))
r = ftpfwd("-F", cfg, "lab")
t.is_((r.returncode, r.stderr.strip()),
      (255, "ftpfwd: no ControlMaster at %s: No such file or directory "
       "(start one with: ssh -fNM lab)" % nowhere),
      "no master for a destination: found by ssh -G, exit 255")

# -- destination through ssh -G ---------------------------------------
p = lab.spawn([L.FTPFWD, "-d", "-F", lab.ssh_config, "-L",
               "127.0.0.1:0:127.0.0.1:%d" % srv.port, "lab"], "byname.log")
L.wait_for("ftpfwd by name", lambda: "ready, master at %s" % lab.ctl in
           lab.log("byname.log") or p.poll() is not None)
port = L.allocated_port(lab.log("byname.log"))
ok, text = L.fetch(srv.client(Curl, port), "f1m", lab.path("got"), want)
t.ok(ok, "found the master through ssh -G destination", text)
# TcpNoDelay=yes (the default): one short session on the master, so that
# sshd turns Nagle off (the speed itself is measured by make bench).
L.wait_for("sshd to start the session", lambda: "Starting session: "
           "command for root" in lab.log("sshd.log"), timeout=10)
t.is_(lab.log("sshd.log").count("Starting session: command"), 1,
      "TcpNoDelay: sshd ran exactly one session for it")
p.terminate()
p.wait()

# -- -4 and -6: the family of the listeners for * ------------------------
def reaches(family, host, port):
    try:
        with L.socket.socket(family) as so:
            so.settimeout(5)
            so.connect((host, port))
            return so.recv(100).startswith(b"220")
    except OSError:
        return False


for flag, v4, v6 in (("-4", True, False), ("-6", False, True)):
    if not L.HAVE_V6:
        t.skip("%s listens on one family only" % flag,
               "no IPv6 loopback on this machine")
        continue
    fam = lab.start_ftpfwd(srv.port, flag, bind="*", log="fam%s.log" % flag)
    t.is_((reaches(L.socket.AF_INET, "127.0.0.1", fam.port),
           reaches(L.socket.AF_INET6, "::1", fam.port)), (v4, v6),
          "%s -L *:...: reachable over IPv4 %s, IPv6 %s" % (flag, v4, v6))
    fam.terminate()
    fam.wait()

# -- -f: background once bound -----------------------------------------
r = ftpfwd("-f", "-L", "127.0.0.1:0:127.0.0.1:%d" % srv.port, "-S",
           lab.ctl)
t.ok(r.returncode == 0 and "Allocated port" in r.stderr,
     "-f: the parent exits 0 once the listener is bound", r.stderr)
fport = L.allocated_port(r.stderr)
dpid = lab.listener_pid(fport)
t.ok(dpid is not None, "-f: a daemon listens on the port")
if dpid:
    lab.adopt(dpid)
ok, text = L.fetch(srv.client(Curl, fport, True), "f1m", lab.path("got"),
                   want)
t.ok(ok, "-f: an active transfer through the daemon", text)
# The port held by something else (the same master's ftpfwd: t/45).
taker = socket.socket()
taker.bind(("127.0.0.1", 0))
taker.listen(1)
tport = taker.getsockname()[1]
r = ftpfwd("-f", "-L", "127.0.0.1:%d:127.0.0.1:%d" % (tport, srv.port),
           "-S", lab.ctl)
t.ok(r.returncode == 1 and "cannot listen on 127.0.0.1 port %d: Address "
     "already in use" % tport in r.stderr,
     "-f with the port taken: non-zero and why", r.stderr)
taker.close()

# -- -E: the log in a file, fatal errors after the fork included -------
elog = lab.path("e.log")
r = ftpfwd("-f", "-E", elog, "-L", "127.0.0.1:0:127.0.0.1:%d" % srv.port,
           "-S", lab.ctl)
eport = L.allocated_port(r.stderr) or 0
epid = lab.listener_pid(eport) if eport else None
if epid:
    lab.adopt(epid)
ok, text = L.fetch(srv.client(Curl, eport), "f1m", lab.path("got"),
                   want) if eport else (False, r.stderr)
t.ok(ok and L.eventually(lambda: re.search(
    r"ftpfwd\[%d\]: #\d+ RETR passive [0-9.]+s 226" % (epid or 0),
    lab.log("e.log")) is not None),
     "-f -E: the daemon's transfer lines go to the file, with its pid",
     lab.log("e.log") + r.stderr)
if epid:
    os.kill(epid, signal.SIGTERM)


def fatal_after_fork(limit):
    """ftpfwd -f with at most limit descriptors: the parent's status, the
    daemon's pid (None if the parent failed), and the daemon's log."""
    name = "fd%d.log" % limit
    log = lab.path(name)

    def few():
        resource.setrlimit(resource.RLIMIT_NOFILE, (limit, limit))
    p = subprocess.run([L.FTPFWD, "-f", "-E", log, "-L",
                        "127.0.0.1:0:127.0.0.1:%d" % srv.port, "-S",
                        lab.ctl], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL, preexec_fn=few,
                       timeout=30)
    if p.returncode != 0:
        return p.returncode, None, ""

    def settled():
        text = lab.log(name)
        return "ready, master at" in text or "fatal: " in text
    L.eventually(settled)
    text = lab.log(name)
    m = re.search(r"ftpfwd\[(\d+)\]: ", text)
    pid = int(m.group(1)) if m else None
    if pid and "ready, master at" in text:
        os.kill(pid, signal.SIGTERM)
    return p.returncode, pid, text


# Too few descriptors for the loop, but enough to bind and fork: the
# daemon dies, and why must reach the log, not the /dev/null stderr.
seen = []
for limit in range(4, 24):
    rc, pid, text = fatal_after_fork(limit)
    if pid is not None and "fatal: " in text:
        seen.append((limit, pid, text))
    if pid is not None and "ready, master at" in text:
        break
t.ok(len(seen) > 0, "a limit exists where ftpfwd -f forks and then "
     "cannot run its loop", "limits tried up to %d" % limit)
for limit, pid, text in seen[:1]:
    t.ok(re.search(r"ftpfwd\[%d\]: fatal: \S" % pid, text) is not None and
         L.eventually(lambda: not L.pid_alive(pid)),
         "a fatal error after -f forked reaches -E's file, and the "
         "daemon is gone (limit %d)" % limit, text)

# -- -W through socat --------------------------------------------------
wport = lab.start_socat_w(srv.port)
for c in L.matrix([Curl], wport, srv):
    ok, text = L.fetch(c, "f1m", lab.path("got"), want)
    t.ok(ok, "-W under socat: %s transfer" % c.mode, text)

# -W on pipes, as a batch job would: every reply it is owed arrives,
# though its input ends before the server has said a word.
r = subprocess.run([L.FTPFWD, "-W", "127.0.0.1:%d" % srv.port, "-S", lab.ctl],
                   input=b"USER %s\r\nPASS %s\r\nPWD\r\nQUIT\r\n" %
                   (srv.user.encode(), srv.password.encode()),
                   capture_output=True, timeout=30)
t.is_((r.returncode, [line[:3] for line in r.stdout.decode().split("\r\n")]),
      (0, ["220", "331", "230", "257", "221", ""]),
      "-W on pipes: all replies, then exit 0")

# A TCP client that sends QUIT and shuts its side at once gets the 221.
plain = lab.start_ftpfwd(srv.port, log="plain.log")
c = L.Raw(plain.port)
c.login(srv.user, srv.password)
c.send(b"QUIT\r\n")
c.sock.shutdown(L.socket.SHUT_WR)
t.ok(c.reply().startswith("221 "), "QUIT then EOF: the 221 still arrives")
t.ok(c.closed(), "and then the connection closes")

# -- MaxSessions and IdleTimeout ---------------------------------------
lim = lab.start_ftpfwd(srv.port, "-o", "MaxSessions=2", "-o",
                       "idletimeout=2", log="limits.log")
a, b = L.Raw(lim.port), L.Raw(lim.port)
a.login(srv.user, srv.password)
b.login(srv.user, srv.password)
c = L.Raw(lim.port)
t.is_(c.reply(), "421 Too many sessions, try again later",
      "MaxSessions=2: the third client is told")
t.ok(c.closed(), "and closed")
t.is_(a.cmd("NOOP")[:4], "200 ", "the first two sessions are untouched")
b.close()

# A transfer that outlasts IdleTimeout while the control is silent.
f = srv.client(Ftplib, lim.port).session(timeout=30)
f.voidcmd("TYPE I")
conn = f.transfercmd("RETR f50m")
got, quiet = 0, True
ticks = 0
while ticks < 14:                  # 14 x 0.25 s of silence = 3.5 s > 2 s
    r, _, _ = select.select([f.sock], [], [], 0.25)
    if r:
        quiet = False
        break
    got += len(conn.recv(4096))
    ticks += 1
t.ok(quiet, "no 421 while a transfer runs past IdleTimeout")
conn.close()
try:
    f.voidresp()
except ftplib.Error:
    pass                            # 426 for the data we did not read
f.close()
a.sock.settimeout(10)
t.is_(a.reply(), "421 ftpfwd: idle timeout, closing control connection",
      "an idle session gets 421")
t.ok(a.closed(), "and is closed")

# -- sshd forbids remote forwarding ------------------------------------
lab2 = L.Lab("noremote")
lab2.start_sshd(["AllowTcpForwarding local"])
lab2.start_master()
srv2 = lab2.start_pyftpdlib()
L.make_file(os.path.join(srv2.root, "f1m"), 1000 * 1000)
# Its Unix sockets for active mode go in a directory of its own.
tmp = lab2.path("tmp")
os.mkdir(tmp)
# ActiveMode=forward: no falling back to passive (t/65 has that).
nf = lab2.start_ftpfwd(srv2.port, "-o", "TcpNoDelay=no", "-o",
                       "ActiveMode=forward", env=dict(os.environ, TMPDIR=tmp))
c = L.Raw(nf.port)
c.login(srv2.user, srv2.password)
r = c.cmd("PORT 127,0,0,1,4,1")
t.is_(r, "425 ftpfwd: ssh refused the remote forward: remote port "
      "forwarding failed for listen port 0",
      "remote forwarding forbidden: 425 with ssh's reason")
r = c.cmd("PASV")
t.ok(r.startswith("227 Entering Passive Mode (127,0,0,1,"),
     "the session goes on: PASV works", r)
c.close()
t.ok("Starting session" not in lab2.log("sshd.log"),
     "TcpNoDelay=no: no session on the master")
made = os.listdir(tmp)
t.ok(len(made) == 1 and made[0].startswith("ftpfwd.") and
     os.stat(os.path.join(tmp, made[0])).st_mode & 0o777 == 0o700,
     "active mode made one private directory in TMPDIR", made)

# -- The master goes away mid-session ----------------------------------
c = L.Raw(nf.port)
c.login(srv2.user, srv2.password)
os.kill(lab2.master_pid, signal.SIGTERM)
c.sock.settimeout(2)
try:
    r = c.reply()
except OSError as e:
    r = repr(e)
t.is_(r, "421 ftpfwd: ssh connection closed",
      "master killed: the client gets 421 within 2 s")
t.ok(c.closed(), "and the control connection closes")
t.ok(nf.poll() is None, "ftpfwd in the foreground keeps listening")
lab2.start_master()
c = L.Raw(nf.port)
banner, r = c.login(srv2.user, srv2.password)
t.ok(r.startswith("230"), "a new master at the same path: served again", r)
c.close()

# -- ExitWithMaster (the default with -f) -------------------------------
if dpid:
    subprocess.run(["ssh", "-F", lab.ssh_config, "-O", "exit", "lab"],
                   capture_output=True)
    L.wait_for("-f ftpfwd to exit", lambda: not L.pid_alive(dpid),
               timeout=10)
    t.ok(not L.pid_alive(dpid), "-f: ftpfwd exits with its master")
else:
    t.ok(False, "-f: ftpfwd exits with its master (no daemon found)")

# -- SIGTERM -----------------------------------------------------------
c = L.Raw(nf.port)
c.login(srv2.user, srv2.password)
nf.send_signal(signal.SIGTERM)
t.is_(c.reply(), "421 ftpfwd: shutting down", "SIGTERM: clients get 421")
nf.wait(timeout=10)
t.is_(nf.returncode, 0, "SIGTERM: ftpfwd exits 0")
t.is_(os.listdir(tmp), [], "and leaves nothing in TMPDIR")
t.done()
