# Mode and address family translation: every pair of the client's mode
# and the server's (ActiveMode, PassiveMode), with every client of
# t/clients.py (curl, lftp, ftplib, inetutils ftp), down and up, against
# vsftpd and pyftpdlib (and pure-ftpd, with its anti-FXP checks, over
# IPv4), over IPv4, from IPv6 clients to IPv4 servers and from IPv4
# clients to IPv6 servers; ActiveMode=auto
# against an sshd that allows local forwarding only; EPSV ALL; the exact
# replies of ActiveMode=off and of a refused remote forward.
import hashlib
import os
import re
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import CLIENTS, Curl, Lftp           # noqa: E402

t = L.Tap()
lab = L.Lab.started(t, "modes")
# vsftpd logs the commands it is sent: what ftpfwd chose upstream.
LOGCMDS = ["log_ftp_protocol=YES"]
with lab.setup(t):
    servers = {4: [lab.start_vsftpd(LOGCMDS), lab.start_pyftpdlib(),
                   lab.start_pureftpd()]}
    if L.HAVE_V6:
        servers[6] = [lab.start_vsftpd(LOGCMDS, name="vsftpd6", v6=True),
                      lab.start_pyftpdlib(host="::1")]
    restricted = L.Lab.started(t, "modes-local",
                               sshd_extra=["AllowTcpForwarding local"])

src = L.make_file(lab.path("src"), 2 * 1000 * 1000 + 7)
srcsum = L.sha256(src)
for fam in servers:
    for srv in servers[fam]:
        os.link(src, os.path.join(srv.root, "f"))

# Both ftpfwd set-ups: the client's mode kept (the default) and turned.
CONFIGS = {
    "kept": ([], {False: "passive", True: "active"}),
    "turned": (["-o", "ActiveMode=passive", "-o", "PassiveMode=active"],
               {False: "passive>active", True: "active>passive"}),
}


def hostport(fam):
    return "::1" if fam == 6 else "127.0.0.1"


def modes_logged(log, verb, mode):
    return len(re.findall(r"#\d+ %s %s \d" % (verb, re.escape(mode)), log))


def matrix(what, fwd, srv, client_fam):
    """Every client; passive and active; RETR and STOR."""
    for c in L.matrix(CLIENTS, fwd.port, srv, host=hostport(client_fam)):
        mode = CONFIGS[what][1][c.active]
        name = "%s %s %s %s" % (srv.name, c.name, mode,
                                "from IPv6" if client_fam == 6 else "IPv4")
        tag = re.sub(r"\W", "_", name)
        for verb, transfer in L.both_ways(c, srv, "f", lab.path("dl-" + tag),
                                          src, "up-" + tag, srcsum):
            before = modes_logged(lab.log(fwd.logname), verb, mode)
            ok, text = transfer()
            t.ok(ok and
                 modes_logged(lab.log(fwd.logname), verb, mode) > before,
                 "%s: %s, same sha256, data %s" % (name, verb, mode),
                 text + lab.log(fwd.logname)[-1500:])


fwds = {}
for what, (args, _) in CONFIGS.items():
    for fam in servers:
        for srv in servers[fam]:
            with lab.setup(t):
                fwds[what, srv.name] = lab.start_ftpfwd(
                    srv.port, *args, host="[%s]" % hostport(fam),
                    log="ftpfwd-%s-%s.log" % (what, srv.name))
            matrix(what, fwds[what, srv.name], srv, 4)
    if L.HAVE_V6:
        for srv in servers[4]:
            with lab.setup(t):
                f6 = fwds[what, srv.name, 6] = lab.start_ftpfwd(
                    srv.port, *args, bind="[::1]",
                    log="ftpfwd-%s-%s-v6.log" % (what, srv.name))
            matrix(what, f6, srv, 6)
    else:
        for case in ("from IPv6 clients", "to IPv6 servers"):
            t.skip("%s modes %s" % (what, case), "no IPv6 loopback here")

if L.HAVE_V6:
    # Toward an IPv6 server, ftpfwd speaks RFC 2428 whatever the client
    # said; toward an IPv4 one that lists no EPSV, the old commands.
    v6log = lab.log("vsftpd6.xfer")
    t.ok('"EPSV"' in v6log and '"EPRT |2|::1|' in v6log and
         '"PASV"' not in v6log and '"PORT ' not in v6log,
         "to the IPv6 server: EPSV and EPRT |2|::1|, never PASV or PORT",
         v6log[-1500:])
else:
    t.skip("to the IPv6 server: EPSV and EPRT", "no IPv6 loopback here")
# curl and ftplib send no FEAT: PASV and PORT.  lftp does, and vsftpd's
# lists EPSV and EPRT: those, then.
v4log = lab.log("vsftpd.xfer")
t.ok('"PASV"' in v4log and '"PORT 127,0,0,1,' in v4log and
     '"EPSV"' in v4log and '"EPRT |1|127.0.0.1|' in v4log and
     '"EPRT |2|' not in v4log,
     "to the IPv4 server: PASV and PORT, or after FEAT EPSV and EPRT |1|",
     v4log[-1500:])

# EPSV ALL is the client's promise, kept toward the client; upstream
# ftpfwd still sends PASV.
vs = servers[4][0]
fwd = fwds["kept", vs.name]
c = L.Raw(fwd.port)
c.login(vs.user, vs.password)
c.cmd("CWD " + vs.cwd)
c.cmd("TYPE I")
t.is_(c.cmd("EPSV 2"), "522 Network protocol not supported, use (1)",
      "EPSV 2 from an IPv4 client: 522")
t.is_(c.cmd("EPSV ALL"), "200 EPSV ALL ok", "EPSV ALL: 200 from ftpfwd")
t.is_(c.cmd("PASV"), "503 ftpfwd: only EPSV after EPSV ALL",
      "EPSV ALL: then PASV is refused")
t.is_(c.cmd("EPRT |1|127.0.0.1|4000|"), "503 ftpfwd: only EPSV after "
      "EPSV ALL", "EPSV ALL: then EPRT is refused")
r = c.cmd("EPSV")
data = b""
if r.startswith("229 "):
    d = socket.create_connection(("127.0.0.1", int(r.split("|")[3])))
    first = c.cmd("RETR f")
    while True:
        chunk = d.recv(65536)
        if not chunk:
            break
        data += chunk
    d.close()
    last = c.reply()
else:
    first = last = r
t.ok(first.startswith("150 ") and last.startswith("226 ") and
     hashlib.sha256(data).hexdigest() == srcsum,
     "EPSV ALL: EPSV and RETR still work, same sha256", "%s / %s" % (first,
                                                                      last))
t.is_(c.cmd("LPSV"), "502 ftpfwd: LPSV is not supported, use EPRT or EPSV",
      "LPSV: 502")
c.close()
t.ok('"EPSV ALL"' not in lab.log("vsftpd.xfer"),
     "EPSV ALL never reaches the server")
if L.HAVE_V6:
    c = L.Raw(fwds["kept", vs.name, 6].port, host="::1")
    c.login(vs.user, vs.password)
    t.is_(c.cmd("PASV"), "425 ftpfwd: PASV cannot name an IPv6 address, "
          "use EPSV", "PASV from an IPv6 client: 425")
    t.is_(c.cmd("EPSV 1"), "522 Network protocol not supported, use (2)",
          "EPSV 1 from an IPv6 client: 522")
    c.close()
else:
    for what in ("PASV", "EPSV 1"):
        t.skip("%s from an IPv6 client" % what, "no IPv6 loopback here")

# A server that speaks active mode only (vsftpd pasv_enable=NO): with
# PassiveMode=active, passive clients reach it all the same.
with lab.setup(t):
    act_only = lab.start_vsftpd(["pasv_enable=NO"], name="vsftpd-act")
    os.link(src, os.path.join(act_only.root, "f"))
    p2a = lab.start_ftpfwd(act_only.port, "-o", "PassiveMode=active",
                           log="ftpfwd-act-only.log")
    a2p = lab.start_ftpfwd(act_only.port, "-o", "ActiveMode=passive",
                           log="ftpfwd-act-only-a2p.log")
for cls in CLIENTS:
    ok, text = L.fetch(act_only.client(cls, p2a.port), "f",
                       lab.path("dl-act-only-" + cls.name), srcsum)
    t.ok(ok, "an active-only server, PassiveMode=active: %s passive RETR, "
         "same sha256" % cls.name, text)
# ActiveMode=passive against it: the transfer's precise 425, and the
# session goes on.
c = L.Raw(a2p.port)
c.login(act_only.user, act_only.password)
c.cmd("CWD " + act_only.cwd)
lst = socket.socket()
lst.bind(("127.0.0.1", 0))
lst.listen(1)
port = lst.getsockname()[1]
t.is_(c.cmd(L.port_command(port)),
      "200 PORT command successful", "ActiveMode=passive: PORT is ours")
t.is_(c.cmd("RETR f"), "425 ftpfwd: the FTP server refused passive mode "
      "(550)", "ActiveMode=passive, PASV refused: the transfer gets 425")
t.is_(c.cmd("NOOP")[:4], "200 ", "and the session goes on")
# A client data port nobody listens on: 425 naming it, and nothing sent
# on to the server.
lst.close()
dead = L.free_port()
c = L.Raw(fwds["turned", vs.name].port)
c.login(vs.user, vs.password)
c.cmd("CWD " + vs.cwd)
t.is_(c.cmd(L.port_command(dead)),
      "200 PORT command successful", "a dead data port: PORT is ours")
t.is_(c.cmd("RETR f"), "425 ftpfwd: cannot connect to your data port "
      "127.0.0.1:%d: Connection refused" % dead,
      "a dead data port: RETR gets 425 naming it")
t.is_(c.cmd("NOOP")[:4], "200 ", "and the session goes on")
c.close()

# An sshd that allows local forwarding only: ActiveMode=auto goes passive
# toward the server, and says so once.
vs = servers[4][0]
with lab.setup(t):
    auto = restricted.start_ftpfwd(vs.port, log="ftpfwd-auto.log")
for cls in CLIENTS:
    c = vs.client(cls, auto.port, True)
    for verb, transfer in L.both_ways(c, vs, "f", restricted.path(
            "dl-auto-" + cls.name), src, "up-auto-" + cls.name, srcsum):
        ok, text = transfer()
        t.ok(ok, "AllowTcpForwarding local: %s active %s, same sha256" % (
             cls.name, verb), text + restricted.log(auto.logname)[-1500:])
log = restricted.log(auto.logname)
t.is_(log.count("ssh refused a remote forward"), 1,
      "ActiveMode=auto: the fallback is logged once")
t.is_(modes_logged(log, "RETR", "active>passive") +
      modes_logged(log, "STOR", "active>passive"), 2 * len(CLIENTS),
      "ActiveMode=auto: every transfer went passive toward the server")
# Two sessions a client, and only the first asked sshd for a remote
# forward: an sshd that cannot have one proves nothing by having none.
t.is_(log.count("ssh refused the remote forward on"), 1,
      "ActiveMode=auto: after the refusal, no session asks again")

# ActiveMode=forward and PassiveMode=active there: a refused forward is
# the client's precise 425; ActiveMode=off refuses PORT/EPRT itself.
with lab.setup(t):
    strict = restricted.start_ftpfwd(vs.port, "-o", "ActiveMode=forward",
                                     "-o", "PassiveMode=active",
                                     log="ftpfwd-strict.log")
    off = restricted.start_ftpfwd(vs.port, "-o", "ActiveMode=off",
                                  log="ftpfwd-off.log")
c = L.Raw(strict.port)
c.login(vs.user, vs.password)
port = c.sock.getsockname()[1]
r = c.cmd(L.port_command(port))
t.ok(r.startswith("425 ftpfwd: ssh refused the remote forward: "),
     "ActiveMode=forward: PORT gets 425 naming ssh's refusal", r)
t.ok(c.cmd("PASV").startswith("227 "), "PassiveMode=active: PASV is ours")
r = c.cmd("RETR " + vs.cwd + "/f")
t.ok(r.startswith("425 ftpfwd: ssh refused the remote forward: "),
     "PassiveMode=active: the transfer gets 425 naming ssh's refusal", r)
t.is_(c.cmd("NOOP")[:4], "200 ", "and the session goes on")
c.close()
c = L.Raw(off.port)
c.login(vs.user, vs.password)
for cmd in ("PORT 127,0,0,1,4,1", "EPRT |1|127.0.0.1|1025|"):
    t.is_(c.cmd(cmd), "502 ftpfwd: active mode is off here, use passive "
          "mode (PASV or EPSV)", "ActiveMode=off: %s gets 502" %
          cmd.split()[0])
c.close()
ok, text = L.fetch(vs.client(Curl, off.port), "f",
                   restricted.path("dl-off"), srcsum)
t.ok(ok, "ActiveMode=off: passive transfers still work", text)
# lftp, told to use active mode, falls back to passive on the 502.
ok, text = L.fetch(vs.client(Lftp, off.port, True), "f",
                   restricted.path("dl-off-lftp"), srcsum)
t.ok(ok and
     modes_logged(restricted.log(off.logname), "RETR", "passive") == 2,
     "ActiveMode=off: lftp in active mode falls back to passive", text)
t.done()
