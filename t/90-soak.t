# Stamina: many transfers across 20 concurrent sessions, passive and
# active, up and down, some aborted; afterwards ftpfwd holds the same
# descriptors, its memory barely grew, no forward is left on the ssh
# server, and every file arrived intact.  Then all of it again with each
# side in the other mode (ActiveMode=passive, PassiveMode=active).
# SOAK_TRANSFERS sets the count (make check: 400; make soak: 5000).
import ftplib
import hashlib
import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import Ftplib                        # noqa: E402

TOTAL = int(os.environ.get("SOAK_TRANSFERS", "400"))
WORKERS = 20
PER_SESSION = 25            # transfers before a worker logs in afresh

t = L.Tap()
lab = L.Lab.started(t, "soak")
with lab.setup(t):
    srv = lab.start_vsftpd()
fwd = None                  # the ftpfwd under test
src = L.make_file(os.path.join(srv.root, "src"), 256 * 1024)
with open(src, "rb") as f:
    SRC = f.read()
WANT = hashlib.sha256(SRC).hexdigest()


class Worker(threading.Thread):
    def __init__(self, wid, count):
        super().__init__()
        self.wid, self.count = wid, count
        self.ok = self.bad = self.aborted = 0
        self.errors = []

    def run(self):
        f = None
        for i in range(self.count):
            active = (self.wid + i) % 2 == 1
            try:
                if f is None or i % PER_SESSION == 0:
                    if f is not None:
                        f.quit()
                        f.close()
                    f = srv.client(Ftplib, fwd.port, active).session(
                        timeout=60)
                f.set_pasv(not active)
                kind = i % 10
                if kind == 9:               # abort a running download
                    conn = f.transfercmd("RETR src")
                    conn.recv(4096)
                    conn.close()
                    # Two replies are owed: the RETR's final one (226
                    # or 426, by timing) and the ABOR's own.
                    f.abort()
                    f.getresp()
                    self.aborted += 1
                elif kind % 2 == 0:         # download
                    data = []
                    f.retrbinary("RETR src", data.append)
                    good = hashlib.sha256(b"".join(data)).hexdigest() == WANT
                    self.ok += good
                    self.bad += not good
                else:                       # upload, then compare on disk
                    name = "up-%d-%d" % (self.wid, i)
                    f.storbinary("STOR " + name, _Reader(SRC))
                    path = os.path.join(srv.root, name)
                    good = L.sha256(path) == WANT
                    os.unlink(path)
                    self.ok += good
                    self.bad += not good
            except (ftplib.Error, OSError, EOFError) as e:
                self.bad += 1
                self.errors.append("%d/%d %s" % (self.wid, i, e))
                f = None
        if f is not None:
            try:
                f.quit()
            finally:
                f.close()


class _Reader:
    def __init__(self, data):
        self.data, self.pos = data, 0

    def read(self, n):
        chunk = self.data[self.pos:self.pos + n]
        self.pos += len(chunk)
        return chunk


def soak(total):
    workers = [Worker(w, total // WORKERS) for w in range(WORKERS)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return workers


def all_sessions_ended():
    log = lab.log(fwd.logname)
    return log.count(" session from ") == 2 * log.count(" ended")


def stamina(label, *args):
    global fwd
    with lab.setup(t):
        fwd = lab.start_ftpfwd(srv.port, "-o", "LogLevel=VERBOSE", *args,
                               log="ftpfwd-%s.log" % label)
    # Idle, as it will be after the soak: the one short session
    # TcpNoDelay runs on the master has ended (under load the master can
    # take a few seconds to retire it), and the master's pidfd is open
    # once it has told its pid.
    L.wait_for("the TCP_NODELAY session to end", lambda: "TCP_NODELAY "
               "session exited" in lab.log(fwd.logname), timeout=30)
    L.wait_for("the master watch", lambda: " is pid " in
               lab.log(fwd.logname))
    fds_before, list_before = L.fds(fwd.pid), L.fd_list(fwd.pid)
    soak(WORKERS * 4)               # warm up: buffers, allocator arenas
    L.wait_for("warm-up sessions to end", all_sessions_ended, timeout=30)
    # An ended session keeps its mux link until the master has answered
    # the cancel of its remote forward: counted before, it was there
    # after the warm-up and gone after the soak (12 against 9 in CI).
    L.wait_for("the warm-up's remote forwards to be cancelled",
               lambda: L.fds(fwd.pid) == fds_before, timeout=30)
    rss_before = L.rss_kib(fwd.pid)
    workers = soak(TOTAL)
    L.wait_for("soak sessions to end", all_sessions_ended, timeout=30)
    ok = sum(w.ok for w in workers)
    bad = sum(w.bad for w in workers)
    aborted = sum(w.aborted for w in workers)
    errors = [e for w in workers for e in w.errors]
    t.ok((ok + aborted, bad) == (TOTAL, 0), "%s: %d transfers (%d "
         "aborted), every file's sha256 matches" % (label, TOTAL, aborted),
         "%d good, %d aborted, %d bad\n%s" % (ok, aborted, bad,
                                             "\n".join(errors[:20])))
    # A session's last act, cancelling its remote forward, ends when the
    # master answers, which under load can come a moment after the
    # session.
    L.eventually(lambda: L.fds(fwd.pid) == fds_before)
    t.ok(L.fds(fwd.pid) == fds_before, "%s: ftpfwd holds as many "
         "descriptors as before (%d)" % (label, fds_before),
         "before: %s\nafter:  %s" % (list_before, L.fd_list(fwd.pid)))
    grown = L.rss_kib(fwd.pid) - rss_before
    if L.SANITIZED:
        t.skip("%s: ftpfwd's RSS growth" % label, "ASan's quarantine keeps "
               "freed memory; the plain make check measures it")
    else:
        t.ok(grown < 1024, "%s: ftpfwd's RSS grew by %d KiB (< 1 MiB)" %
             (label, grown))
    L.eventually(lambda: not lab.remote_listeners(), timeout=20)
    t.is_(lab.remote_listeners(), [], "%s: no remote forward left on the "
          "ssh server" % label)
    t.ok(fwd.poll() is None, "%s: ftpfwd still running" % label)
    fwd.terminate()
    fwd.wait()


stamina("each mode kept")
stamina("the other modes", "-o", "ActiveMode=passive", "-o",
        "PassiveMode=active")
t.done()
