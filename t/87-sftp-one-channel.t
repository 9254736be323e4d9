# ftpfwd -o Backend=sftp when sshd allows a single session (MaxSessions
# 1): 30 FTP sessions at once share the one sftp channel, together far
# more requests and bytes than it may hold at a time (1024 requests,
# 64 MiB).  A transfer that finds the channel full waits its turn and
# goes on when the channel drains, not with a 421, and not never.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
import sftplab as S                               # noqa: E402

N = 30
SIZE = 3 * 1000 * 1000
t = L.Tap()
lab = L.Lab.started(t, "sftpone", sshd_extra=("MaxSessions 1",))
files = lab.make_root("files")
with lab.setup(t):
    fwd = S.start_ftpfwd(lab, log="fwd.log")

results, most, elapsed = S.at_once(lab, fwd.port, files, N, SIZE)
t.ok(all(r is True for r in results), "%d sessions at once through the "
     "one channel sshd allows, each a download and an upload of its own, "
     "all sha256 equal (%.1fs)" % (N, elapsed),
     S.at_once_failures(results) + lab.tail(fwd.logname) +
     lab.tail("sshd.log"))
t.ok(most == 1, "one sftp-server served them all: %d" % most)
t.ok(fwd.poll() is None, "ftpfwd still running", lab.tail(fwd.logname))
t.done()
