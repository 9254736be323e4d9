# Out of file descriptors: ftpfwd stops accepting instead of spinning or
# turning clients away, the sessions already open go on, and the clients
# left waiting in the listen queue are served as descriptors free up.
import os
import resource
import select
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402

CROWD = 100
t = L.Tap()
lab = L.Lab.started(t, "fds")
with lab.setup(t):
    srv = lab.start_vsftpd(["max_clients=0", "max_per_ip=0"])


def low_nofile():
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


with lab.setup(t):
    p = lab.start_ftpfwd(srv.port, preexec_fn=low_nofile)
log, port = p.logname, p.port

first = L.Raw(port)
first.login(srv.user, srv.password)
crowd = [socket.create_connection(("127.0.0.1", port)) for _ in range(CROWD)]
L.wait_for("ftpfwd to stop accepting",
           lambda: "not accepting for now" in lab.log(log), timeout=20)
before = L.cpu_seconds(p.pid)
time.sleep(2)      # the window in which a spinning accept would burn CPU
used = L.cpu_seconds(p.pid) - before
t.ok(used < 0.5, "out of descriptors: %.2f s of CPU in 2 s, no spinning" %
     used)
t.is_(first.cmd("NOOP")[:4], "200 ", "a session opened before goes on")

# Serve the crowd: each client that has its banner leaves, which frees
# descriptors for the ones still waiting in the listen queue.
first.close()
banners = {}
deadline = time.monotonic() + 60
waiting = list(crowd)
while waiting and time.monotonic() < deadline:
    ready, _, _ = select.select(waiting, [], [], 1)
    for s in ready:
        banners[s] = s.recv(4096).decode("utf-8", "replace")
        waiting.remove(s)
        s.close()
codes = sorted(set(b[:3] for b in banners.values()))
t.is_((len(banners), codes), (CROWD, ["220"]),
      "all %d clients served in turn, none turned away" % CROWD)
t.ok("descriptors available again" in lab.log(log),
     "ftpfwd said when it accepted again")
t.ok(p.poll() is None, "ftpfwd is still running")
t.done()
