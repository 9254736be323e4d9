# The SFTP channels of issue 14 (sftpchan.c) through the lab's real
# master: a 5 MB file written and read back with requests in flight, a
# listing, 30 users of one pool against sshd's MaxSessions, and an
# sftp-server killed under a READ loop (t/sftpchan_probe.c does the
# SFTP; this finds and kills the sftp-server, and checks the file).
import os
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
PROBE_SECONDS = 300             # the probe's own steps time out sooner

t = L.Tap()
probe = os.path.join(L.HERE, "sftpchan_probe")
if not os.access(probe, os.X_OK):
    t.bail("%s is not built (run make t/sftpchan_probe)" % probe)
lab = L.Lab.started(t, "sftpchan")
with open(lab.path("sshd_config")) as f:
    t.ok("Subsystem sftp %s\n" % SFTP_SERVER in f.read(),
         "the lab's sshd runs %s for sftp" % SFTP_SERVER)
files = lab.make_root("files")


def sftp_servers():
    """The sftp-servers that the lab's sshd started, and no others."""
    return [pid for pid, argv in L.processes()
            if argv[0] == SFTP_SERVER.encode() and
            lab.descends(pid, lab.sshd.pid)]


def kill_the_sftp_server():
    # The fault's pool has one channel; earlier pools' servers are
    # on their way out.
    one = L.eventually(lambda: len(sftp_servers()) == 1)
    pids = sftp_servers()
    t.ok(one and len(pids) == 1, "fault: one sftp-server under the lab's "
         "sshd", "found %r" % pids)
    for pid in pids[:1]:
        os.kill(pid, signal.SIGKILL)


p = subprocess.Popen([probe, lab.ctl, files], stdin=subprocess.DEVNULL,
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     text=True, errors="replace")
watchdog = threading.Timer(PROBE_SECONDS, p.kill)
watchdog.start()
for line in p.stdout:
    line = line.rstrip("\n")
    if line.startswith("ok - "):
        t.ok(True, line[5:])
    elif line.startswith("not ok - "):
        t.ok(False, line[9:], lab.tail("sshd.log"))
    elif line.startswith("# sha256 "):
        path = os.path.join(files, "f5m")
        t.is_(L.sha256(path) if os.path.exists(path) else None,
              line.split()[2], "the file on disk is the one written")
    elif line == "# fault: ready":
        kill_the_sftp_server()
    else:
        t.diag(line.lstrip("# "))
status = p.wait()
watchdog.cancel()
t.is_(status, 0, "the probe exited 0")
t.ok(L.eventually(lambda: not sftp_servers()),
     "every pool freed: no sftp-server left", repr(sftp_servers()))
t.ok(L.pid_alive(lab.master_pid), "the master is still up")
t.done()
