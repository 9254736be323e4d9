# FTPS: TLS toward the FTP server (UpstreamTLS), toward the client
# (ClientTLS), and both, with real FTPS servers (vsftpd forcing TLS and
# session reuse, TLS 1.3; pyftpdlib's TLS_FTPHandler, TLS 1.2) and real
# FTPS clients (curl --ssl-reqd, lftp ftp:ssl-force, ftplib FTP_TLS).
import ftplib
import os
import socket
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import (Curl, Lftp, Ftplib, TLS_CLIENTS,  # noqa: E402
                     CurlTLS, FtplibTLS)

t = L.Tap()
lab = L.Lab.started(t, "tls")
with lab.setup(t):
    pki = lab.certs()
    tls_servers = [lab.start_vsftpd(tls=True, name="vsftpd-tls"),
                   lab.start_pyftpdlib(tls=True)]
    plain_servers = [lab.start_vsftpd(), lab.start_pyftpdlib()]
CA = pki["ca"]
UP = ["-o", "UpstreamTLS=explicit", "-o", "UpstreamCAFile=" + CA]
CL = ["-o", "ClientTLS=explicit", "-o", "ClientCertificate=" + pki["cert"],
      "-o", "ClientKey=" + pki["key"]]
SIZE = 3 * 1000 * 1000

for srv in tls_servers + plain_servers:
    L.make_file(os.path.join(srv.root, "f3m"), SIZE)
want = {srv.name: L.sha256(os.path.join(srv.root, "f3m"))
        for srv in tls_servers + plain_servers}


def curl_active_ftps_works():
    """curl 7.88.1 never starts TLS on an accepted (active) data
    connection, even straight to vsftpd: find out, do not assume."""
    srv = tls_servers[0]
    r = subprocess.run(["curl", "-sS", "--max-time", "20", "-P",
                        "127.0.0.1", "--ssl-reqd", "--cacert", CA,
                        "ftp://127.0.0.1:%d/pub/f3m" % srv.port, "-o",
                        lab.path("probe")], capture_output=True)
    return r.returncode == 0 and L.sha256(lab.path("probe")) == want[
        srv.name]


CURL_ACTIVE_FTPS = curl_active_ftps_works()


WORDS = {"RETR": "download", "STOR": "upload"}   # in the tests' names


def matrix(label, servers, clients, args):
    tag = label.replace(" ", "-")               # for file names
    for srv in servers:
        fwd = lab.start_ftpfwd(srv.port, *args,
                               log="fwd-%s-%s.log" % (tag, srv.name))
        for c in L.matrix(clients, fwd.port, srv, ca=CA):
            name = "%s, %s, %s, %s" % (label, srv.name, c.name, c.mode)
            if type(c) is CurlTLS and c.active and not CURL_ACTIVE_FTPS:
                for what in WORDS.values():
                    t.skip("%s: %s" % (name, what), "curl %s never starts "
                           "TLS on an active data connection, even "
                           "straight to vsftpd" % curl_version)
                continue
            stem = "%s-%s-%s" % (tag, c.name[:4], c.mode)
            for verb, transfer in L.both_ways(
                    c, srv, "f3m", lab.path("got-%s-%s" % (srv.name, stem)),
                    os.path.join(srv.root, "f3m"), "up-" + stem,
                    want[srv.name]):
                ok, out = transfer()
                t.ok(ok, "%s: %s, sha256" % (name, WORDS[verb]),
                     out + "\n" + lab.tail(fwd.logname))
        fwd.terminate()
        fwd.wait()


curl_version = subprocess.run(["curl", "--version"], capture_output=True,
                              text=True).stdout.split()[1]
# TLS on both hops, plain client to an FTPS server, FTPS client to a
# plain server.  (Plain on both is every other test.)
matrix("TLS-TLS", tls_servers, TLS_CLIENTS, UP + CL)
matrix("plain-TLS", tls_servers, [Curl, Lftp, Ftplib], UP)
matrix("TLS-plain", plain_servers, TLS_CLIENTS, CL)
# The same with each side in the other mode (ActiveMode=passive,
# PassiveMode=active): the data TLS starts at the 1xx all the same.
TURNED = ["-o", "ActiveMode=passive", "-o", "PassiveMode=active"]
matrix("TLS-TLS turned", tls_servers, TLS_CLIENTS, UP + CL + TURNED)
matrix("plain-TLS turned", tls_servers[:1], [Lftp, Ftplib], UP + TURNED)
matrix("TLS-plain turned", plain_servers[:1], TLS_CLIENTS[1:], CL + TURNED)
for srv in tls_servers:
    log = lab.log("fwd-TLS-TLS-turned-%s.log" % srv.name)
    t.ok(" STOR passive>active " in log and " RETR active>passive " in log,
         "TLS-TLS turned, %s: the data went in the other mode" % srv.name)

# -- PROT C: the control encrypted, the data not -------------------------
# Were the data still TLS toward the client, ftplib would store the TLS
# records it reads as plain bytes, and the sha256 would differ.
for srv, args in ((tls_servers[0], UP + CL), (plain_servers[0], CL)):
    fwd = lab.start_ftpfwd(srv.port, *args, log="protc-%s.log" % srv.name)
    f = srv.client(FtplibTLS, fwd.port, ca=CA).session()  # and PROT P
    f.prot_c()
    data = []
    f.retrbinary("RETR f3m", data.append)
    f.quit()
    fwd.terminate()
    fwd.wait()
    t.is_(L.hashlib.sha256(b"".join(data)).hexdigest(), want[srv.name],
          "PROT C after PROT P (%s): plain data to the client, sha256" %
          srv.name)

# -- A client that resets mid-upload ------------------------------------
# The relay must not end the server's side with close_notify, which says
# "complete": vsftpd (strict_ssl_read_eof) then fails the STOR.  A TLS
# client is read through libevent's TLS bufferevent, a plain one by the
# relay's own reads: each must take the reset for a failure.
vs = tls_servers[0]


for label, args, cls in (("TLS client", UP + CL, FtplibTLS),
                         ("plain client", UP, Ftplib)):
    log = "reset-%s.log" % label.split()[0]
    fwd = lab.start_ftpfwd(vs.port, *args, log=log)
    f = vs.client(cls, fwd.port, ca=CA).session(timeout=20)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("STOR cut-short")
    conn.sendall(b"x" * 1000000)
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                    struct.pack("ii", 1, 0))
    conn.close()                                 # RST, no close_notify
    f.sock.settimeout(30)
    try:
        resp = f.getresp()
    except ftplib.Error as e:
        resp = str(e)
    except (OSError, EOFError) as e:
        resp = "%s: %s" % (type(e).__name__, e)
    f.close()
    t.ok(resp[:1] in ("4", "5") and "Connection reset by peer" in
         lab.log(log), "a %s's reset mid-upload reaches the server as a "
         "failure, not as the end (%s)" % (label, resp), lab.tail(log))
    fwd.terminate()
    fwd.wait()

# -- A data connection that never carries anything ----------------------
# With UpstreamTLS a passive data connection waits for the transfer's 1xx
# before its TLS starts.  A RETR the server refuses (550) has none: the
# connection must go with the final reply, not stay for the session.
vs = tls_servers[0]
fwd = lab.start_ftpfwd(vs.port, *UP, log="refused-retr.log")
f = vs.client(Ftplib, fwd.port).session()
f.voidcmd("TYPE I")
before = L.fds(fwd.pid)
refused = 0
for _ in range(5):
    try:
        f.transfercmd("RETR no-such-file")
    except ftplib.error_perm as e:
        refused += str(e).startswith("550")
L.eventually(lambda: L.fds(fwd.pid) == before)
t.ok(refused == 5 and L.fds(fwd.pid) == before, "five refused RETRs "
     "leave no descriptor behind (%d before, %d after)" %
     (before, L.fds(fwd.pid)), L.fd_list(fwd.pid))
f.quit()
fwd.terminate()
fwd.wait()

# -- The server's certificate is checked --------------------------------
vs = tls_servers[0]


def first_reply(args, log):
    fwd = lab.start_ftpfwd(vs.port, *args, log=log)
    c = L.Raw(fwd.port)
    r = c.reply()
    closed = c.closed()
    c.close()
    fwd.terminate()
    fwd.wait()
    return r, closed, lab.log(log)


r, closed, log = first_reply(["-o", "UpstreamTLS=explicit", "-o",
                              "UpstreamCAFile=" + pki["other-ca"]],
                             "wrong-ca.log")
t.is_(r, "421 ftpfwd: TLS to the FTP server 127.0.0.1 failed: certificate "
      "verify failed: unable to get local issuer certificate",
      "a certificate from another CA: 421 saying why")
t.ok(closed and "certificate verify failed" in log,
     "and the session is closed, and logged")
r, closed, log = first_reply(UP + ["-o", "UpstreamServerName=ftp.example"],
                             "wrong-name.log")
t.is_(r, "421 ftpfwd: TLS to the FTP server ftp.example failed: "
      "certificate verify failed: hostname mismatch",
      "a certificate for another name: 421 saying why")
t.ok(closed and "TLS to the FTP server ftp.example failed: certificate "
     "verify failed: hostname mismatch" in log,
     "and the session is closed, and logged", log)
fwd = lab.start_ftpfwd(vs.port, "-o", "UpstreamTLS=explicit", "-o",
                       "UpstreamCAFile=" + pki["other-ca"], "-o",
                       "UpstreamVerify=no", log="noverify.log")
ok, out = L.fetch(vs.client(Ftplib, fwd.port), "f3m", lab.path("noverify"),
                  want[vs.name])
t.ok(ok, "UpstreamVerify=no: the same server is used", out)
lines = lab.log("noverify.log").splitlines()
start = [i for i, ln in enumerate(lines) if "WARNING: UpstreamVerify=no" in ln]
first = [ln for ln in lines if "#1 " in ln][:2]
t.ok(start and start[0] < [i for i, ln in enumerate(lines)
                           if "#1 " in ln][0] and
     any("#1 WARNING: the FTP server's certificate is not verified" in ln
         for ln in first),
     "and ftpfwd warns at start-up and in the session's first lines", lines)
fwd.terminate()
fwd.wait()

# -- A server without FTPS ------------------------------------------------
py = plain_servers[1]
fwd = lab.start_ftpfwd(py.port, *UP, log="noauth.log")
c = L.Raw(fwd.port)
r = c.reply()
t.ok(r.startswith("421 ftpfwd: the FTP server refused AUTH TLS (\"500 ") and
     r.endswith("UpstreamTLS=explicit needs a server that speaks FTPS"),
     "UpstreamTLS=explicit against a plain server: a clear 421", r)
t.ok(c.closed(), "and the session is closed")
c.close()
fwd.terminate()
fwd.wait()

# -- Implicit TLS (port 990 style), on each side ---------------------------
vi = lab.start_vsftpd(["implicit_ssl=YES"], tls=True, name="vsftpd-implicit")
L.make_file(os.path.join(vi.root, "f3m"), SIZE)
fwd = lab.start_ftpfwd(vi.port, "-o", "UpstreamTLS=implicit", "-o",
                       "UpstreamCAFile=" + CA, log="implicit-up.log")
for c in L.matrix([Curl], fwd.port, vi):
    ok, out = L.fetch(c, "f3m", lab.path("imp-" + c.mode),
                      L.sha256(os.path.join(vi.root, "f3m")))
    t.ok(ok, "UpstreamTLS=implicit, %s: download" % c.mode, out)
fwd.terminate()
fwd.wait()
vp = plain_servers[0]
fwd = lab.start_ftpfwd(vp.port, "-o", "ClientTLS=implicit", "-o",
                       "ClientCertificate=" + pki["cert"], "-o",
                       "ClientKey=" + pki["key"], log="implicit-cl.log")
r = subprocess.run(["curl", "-sS", "--max-time", "60", "--cacert", CA,
                    "ftps://127.0.0.1:%d/pub/f3m" % fwd.port, "-o",
                    lab.path("impc")], capture_output=True, text=True)
t.ok(r.returncode == 0 and L.sha256(lab.path("impc")) == want[vp.name],
     "ClientTLS=implicit: curl ftps:// downloads", r.stderr)
fwd.terminate()
fwd.wait()

# -- What ftpfwd answers itself ---------------------------------------------
fwd = lab.start_ftpfwd(vp.port, *CL, log="answers.log")
c = L.Raw(fwd.port)
c.reply()
t.is_(c.cmd("PBSZ 0"), "503 ftpfwd: PBSZ needs AUTH TLS first",
      "PBSZ before AUTH TLS: 503")
c.send(b"FEAT\r\n")
feat = [c.line()]
while not feat[-1].startswith("211 "):
    feat.append(c.line())
t.ok(" AUTH TLS" in feat and " PBSZ" in feat and " PROT" in feat,
     "ClientTLS: FEAT lists AUTH TLS, PBSZ and PROT", feat)
t.is_(c.cmd("AUTH KERBEROS"), "504 ftpfwd: only AUTH TLS is supported",
      "AUTH other than TLS: 504")
c.close()
fwd.terminate()
fwd.wait()

# -- Start-up errors name what is wrong -------------------------------------
for args, want_err in (
        (["-o", "ClientTLS=explicit"], "ftpfwd: ClientTLS needs -o "
         "ClientCertificate=file and -o ClientKey=file"),
        (CL[:4] + ["-o", "ClientKey=/nonexistent/key.pem"],
         "ftpfwd: ClientTLS: cannot load ClientKey /nonexistent/key.pem: "),
        (["-o", "UpstreamTLS=explicit", "-o", "UpstreamCAFile=/nonexistent"],
         "ftpfwd: UpstreamTLS: cannot load CA file /nonexistent: ")):
    r = subprocess.run([L.FTPFWD, "-L", "127.0.0.1:0:127.0.0.1:21", "-S",
                        lab.ctl] + args, capture_output=True, text=True,
                       timeout=30)
    t.ok(r.returncode == 1 and r.stderr.startswith(want_err),
         "start-up error: %s" % want_err.split(":")[1].strip(), r.stderr)
t.done()
