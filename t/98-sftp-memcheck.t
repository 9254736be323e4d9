# ftpfwd -o Backend=sftp under valgrind's memcheck through a day in its
# life: every client in both modes both ways, listings, errors, ABOR,
# FTPS with PROT P, a session that hangs up mid-transfer, sftp-server
# killed under a download, the master killed, SIGTERM.  No invalid
# access, no leak.
import ftplib
import io
import os
import re
import signal
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import (Curl, Ftplib, FtplibTLS,    # noqa: E402
                     InetutilsFtp, LftpTLS)

if L.SANITIZED:
    print("1..0 # SKIP valgrind cannot run an ASan build; the plain "
          "make check runs this")
    sys.exit(0)
t = L.Tap()
lab = L.Lab.started(t, "sftp-memcheck")
pki = lab.certs()
root = lab.path("files")
os.makedirs(os.path.join(root, "sub"))
src = L.make_file(os.path.join(root, "f"), 3 * 1000 * 1000)
srcsum = L.sha256(src)
# Larger than what one transfer keeps in flight (8 MiB), for the kill.
L.make_file(os.path.join(root, "big"), 60 * 1000 * 1000)
# lftp tries AUTH TLS wherever FEAT offers it: it comes with the CA.
CLIENTS = [Curl, LftpTLS, Ftplib, InetutilsFtp]
# No FTP server: the clients log in to ftpfwd, and cd to root by path.
srv = L.Server("sftp", 0, root, "anyone", "anything", None, root)


def under_valgrind(name, *args):
    """ftpfwd -o Backend=sftp under memcheck: the process, its port, its
    report."""
    report = lab.path(name + "-valgrind.txt")
    log = name + ".log"
    p = lab.spawn(["valgrind", "--quiet", "--leak-check=full",
                   "--show-leak-kinds=definite,indirect",
                   "--errors-for-leak-kinds=definite,indirect",
                   "--error-exitcode=99", "--log-file=" + report,
                   L.FTPFWD, "-d", "-o", "Backend=sftp", "-L", "127.0.0.1:0",
                   "-S", lab.ctl] + list(args), log)
    L.wait_for("ftpfwd under valgrind",
               lambda: "ready, master at" in lab.log(log) or
               p.poll() is not None, 120)
    port = L.allocated_port(lab.log(log))
    if port is None:
        t.bail("ftpfwd did not start under valgrind: " + lab.log(log))
    return p, port, report


def report_clean(p, report, what):
    with open(report) as f:
        text = "".join(ln for ln in f if not re.match(r"--\d+-- ", ln))
    t.ok(p.returncode == 0 and text.strip() == "",
         "valgrind%s: no invalid access, no leak (exit %d)" %
         (what, p.returncode), text)


def sftp_servers():
    return [pid for pid in map(int, subprocess.run(
        ["pgrep", "-x", "sftp-server"], capture_output=True,
        text=True).stdout.split()) if lab.descends(pid, lab.sshd.pid)]


p, port, report = under_valgrind(
    "sftp", "-o", "ClientTLS=explicit", "-o",
    "ClientCertificate=" + pki["cert"], "-o", "ClientKey=" + pki["key"])
done, failed = 0, []
for c in L.matrix(CLIENTS, port, srv, ca=pki["ca"]):
    tag = "%s-%s" % (c.name, c.mode)
    for verb, transfer in L.both_ways(c, srv, "f", lab.path("o-" + tag),
                                       src, "u-" + tag, srcsum):
        ok, text = transfer()
        done += ok
        if not ok:
            failed.append("%s %s: %s" % (tag, verb, text[-300:]))
t.is_(done, 4 * len(CLIENTS), "every client, both modes, both ways, "
      "under valgrind")
for why in failed:
    t.diag(why)

c = srv.client(FtplibTLS, port, ca=pki["ca"])
ok, _ = L.fetch(c, "f", lab.path("o-tls"), srcsum)
t.ok(ok, "FTPS with PROT P under valgrind")

f = srv.client(Ftplib, port).session()
lines = []
f.retrlines("MLSD", lines.append)
f.retrlines("LIST -la", lines.append)
f.retrlines("NLST sub/*", lines.append)
for cmd in ("SIZE f", "MDTM f", "MLST f", "STAT sub", "MKD d", "RMD d",
            "RNFR f", "RNTO g", "RNFR g", "RNTO f", "SITE CHMOD 600 f",
            "MFMT 20200102030405 f", "RETR nothere", "CWD nothere",
            "XYZZ", "REST 100", "TYPE A"):
    try:
        f.sendcmd(cmd)
    except ftplib.Error:
        pass
try:
    f.storlines("STOR a.txt", io.BytesIO(b"one\r\ntwo\r\n"))
    t.ok(False, "REST then TYPE A: STOR refused")
except ftplib.error_perm as e:
    t.is_(str(e), "504 ftpfwd: REST needs TYPE I and STOR",
          "REST then TYPE A: STOR refused")
f.storlines("STOR a.txt", io.BytesIO(b"one\r\ntwo\r\n"))
f.retrlines("RETR a.txt", lines.append)
f.voidcmd("TYPE I")
conn = f.transfercmd("RETR f")
conn.recv(1000)
f.putcmd("ABOR")
t.is_([f.getline(), f.getline()], ["426 Transfer aborted.",
                                    "226 ABOR successful."],
      "ABOR under valgrind: 426, then 226")
conn.close()
conn = f.transfercmd("STOR half")
conn.sendall(b"x" * 100000)
conn.close()
f.voidresp()
conn = f.transfercmd("RETR f")
conn.recv(1000)
f.close()                   # hangs up mid-transfer, without QUIT
conn.close()

f = srv.client(Ftplib, port).session()
conn = f.transfercmd("RETR big")
conn.recv(1000)
for pid in sftp_servers():
    os.kill(pid, signal.SIGKILL)
try:
    while conn.recv(65536):
        pass
except OSError:
    pass
conn.close()
try:
    last = f.getline()
except (OSError, EOFError):
    last = ""
t.ok(last[:3] in ("421", "426", "451"), "sftp-server killed under a "
     "download: %s, not 226" % last)
f.close()

f = srv.client(Ftplib, port).session()
os.kill(lab.master_pid, signal.SIGKILL)
f.sock.settimeout(10)
t.ok(f.getline().startswith("421 "), "master killed: 421")
f.close()
os.unlink(lab.ctl)          # a killed master leaves its socket
lab.start_master()
f = srv.client(Ftplib, port).session()
ok, _ = L.fetch(srv.client(Ftplib, port), "f", lab.path("o-again"), srcsum)
t.ok(ok, "a new master serves again")
p.send_signal(signal.SIGTERM)
t.is_(f.getline(), "421 ftpfwd: shutting down", "SIGTERM: 421")
f.close()
p.wait(timeout=120)
report_clean(p, report, "")
t.done()
