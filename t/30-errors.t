# Errors and edge cases on the control connection: each gets the exact
# reply, and the session goes on where it should.
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import CLIENTS, Lftp                 # noqa: E402

t = L.Tap()
lab = L.Lab.started(t, "errors")
with lab.setup(t):
    py = lab.start_pyftpdlib()
    # vsftpd with TLS offered, so that its FEAT lists AUTH TLS.
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-keyout", lab.path("key.pem"), "-out",
                    lab.path("cert.pem")], check=True, capture_output=True)
    vs = lab.start_vsftpd(["ssl_enable=YES", "allow_anon_ssl=YES",
                           "force_anon_logins_ssl=NO",
                           "force_anon_data_ssl=NO",
                           "rsa_cert_file=" + lab.path("cert.pem"),
                           "rsa_private_key_file=" + lab.path("key.pem")])
    # At the most verbose level, to show no password reaches the log.
    fpy = lab.start_ftpfwd(py.port, "-vvv", log="ftpfwd-py.log")
    fvs = lab.start_ftpfwd(vs.port, log="ftpfwd-vs.log")

# -- PORT and EPRT that ftpfwd refuses itself -------------------------
# Before login: no remote forward for a client the server does not know.
c = L.Raw(fpy.port)
c.reply()
for line in ("PORT 127,0,0,1,4,1", "EPRT |1|127.0.0.1|1025|"):
    t.is_(c.cmd(line), "530 ftpfwd: log in with USER and PASS first",
          "%r before login" % line)
c.cmd("USER " + py.user)
t.is_(c.cmd("PORT 127,0,0,1,4,1"), "530 ftpfwd: log in with USER and PASS "
      "first", "PORT between USER and PASS")
t.is_(c.cmd("PASS " + py.password)[:4], "230 ", "then the login works")
t.is_(c.cmd("PORT 127,0,0,1,4,1")[:4], "200 ", "and PORT with it")
t.is_(c.cmd("REIN")[:1], "2", "REIN")
t.is_(c.cmd("PORT 127,0,0,1,4,1"), "530 ftpfwd: log in with USER and PASS "
      "first", "after REIN, PORT wants a login again")
c.close()
L.wait_for("the PORT's forward to be cancelled",
           lambda: not lab.remote_listeners(), timeout=10)

c = L.Raw(fpy.port)
c.login(py.user, py.password)
refused = [
    ("PORT 127,0,0,1,4,1,9", "501 ftpfwd: malformed PORT argument"),
    ("PORT 127,0,0,1,256,1", "501 ftpfwd: malformed PORT argument"),
    ("PORT 127,0,0,1,0,0", "501 ftpfwd: malformed PORT argument"),
    ("PORT 127, 0,0,1,4,1", "501 ftpfwd: malformed PORT argument"),
    ("PORT", "501 ftpfwd: malformed PORT argument"),
    ("PORT 10,9,8,7,4,1", "504 ftpfwd: the data address must be your own "
     "(127.0.0.1)"),
    ("PORT 127,0,0,1,0,21", "504 ftpfwd: data port 21 is below 1024"),
    ("EPRT |1|10.9.8.7|1025|", "504 ftpfwd: the data address must be your "
     "own (127.0.0.1)"),
    ("EPRT |3|127.0.0.1|1025|", "522 Network protocol not supported, use "
     "(1,2)"),
    ("EPRT |2|127.0.0.1|1025|", "501 ftpfwd: malformed EPRT argument"),
    ("EPRT |1|127.0.0.1|1025", "501 ftpfwd: malformed EPRT argument"),
    ("LPRT 4,4,127,0,0,1,2,4,1", "502 ftpfwd: LPRT is not supported, use "
     "EPRT or EPSV"),
    ("LPSV", "502 ftpfwd: LPSV is not supported, use EPRT or EPSV"),
    ("AUTH TLS", "534 ftpfwd: TLS is not available through this forward; "
     "the ssh connection already encrypts the control connection"),
]
for line, want in refused:
    t.is_(c.cmd(line), want, "%r answered by ftpfwd" % line)
t.is_(c.cmd("NOOP")[:4], "200 ", "the session goes on after refusals")
t.is_(lab.remote_listeners(), [], "no remote forward asked for a refused "
      "PORT")

# NUL bytes: never trusted as an end, never let through a PORT.
t.is_(c.cmd("PORT 127,0,0,1\x00,4,1"), "501 ftpfwd: malformed PORT argument",
      "a PORT with a NUL byte")
t.is_(c.cmd("NOOP")[:4], "200 ", "the session goes on after it")

# A PORT split into single bytes, with a bare LF, still works.
for ch in b"PORT 127,0,0,1,4,1\n":
    c.send(bytes([ch]))
t.ok(c.reply().startswith("200 "), "PORT sent one byte at a time, bare LF")

# 1,000 pipelined commands in one write: 1,000 replies, in order.
c.send(b"NOOP\r\n" * 1000)
codes = [c.reply()[:3] for _ in range(1000)]
t.is_(codes.count("200"), 1000, "1,000 pipelined NOOPs, 1,000 replies")

# A line of 1 MiB that needs no rewriting passes untouched: the server
# answers exactly as it does without ftpfwd.
def after_long_line(port):
    r = L.Raw(port)
    r.login(py.user, py.password)
    r.send(b"NOOP " + b"x" * (1 << 20) + b"\r\nNOOP\r\n")
    seen = []
    while not seen or not seen[-1].startswith("200 "):
        seen.append(r.reply())
    return r, seen


d, want = after_long_line(py.port)
d.close()
c2, got = after_long_line(fpy.port)
# How many 500s pyftpdlib sends depends on how TCP cut the line, so
# compare the kinds of reply, not their count.
def server_500s(replies):
    return (all(r.startswith("500 ") and "ftpfwd" not in r
                for r in replies[:-1]) and replies[-1].startswith("200 "))


t.ok(server_500s(want) and server_500s(got),
     "a 1 MiB line gets the server's own 500s, then NOOP's 200",
     "got %r\nwant %r" % (sorted(set(got)), sorted(set(want))))
c2.close()

# A PORT too long to rewrite is refused, and nothing of it reaches the
# server.
r = c.cmd("PORT " + "1," * 4000 + "1")
t.is_(r, "500 ftpfwd: command line too long", "an over-long PORT")
t.is_(c.cmd("NOOP")[:4], "200 ", "the session goes on after it")
c.close()

# -- Byte-for-byte pass-through of multi-line replies -----------------
direct = L.Raw(py.port)
direct.login(py.user, py.password)
via = L.Raw(fpy.port)
via.login(py.user, py.password)
h1, h2 = direct.cmd("HELP"), via.cmd("HELP")
t.ok(h1 == h2 and h1.count("\n") > 3, "a multi-line HELP reply arrives "
     "unchanged", "direct:\n%s\nvia:\n%s" % (h1, h2))
s1, s2 = direct.cmd("STAT"), via.cmd("STAT")
t.ok(s1.split("\n")[0] == s2.split("\n")[0] and s2.count("\n") > 2,
     "a multi-line STAT reply passes", s2)
direct.close()
via.close()

# -- FEAT loses AUTH; lftp still logs in with its AUTH TLS -----------
direct = L.Raw(vs.port)
direct.reply()
feat_direct = direct.cmd("FEAT")
via = L.Raw(fvs.port)
via.reply()
feat_via = via.cmd("FEAT")
t.ok("AUTH TLS" in feat_direct, "vsftpd itself offers AUTH TLS in FEAT",
     feat_direct)
t.ok("AUTH" not in feat_via and "EPSV" in feat_via and
     feat_via.endswith("211 End"),
     "through ftpfwd FEAT lists no AUTH and the rest", feat_via)
t.is_(via.cmd("AUTH TLS")[:4], "534 ", "AUTH TLS is refused with 534")
direct.close()
via.close()
ok, text = Lftp(fvs.port, vs.user, vs.password, False, vs.cwd).cmd("ls")
t.ok(ok, "lftp with its default ftp:ssl-allow falls back to plain FTP",
     text)

# -- A login and names that need quoting -------------------------------
# A password with ', a comma and a space (open -u would split it at the
# comma), a user with ' and a space, and a directory and file names with
# ', ", ; and spaces: each client, lftp's command language and inetutils
# ftp's script included, must get them to the server as they are.
with lab.setup(t):
    odd = lab.start_pyftpdlib(user="d'arcy o", password="it's, a \"pw\"; ok",
                              name="pyftpd-odd")
    fodd = lab.start_ftpfwd(odd.port, log="ftpfwd-odd.log")
odd.cwd = "a dir's \"name\"; too"
odd.root = os.path.join(odd.root, odd.cwd)
os.mkdir(odd.root)
ODD_FILE = "it's a \"file\"; ok"
odd_src = L.make_file(os.path.join(odd.root, ODD_FILE), 100000)
odd_sum = L.sha256(odd_src)
for c in L.matrix(CLIENTS, fodd.port, odd):
    for verb, transfer in L.both_ways(
            c, odd, ODD_FILE, lab.path("%s %s got %s" % (c.name, c.mode,
                                                        ODD_FILE)),
            odd_src, "%s %s up %s" % (c.name, c.mode, ODD_FILE), odd_sum):
        ok, text = transfer()
        t.ok(ok, "%s %s: that login, then %s of a file so named in that "
             "directory, same sha256" % (c.name, c.mode, verb),
             text + lab.tail("pyftpd-odd.log"))

# -- The FTP server is unreachable ------------------------------------
dead = lab.start_ftpfwd(L.free_port(), log="ftpfwd-dead.log")
c = L.Raw(dead.port)
r = c.reply()
t.ok(r.startswith("421 ftpfwd: cannot reach 127.0.0.1:") and
     "through ssh: " in r, "unreachable server: 421 with the reason", r)
t.ok(c.closed(), "and the connection is closed")

t.ok(all(f.poll() is None for f in (fpy, fvs, fodd, dead)),
     "ftpfwd survived all of it")
log = lab.log(fpy.logname)
t.ok("client PASS" in log and py.password not in log,
     "ftpfwd at -vvv logged the PASS commands but no password")
t.done()
