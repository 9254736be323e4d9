# Client habits that trip proxies up, each with the real client:
# lftp's ABOR behind Telnet IP+SYNCH, lftp's doubled 0xFF bytes, and
# Python ftplib on IPv6 (EPSV and EPRT) against an IPv4 server.
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import Ftplib, Lftp, lftp_quoted     # noqa: E402

t = L.Tap()
lab = L.Lab.started(t, "traps")
with lab.setup(t):
    vs = lab.start_vsftpd()
    fvs = lab.start_ftpfwd(vs.port, "-vv", log="ftpfwd-vs.log")
L.make_file(os.path.join(vs.root, "f50m"), 50 * 1000 * 1000)
one = L.make_file(os.path.join(vs.root, "f1m"), 1000 * 1000)


# lftp aborts a download when its reader goes away (here: head), sending
# ABOR behind Telnet IP and SYNCH; the next transfer in the same session
# must work.
for c in L.matrix([Lftp], fvs.port, vs):
    out = lab.path("after-abor-" + c.mode)
    ok, text = c.cmd("cat f50m | head -c 1000 >/dev/null; get f1m -o %s" %
                     lftp_quoted(out))
    t.ok(ok and os.path.exists(out) and L.sha256(out) == L.sha256(one),
         "lftp %s: ABOR mid-download, then the next RETR" % c.mode, text)
log = lab.log(fvs.logname)
t.ok(log.count("client ABOR") == 2, "ftpfwd saw both ABORs as ABOR",
     log[-2000:])

# lftp doubles 0xFF in a file name (Telnet IAC) and vsftpd does not
# undo it, so the file the server finds is the one named with the doubled
# byte.  ftpfwd must pass every byte as it is, neither undoubling nor
# dropping: the request only finds the file if it does.
name = b"ff\xffname"
with open(os.path.join(vs.root.encode(), b"ff\xff\xffname"), "wb") as f:
    f.write(b"x" * 1000)
results = []
for port in (vs.port, fvs.port):
    out = lab.path("ff-%d" % port)
    # As bytes, which Lftp.cmd passes as they are.
    ok, text = vs.client(Lftp, port).cmd(b"get " + name + b" -o " +
                                         out.encode())
    results.append((ok, os.path.exists(out) and os.path.getsize(out)))
t.is_(results[0], (True, 1000), "a 0xFF file name: lftp gets it directly")
t.is_(results[1], results[0], "a 0xFF file name: and through ftpfwd")

# ftplib over IPv6 uses EPSV and EPRT; the server is IPv4 only.
if not L.HAVE_V6:
    for what in ("ftplib on [::1], passive", "ftplib on [::1], active",
                 "EPSV and EPRT |2| from the client, IPv4 toward the "
                 "server"):
        t.skip(what, "no IPv6 loopback on this machine")
else:
    f6 = lab.start_ftpfwd(vs.port, "-vv", bind="[::1]", log="ftpfwd-v6.log")
    for c in L.matrix([Ftplib], f6.port, vs, host="::1"):
        ok, text = L.fetch(c, "f1m", lab.path("v6-" + c.mode),
                           L.sha256(one))
        t.ok(ok, "ftplib on [::1], %s (%s) to an IPv4 server" %
             (c.mode, "EPRT" if c.active else "EPSV"), text)
    log = lab.log(f6.logname)
    t.ok("client EPSV" in log and "client EPRT" in log and
         "remote forward 127.0.0.1:" in log and "-> ::1:" in log,
         "EPSV and EPRT |2| from the client, IPv4 toward the server",
         log[-2000:])
t.done()
