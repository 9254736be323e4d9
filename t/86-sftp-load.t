# ftpfwd -o Backend=sftp under load and faults (issue 14): 30 FTP
# sessions at once, each downloading and uploading files of its own,
# against an sshd with the default MaxSessions (10), through at most 4
# sftp channels; the sftp-server killed in the middle of a download and
# of an upload; the master killed with SIGKILL.
import ftplib
import os
import select
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
import sftplab as S                               # noqa: E402
from clients import Ftplib                        # noqa: E402

N = 30
SIZE = 3 * 1000 * 1000
BIG = 100 * 1000 * 1000          # more than any buffer on the way holds
USER, PASSWORD = "bob", "whatever"
t = L.Tap()
lab = L.Lab.started(t, "sftpload")
with open(lab.path("sshd_config")) as f:
    conf = f.read()
t.ok("maxsessions" not in conf.lower() and
     "Subsystem sftp %s\n" % S.SFTP_SERVER in conf,
     "the lab's sshd has the default MaxSessions (10) and runs %s" %
     S.SFTP_SERVER)
files = lab.make_root("files")
with lab.setup(t):
    fwd = S.start_ftpfwd(lab, log="fwd.log")


def client(active=False):
    return Ftplib(fwd.port, USER, PASSWORD, active, cwd=files)


restarts = [0]


def still_up(what):
    """Whether ftpfwd survived what; if not (a failure of its own), a new
    one, so that the faults after it are still tried."""
    global fwd
    # A crash may come a moment after the fault's replies.
    L.eventually(lambda: fwd.poll() is not None, timeout=1)
    up = fwd.poll() is None
    t.ok(up, "%s: ftpfwd still running" % what, "exit status %s%s" % (
        fwd.poll(), lab.tail(fwd.logname)))
    if not up:
        restarts[0] += 1
        with lab.setup(t):
            fwd = S.start_ftpfwd(lab, log="fwd-%d.log" % restarts[0])
    return up


# -- 30 sessions at once --------------------------------------------------
results, most, elapsed = S.at_once(lab, fwd.port, files, N, SIZE, USER,
                                   PASSWORD)
t.ok(all(r is True for r in results), "%d sessions at once, each a "
     "download and an upload of its own, all sha256 equal (%.1fs)" %
     (N, elapsed), S.at_once_failures(results) + lab.tail(fwd.logname) +
     lab.tail("sshd.log"))
t.ok(1 <= most <= 4, "at most 4 sftp-servers (channels) served them "
     "all: %d" % most)
t.ok("no more sessions" not in lab.log("sshd.log"),
     "sshd never refused a session (MaxSessions)", lab.tail("sshd.log"))
still_up("after the load")

# -- The sftp-server killed mid-transfer ---------------------------------
big = L.make_file(os.path.join(files, "big"), BIG)
want_big = L.sha256(big)
small = L.make_file(os.path.join(files, "small"), 100000)
want_small = L.sha256(small)


def kill_sftp_servers():
    pids = S.sftp_servers(lab)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return pids


def replies_until_end(f, timeout=10):
    """Every reply the control connection brings until it closes, or
    until nothing more comes for timeout seconds."""
    out = []
    f.sock.settimeout(timeout)
    while True:
        try:
            line = f.file.readline()
        except OSError:
            break
        if not line:
            break
        line = line.rstrip("\r\n")
        if line[3:4] != "-":
            out.append(line)
    return out


def fresh_session_works(what):
    try:
        f = client().session(timeout=30)
        h = L.hashlib.sha256()
        f.retrbinary("RETR small", h.update)
        with open(small, "rb") as src:
            f.storbinary("STOR small-after-%s" % what, src)
        f.quit()
        f.close()
        dest = os.path.join(files, "small-after-%s" % what)
        ok = h.hexdigest() == want_small and L.sha256(dest) == want_small
        return ok, "sha256 %s" % ok
    except (ftplib.Error, OSError, EOFError) as e:
        return False, repr(e) + lab.tail(fwd.logname)


for verb in ("RETR", "STOR"):
    what = "download" if verb == "RETR" else "upload"
    f = client().session(timeout=20)
    f.voidcmd("TYPE I")
    moved = 0
    if verb == "RETR":
        conn = f.transfercmd("RETR big")
        moved = len(conn.recv(65536))
    else:
        conn = f.transfercmd("STOR killed-upload")
        conn.sendall(b"x" * 1000000)
        moved = 1000000
    killed = kill_sftp_servers()
    t.ok(killed, "mid-%s: found the sftp-server(s) below the lab's sshd "
         "by pid ancestry: %s" % (what, killed))
    conn.settimeout(20)
    try:
        if verb == "RETR":
            while True:
                b = conn.recv(1 << 16)
                if not b:
                    break
                moved += len(b)
        else:
            for _ in range(100):
                conn.sendall(b"y" * 1000000)
                moved += 1000000
    except OSError:
        pass
    conn.close()
    replies = replies_until_end(f)
    f.close()
    codes = [r[:3] for r in replies]
    t.ok(codes and codes[0] in ("426", "451", "421") and "226" not in codes,
         "sftp-server killed mid-%s: %s, never 226" % (what, codes),
         "%s; %d bytes moved%s" % (replies, moved, lab.tail(fwd.logname)))
    if verb == "RETR":
        t.ok(moved < BIG, "the download stopped short (%d of %d bytes)" %
             (moved, BIG))
    t.ok(L.pid_alive(lab.master_pid), "mid-%s: the master is still up" %
         what)
    still_up("sftp-server killed mid-%s" % what)
    ok, text = fresh_session_works(verb)
    t.ok(ok, "after the sftp-server killed mid-%s, a new session downloads "
         "and uploads, same sha256" % what, text)

# -- The master's sessions all taken, then free again ---------------------
# Shell sessions through the master fill sshd's MaxSessions (10, with
# the channels the first ftpfwd still holds; the sleepers sshd refuses
# exit); a new ftpfwd can open no sftp channel and says so with 421, not
# a 230 that fails later; once they end, the same ftpfwd serves.
busy = lab.path("busy")
os.makedirs(busy)
sleepers = []


def sleeping():
    return [pid for pid, argv in L.processes()
            if argv[:2] == [b"sleep", b"120"] and
            lab.descends(pid, lab.sshd.pid)]


full = S.start_ftpfwd(lab, log="fwd-full.log")
# One more sleeper until a probe session is refused (sessions that come
# and go, ftpfwd's own, make the count unsure).  ProxyCommand=false: a
# session the master cannot have fails, as ssh would otherwise make a
# connection of its own for it.
for i in range(12):
    sleepers.append(lab.spawn(["ssh", "-F", lab.ssh_config, "-o",
                               "ProxyCommand=false", "lab",
                               "exec sleep 120"], "sleepers.log"))
    L.eventually(lambda: len(sleeping()) + sum(
        p.poll() is not None for p in sleepers) == len(sleepers),
                 timeout=30)
    probe = lab.ssh("-o", "ProxyCommand=false", "lab", "true")
    if probe.returncode != 0:
        break
t.ok(probe.returncode != 0 and "refused" in probe.stderr,
     "sessions through the master fill sshd's MaxSessions (%d sleepers, "
     "%d sftp-servers): one more is refused" % (len(sleeping()),
                                              len(S.sftp_servers(lab))),
     probe.stderr + lab.tail("sleepers.log"))
c = L.Raw(full.port)
banner, r = c.login(USER, PASSWORD)
if r.startswith("230"):
    r += " / " + c.cmd("CWD " + files)
t.ok(r.startswith("421 ") and not r.startswith("230"),
     "no sftp session to be had: 421 at the login", r)
c.close()
# Their sessions end with their commands (without a tty, sshd would not
# end a command whose client went away).
for pid in sleeping():
    os.kill(pid, signal.SIGTERM)
t.ok(L.eventually(lambda: not sleeping() and all(
    p.poll() is not None for p in sleepers), timeout=30),
     "the sleepers are gone, and their ssh clients", sleeping())
f = None
try:
    f = Ftplib(full.port, USER, PASSWORD, False, cwd=files).session(
        timeout=30)
    h = L.hashlib.sha256()
    f.retrbinary("RETR small", h.update)
    r = h.hexdigest() == want_small
    f.quit()
except (ftplib.Error, OSError, EOFError) as e:
    r = repr(e)
finally:
    if f is not None:
        f.close()
t.ok(r is True, "with room on the master again, the same ftpfwd serves: "
     "RETR, same sha256", "%s%s" % (r, lab.tail("fwd-full.log")))
full.terminate()
full.wait()

# -- The master killed with SIGKILL ---------------------------------------
down = client().session(timeout=20)
down.voidcmd("TYPE I")
dconn = down.transfercmd("RETR big")
dconn.recv(65536)                       # a download under way
up = client(True).session(timeout=20)
up.voidcmd("TYPE I")
uconn = up.transfercmd("STOR master-killed")
uconn.sendall(b"z" * 1000000)           # an upload under way
idle = client().session(timeout=20)     # logged in, idle
idle.voidcmd("NOOP")
greeted = L.Raw(fwd.port)               # greeted only, not logged in
greeted.reply()
watched = [("the downloading session", down.sock),
           ("the uploading session", up.sock),
           ("an idle session", idle.sock),
           ("a session not logged in", greeted.sock)]
start = time.monotonic()
os.kill(lab.master_pid, signal.SIGKILL)
got = {who: b"" for who, _ in watched}
closed = set()
while time.monotonic() < start + 2.0:
    waiting = [s for who, s in watched if b"\n" not in got[who] and
               who not in closed]
    if not waiting:
        break
    ready, _, _ = select.select(waiting, [], [],
                                max(0, start + 2.0 - time.monotonic()))
    for who, s in watched:
        if s in ready:
            try:
                b = s.recv(4096)
            except OSError:
                b = b""
            if not b:
                closed.add(who)
            got[who] += b
for who, _ in watched:
    line = got[who].decode("utf-8", "replace").split("\r\n")[0]
    t.ok(line.startswith("421 "), "master killed (SIGKILL): %s gets 421 "
         "within 2 s" % who, "got %r%s" % (line, lab.tail(fwd.logname)))
for c in (dconn, uconn):
    c.close()
for f in (down, up, idle):
    f.close()
greeted.close()
t.ok(L.eventually(lambda: not S.sftp_servers(lab)),
     "with the master gone, no sftp-server is left on the ssh server",
     S.sftp_servers(lab))
still_up("master killed (ExitWithMaster=no without -f)")
# A killed master leaves its socket behind: remove it, as its user would.
os.unlink(lab.ctl)
with lab.setup(t):
    lab.start_master()
ok, text = fresh_session_works("new-master")
t.ok(ok, "a new master at the same path: a new session downloads and "
     "uploads, same sha256", text)
t.done()
