# ftpfwd inside ssh's own habits: the README's and the man page's
# LocalCommand recipe, run by ssh itself; exit with the master; a second
# ftpfwd for the same address; SIGUSR1; socket activation; StartMaster;
# install, dist and -V; the man page's lint.
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import Curl                          # noqa: E402

t = L.Tap()


readme = L.recipe_lines(open(os.path.join(L.TOP, "README")).read())
man = L.recipe_lines(open(os.path.join(L.TOP, "man", "ftpfwd.1")).read())
t.is_(man, readme, "the man page's recipe is the README's, word for word")
lint = subprocess.run(["mandoc", "-T", "lint", "-W", "warning",
                      os.path.join(L.TOP, "man", "ftpfwd.1")],
                     capture_output=True, text=True)
t.is_((lint.returncode, lint.stdout + lint.stderr), (0, ""),
      "the man page is clean under mandoc -T lint -W warning")

lab = L.Lab.started(t, "habits")
with lab.setup(t):
    srv = lab.start_vsftpd()
L.make_file(os.path.join(srv.root, "f1m"), 1000 * 1000)
want = L.sha256(os.path.join(srv.root, "f1m"))
port = L.free_port()
recipe = srv.client(Curl, port)   # through the recipe's ftpfwd
ctl = lab.path("cm-ftpgw")
# The recipe as written; only what names this machine is replaced: the
# host, the ControlPath (not under the real ~/.ssh), the ports.
cfg = lab.recipe_config(readme, ctl, port, srv.port)
env = dict(os.environ, PATH=L.TOP + ":" + os.environ["PATH"])


def ssh(*args, timeout=30):
    return subprocess.run(["ssh", "-F", cfg] + list(args), env=env,
                          stdin=subprocess.DEVNULL, capture_output=True,
                          text=True, timeout=timeout)


def ftpfwds():
    """Our ftpfwd processes: those whose command line has our port."""
    return [pid for pid, argv in L.processes()
            if argv[0].endswith(b"ftpfwd") and
            ("%d:127.0.0.1" % port).encode() in b" ".join(argv)]


# -- ssh -fN, as the README says --------------------------------------------
t0 = time.monotonic()
r = ssh("-fN", "ftpgw")
L.wait_for("the recipe's forward", L.port_open(port), timeout=10)
t.ok(r.returncode == 0 and time.monotonic() - t0 < 5,
     "ssh -fN ftpgw: master and forward up within 5 s", r.stderr)
ok, text = L.fetch(recipe, "f1m", lab.path("got"), want)
t.ok(ok, "a download through the recipe's forward, sha256", text)
pids = ftpfwds()
t.is_(len(pids), 1, "one ftpfwd")
# A login that does not share the master runs LocalCommand again: the
# second ftpfwd must step aside without failing the login.
r = ssh("-o", "ControlMaster=no", "-o", "ControlPath=none", "ftpgw", "true")
t.ok(r.returncode == 0 and ftpfwds() == pids and
     "already served by ftpfwd (pid %d)" % pids[0] in r.stderr,
     "a second login running LocalCommand again leaves exactly that one",
     r.stderr)
second = subprocess.run([L.FTPFWD, "-f", "-S", ctl, "-L",
                         "%d:127.0.0.1:%d" % (port, srv.port)],
                        capture_output=True, text=True, timeout=30)
t.ok(second.returncode == 0 and "already served by ftpfwd (pid %d)" %
     pids[0] in second.stderr and ftpfwds() == pids,
     "a second ftpfwd -f for the same address and master says so, exits 0",
     second.stderr)
other = subprocess.run([L.FTPFWD, "-f", "-S", lab.ctl, "-L",
                        "%d:127.0.0.1:%d" % (port, srv.port)],
                       capture_output=True, text=True, timeout=30)
t.ok(other.returncode == 1 and "cannot listen" in other.stderr,
     "for another master, the port in use is an error", other.stderr)

# SIGUSR1: one line per session, in syslog under -f: ask a foreground one.
fg = lab.start_ftpfwd(srv.port, log="status.log")
c = L.Raw(fg.port)
c.login(srv.user, srv.password)
fg.send_signal(signal.SIGUSR1)
L.wait_for("the status line", lambda: "user anonymous, " in
           lab.log("status.log"), timeout=10)
line = [ln for ln in lab.log("status.log").splitlines()
        if "user anonymous, " in ln][0]
t.ok(re.search(r"#1 127\.0\.0\.1 user anonymous, logged in, up \d+s, "
               r"0 transfers, no transfer$", line),
     "SIGUSR1: a line per session (client, user, state, age, transfer)",
     line)
c.close()
fg.send_signal(signal.SIGHUP)
c = L.Raw(fg.port)
t.ok(c.login(srv.user, srv.password)[1].startswith("230") and
     fg.poll() is None, "SIGHUP is ignored: ftpfwd still serves")
c.close()
r = subprocess.run([L.FTPFWD, "-S", ctl, "-o", "SyslogFacility=KERN"],
                   capture_output=True, text=True, timeout=30)
t.ok(r.returncode == 1 and r.stderr.startswith(
    "ftpfwd: unknown SyslogFacility \"KERN\""),
    "an unknown SyslogFacility is an error that names it", r.stderr)

# -- ssh -O exit: ftpfwd goes within 1 s ----------------------------------
pid = pids[0]
c = L.Raw(port)
c.login(srv.user, srv.password)
ssh("-O", "exit", "ftpgw")
c.sock.settimeout(10)
t.is_(c.reply(), "421 ftpfwd: ssh connection to ftpgw closed",
      "ssh -O exit: a connected client is told which connection closed")
c.close()
t0 = time.monotonic()
L.wait_for("ftpfwd to exit", lambda: not L.pid_alive(pid), timeout=10)
t.ok(time.monotonic() - t0 < 1, "ssh -O exit: ftpfwd gone within 1 s "
     "(%.2fs)" % (time.monotonic() - t0))

# -- ControlPersist=5: the master goes by itself, and ftpfwd with it -----
r = ssh("-o", "ControlPersist=5", "ftpgw", "true")
L.wait_for("the recipe's forward", L.port_open(port), timeout=10)
ok, text = L.fetch(recipe, "f1m", lab.path("got"), want)
t.ok(r.returncode == 0 and ok,
     "ControlPersist=5: forward up after ssh ftpgw true, download works",
     r.stderr + text)
pids = ftpfwds()
# ftpfwd watches the master's pid, not a mux connection, which would
# count as a live channel and keep the master from ever expiring.
t.ok(L.eventually(lambda: not os.path.exists(ctl), timeout=30),
     "ControlPersist=5: the master expires, ftpfwd notwithstanding")
t0 = time.monotonic()
L.wait_for("ftpfwd to exit", lambda: not ftpfwds(), timeout=10)
t.ok(len(pids) == 1 and time.monotonic() - t0 < 1,
     "the master expired: ftpfwd gone within 1 s")

# -- StartMaster=yes -------------------------------------------------------
fwd = subprocess.Popen([L.FTPFWD, "-d", "-F", cfg, "-o", "StartMaster=yes",
                        "-o", "ExitWithMaster=yes", "-L",
                        "%d:127.0.0.1:%d" % (port, srv.port), "ftpgw"],
                       env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
lab.adopt(fwd)
L.wait_for("StartMaster's forward", L.port_open(port), timeout=20)
ok, text = L.fetch(recipe, "f1m", lab.path("got"), want)
t.ok(os.path.exists(ctl) and ok,
     "StartMaster=yes: no master, so ftpfwd started one and serves", text)
ssh("-O", "exit", "ftpgw")
fwd.wait(timeout=10)

# -- Socket activation ----------------------------------------------------
activate = shutil.which("systemd-socket-activate")
if activate is None:
    t.skip("socket activation", "systemd-socket-activate is not "
           "installed (Debian package systemd)")
else:
    sport = L.free_port()
    sa = lab.spawn([activate, "-l", "127.0.0.1:%d" % sport, L.FTPFWD, "-d",
                    "-S", lab.ctl, "-L", "0:127.0.0.1:%d" % srv.port],
                   "activate.log")
    L.wait_for("the activated socket", L.port_open(sport))
    ok, out = L.fetch(srv.client(Curl, sport), "f1m", lab.path("got-sa"),
                      want)
    t.ok(ok and "serving 1 socket from the service manager" in
         lab.log("activate.log"), "socket activation: ftpfwd serves the "
         "listener it was passed", out + lab.log("activate.log"))
    sa.terminate()

# -- -V, make install, make dist -------------------------------------------
version = re.search(r"^VERSION =\s*(\S+)", open(os.path.join(
    L.TOP, "Makefile")).read(), re.M).group(1)
r = subprocess.run([L.FTPFWD, "-V"], capture_output=True, text=True)
t.is_(r.stdout.strip(), "ftpfwd " + version, "-V prints the Makefile's "
      "version")
dest = lab.path("destdir")
r = subprocess.run(["make", "-s", "-C", L.TOP, "install", "DESTDIR=" + dest,
                    "PREFIX=/usr"], capture_output=True, text=True)
files = sorted(os.path.relpath(os.path.join(d, f), dest)
               for d, _, fs in os.walk(dest) for f in fs)
# The systemd user units too, where this system has systemd.
units = (["usr/lib/systemd/user/ftpfwd@.service",
          "usr/lib/systemd/user/ftpfwd@.socket"]
         if os.path.isdir("/usr/lib/systemd/user") else [])
t.is_(files, sorted(["usr/bin/ftpfwd", "usr/share/man/man1/ftpfwd.1"] +
                    units), "make install DESTDIR=... PREFIX=/usr puts "
      "exactly the binary, the man page%s" % (" and the user units" if
                                             units else ""))
subprocess.run(["make", "-s", "-C", L.TOP, "uninstall", "DESTDIR=" + dest,
                "PREFIX=/usr"], capture_output=True)
t.ok(not any(fs for _, _, fs in os.walk(dest)), "make uninstall takes them")
if not os.path.isdir(os.path.join(L.TOP, ".git")):
    t.skip("make dist", "not a git checkout")
else:
    r = subprocess.run(["make", "-s", "-C", L.TOP, "dist"],
                       capture_output=True, text=True)
    tgz = os.path.join(L.TOP, "ftpfwd-%s.tar.gz" % version)
    built = lab.path("dist")
    os.mkdir(built)
    if r.returncode == 0 and os.path.exists(tgz):
        with tarfile.open(tgz) as tf:
            tf.extractall(built)
        os.unlink(tgz)
    b = subprocess.run(["make", "-s", "-C", os.path.join(
        built, "ftpfwd-" + version)], capture_output=True, text=True)
    t.ok(b.returncode == 0 and os.access(os.path.join(
        built, "ftpfwd-" + version, "ftpfwd"), os.X_OK),
        "make dist: the tarball builds on its own", r.stderr + b.stderr)
t.done()
