"""make demo: a private loopback lab (sshd, a ControlMaster, vsftpd),
then a passive and an active transfer through ftpfwd, then a download
and an upload with -o Backend=sftp (no FTP server: the ssh server's
files through the master's sftp subsystem), then tear-down."""

import os
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402


def say(msg):
    print(msg, flush=True)


def run(argv):
    say("  $ " + " ".join(argv))
    r = subprocess.run(argv, capture_output=True, text=True)
    for line in (r.stdout + r.stderr).splitlines():
        say("    " + line)
    return r.returncode == 0


lab = L.Lab("demo")
say("== a private lab on loopback (%s)" % lab.dir)
lab.start_sshd()
say("sshd listening on 127.0.0.1:%d" % lab.ssh_port)
lab.start_master()
say("ssh master running: ssh -F %s -fNM lab (pid %d, ControlPath %s)" %
    (lab.ssh_config, lab.master_pid, lab.ctl))
srv = lab.start_vsftpd()
say("vsftpd listening on 127.0.0.1:%d, seen from the ssh server" % srv.port)
L.make_file(os.path.join(srv.root, "hello.bin"), 10 * 1000 * 1000)
fwd = lab.start_ftpfwd(srv.port, "-o", "LogLevel=INFO")
say("== ftpfwd -L 127.0.0.1:%d:127.0.0.1:%d -S %s" %
    (fwd.port, srv.port, lab.ctl))

url = "ftp://127.0.0.1:%d/pub/" % fwd.port
want = L.sha256(os.path.join(srv.root, "hello.bin"))
ok = True
for mode, extra in (("passive", []), ("active", ["-P", "127.0.0.1"])):
    say("== %s mode: download, then upload" % mode)
    out = lab.path("hello-%s.bin" % mode)
    ok &= run(["curl", "-sS"] + extra + [url + "hello.bin", "-o", out])
    ok &= run(["curl", "-sS"] + extra + ["-T", out, url + "up-%s.bin" % mode])
    same = (L.sha256(out) == want and
            L.sha256(os.path.join(srv.root, "up-%s.bin" % mode)) == want)
    say("  sha256 of the file down and back up: %s" %
        ("identical" if same else "DIFFERENT"))
    ok &= same
say("== what ftpfwd logged")
for line in lab.log(fwd.logname).splitlines():
    if "#" in line:
        say("  " + line)

# The same master again, with no FTP server at all: ftpfwd answers FTP
# from the ssh server's files.  The lab's ssh user is root; the files are
# in the lab's directory, named by absolute path (curl's %2F).
files = lab.make_root("sftp-files")
L.make_file(os.path.join(files, "hello.bin"), 10 * 1000 * 1000)
want = L.sha256(os.path.join(files, "hello.bin"))
sfwd = lab.start_ftpfwd_sftp("-o", "LogLevel=INFO")
say("== ftpfwd -o Backend=sftp -L 127.0.0.1:%d -S %s" % (sfwd.port, lab.ctl))
say("   no FTP server: the ssh server's files, through its sftp subsystem")
surl = "ftp://127.0.0.1:%d/%s/" % (sfwd.port, urllib.parse.quote(
    "%2F" + files.lstrip("/"), safe="%/"))
say("== download, then upload")
out = lab.path("hello-sftp.bin")
ok &= run(["curl", "-sS", surl + "hello.bin", "-o", out])
ok &= run(["curl", "-sS", "-T", out, surl + "up-sftp.bin"])
up = os.path.join(files, "up-sftp.bin")
same = (os.path.exists(out) and os.path.exists(up) and
        L.sha256(out) == want and L.sha256(up) == want)
say("  sha256 of the file down and back up: %s" %
    ("identical" if same else "DIFFERENT"))
ok &= same
say("== what ftpfwd -o Backend=sftp logged")
for line in lab.log(sfwd.logname).splitlines():
    if "#" in line:
        say("  " + line)
lab.stop()
say("== lab stopped; demo %s" % ("succeeded" if ok else "FAILED"))
sys.exit(0 if ok else 1)
