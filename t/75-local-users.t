# LocalUsers and the data-connection rules, tried as a second local user
# would (issue 13): a real second account, created here and removed
# after, connecting to ftpfwd's listener, racing the owner to a passive
# port, and connecting to the session's remote forward on the ssh
# server; and an ftpfwd killed with SIGKILL, followed by a new one.
import atexit
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402

OTHER = "ftpfwd-t75"
t = L.Tap()
if os.geteuid() != 0 or shutil.which("useradd") is None:
    t.skip("LocalUsers with a second account",
           "needs root and useradd to create a second local account")
    t.done()
    sys.exit(0)


def remove_account():
    subprocess.run(["userdel", OTHER], capture_output=True)


remove_account()
r = subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                    "/usr/sbin/nologin", OTHER], capture_output=True,
                   text=True)
if r.returncode != 0:
    t.bail("cannot create the account %s: %s" % (OTHER, r.stderr))
atexit.register(remove_account)
other = pwd.getpwnam(OTHER)

# What the other user runs: connect, send some bytes, read to the end,
# and say how it ended.  A line on stdout once connected.
INTRUDER = r"""
import socket, sys
try:
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])),
                                 timeout=20)
except OSError as e:
    print("refused", e, flush=True)
    sys.exit(0)
print("connected", flush=True)
if len(sys.argv) > 3:
    s.sendall(sys.argv[3].encode())
got = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            print("eof", len(got), got[:300].decode("latin-1"), flush=True)
            break
        got += d
except ConnectionResetError:
    print("reset", len(got), got[:300].decode("latin-1"), flush=True)
except OSError as e:
    print("error", e, flush=True)
"""


def as_other(*args, wait=True):
    argv = [L.PY, "-c", INTRUDER] + [str(a) for a in args]
    kw = dict(user=other.pw_uid, group=other.pw_gid, extra_groups=[],
              stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
              stderr=subprocess.STDOUT, text=True)
    if wait:
        return subprocess.run(argv, timeout=30, **kw).stdout.strip()
    p = subprocess.Popen(argv, **kw)
    return p


lab = L.Lab.started(t, "localusers")
with lab.setup(t):
    srv = lab.start_pyftpdlib()
L.make_file(os.path.join(srv.root, "f2m"), 2 * 1000 * 1000)
L.make_file(os.path.join(srv.root, "f30m"), 30 * 1000 * 1000)
want = L.sha256(os.path.join(srv.root, "f2m"))
up = lab.path("up2m")
L.make_file(up, 2 * 1000 * 1000)
want_up = L.sha256(up)


def login(port):
    c = L.Raw(port)
    banner, r = c.login(srv.user, srv.password)
    c.cmd("TYPE I")
    return c, r


# -- The control listener ------------------------------------------------
fwd = lab.start_ftpfwd(srv.port, log="self.log")
out = as_other("127.0.0.1", fwd.port)
line = out.splitlines()[-1] if out else ""
t.ok(line.startswith("eof ") and line.split(" ", 2)[2].strip() ==
     "421 ftpfwd: local user %s (uid %d) may not use this forward" %
     (OTHER, other.pw_uid),
     "LocalUsers=self: another local user gets 421 naming it, then EOF",
     out)
t.ok(L.eventually(lambda: re.search(
    r"refused a client from 127\.0\.0\.1:\d+: local user %s \(uid %d\) "
    r"is not in LocalUsers" % (OTHER, other.pw_uid),
    lab.log("self.log")) is not None),
     "one log line names the refused uid", lab.tail("self.log"))
t.ok(" session from " not in "\n".join(
    ln for ln in lab.log("self.log").splitlines() if "refused" in ln),
     "no session was started for it", lab.tail("self.log"))
c, r = login(fwd.port)
t.ok(r.startswith("230"), "the owner is served", r)


# -W on the socket itself, as inetd hands it over (socat's nofork): the
# peer is judged as a -L client is.
wport = lab.start_socat_w(srv.port, nofork=True, log="socat-w.log")
out = as_other("127.0.0.1", wport)
t.ok(out.splitlines()[-1:] and "421 ftpfwd: local user %s (uid %d) may "
     "not use this forward" % (OTHER, other.pw_uid) in out,
     "-W on an inetd socket: another local user gets 421 too", out)
w = L.Raw(wport)
banner, r = w.login(srv.user, srv.password)
t.ok(r.startswith("230"), "-W on an inetd socket: the owner is served", r)
w.close()

# -- Passive data: the other user races the owner to the port ----------
def pasv_port(c, cmd):
    r = c.cmd(cmd)
    if r.startswith("227"):
        return L.ftp_port_of(r)
    m = re.search(r"\(\|\|\|(\d+)\|\)", r)
    return int(m.group(1)) if m else None


def got_nothing(out):
    """The intruder's connection was refused, reset or ended empty."""
    last = out.splitlines()[-1] if out else ""
    return re.match(r"(refused |(eof|reset) 0)", last) is not None


def pasv_race(c, cmd, verb):
    """The other user connects to our passive port first; then the owner
    transfers through it.  Returns (intruder's output, ok, reply)."""
    port = pasv_port(c, cmd)
    if port is None:
        return "no passive port", False, ""
    stolen = as_other("127.0.0.1", port)
    d = socket.create_connection(("127.0.0.1", port), timeout=20)
    got = b""
    if verb == "RETR":
        c.send(b"RETR f2m\r\n")
        first = c.reply()
        got = L.recv_all(d)
        d.close()
        last = c.reply()
        ok = first.startswith("1") and last.startswith("226") and \
            L.hashlib.sha256(got).hexdigest() == want
        first += " (%d bytes)" % len(got)
    else:
        c.send(b"STOR up-%s\r\n" % cmd.encode())
        first = c.reply()
        with open(up, "rb") as f:
            d.sendall(f.read())
        d.close()
        last = c.reply()
        dst = os.path.join(srv.root, "up-" + cmd)
        ok = first.startswith("1") and last.startswith("226") and \
            L.eventually(lambda: os.path.exists(dst) and
                         L.sha256(dst) == want_up)
    return stolen, ok, first + " / " + last


for cmd in ("PASV", "EPSV"):
    for verb in ("RETR", "STOR"):
        stolen, ok, replies = pasv_race(c, cmd, verb)
        t.ok(got_nothing(stolen) and ok,
             "%s %s: the other user's connection gets nothing, the "
             "owner's transfer is whole" % (cmd, verb),
             "intruder: %r; owner: %s" % (stolen, replies))
t.ok("refused: local user %s (uid %d), not the session's" % (
    OTHER, other.pw_uid) in lab.log("self.log"),
     "the refused data connection is logged with its uid",
     lab.tail("self.log"))
c.close()

# The same through PassiveMode=active: our listener, the server active.
pa = lab.start_ftpfwd(srv.port, "-o", "PassiveMode=active", log="pa.log")
c, r = login(pa.port)
for verb in ("RETR", "STOR"):
    stolen, ok, replies = pasv_race(c, "EPSV", verb)
    t.ok(got_nothing(stolen) and ok,
         "PassiveMode=active %s: the other user gets nothing, the owner's "
         "transfer is whole" % verb, "intruder: %r; owner: %s" %
         (stolen, replies))
c.close()
pa.terminate()
pa.wait()

# -- LocalUsers=any and a named list -----------------------------------
for value, served in (("any", True), ("root,%s" % OTHER, True),
                      ("%d" % other.pw_uid, True), ("root", False)):
    name = "lu-%s.log" % value.replace(",", "_")
    f = lab.start_ftpfwd(srv.port, "-o", "LocalUsers=" + value, log=name)
    out = as_other("127.0.0.1", f.port, "USER %s\r\nPASS %s\r\nNLST\r\n"
                   "QUIT\r\n" % (srv.user, srv.password))
    if served:
        t.ok("230" in out and "421" not in out,
             "LocalUsers=%s: the other user logs in" % value, out)
    else:
        t.ok("local user %s (uid %d) may not use" % (OTHER, other.pw_uid)
             in out and "230" not in out,
             "LocalUsers=%s: the other user is refused" % value, out)
    f.terminate()
    f.wait()
r = subprocess.run([L.FTPFWD, "-o", "LocalUsers=nosuchuser-t75", "-S",
                    lab.ctl], capture_output=True, text=True)
t.ok(r.returncode == 1 and "LocalUsers: no user \"nosuchuser-t75\"" in
     r.stderr, "an unknown user in LocalUsers is a usage error", r.stderr)


# -- Active mode: the remote forward on the ssh server -------------------
def rfwd_port(logname):
    m = re.findall(r"remote forward [0-9.]+:(\d+) -> ", lab.log(logname))
    return int(m[-1]) if m else None


class DataPort:
    """The client's side of an active data connection: a listener."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(20)
        self.port = self.sock.getsockname()[1]

    def port_cmd(self):
        return "PORT 127,0,0,1,%d,%d" % (self.port >> 8, self.port & 255)


failed_seen = set()


def hijack(c, srv, log, rport, verb, before):
    """An extra connection on the remote forward, before the transfer
    command or while its data flows.  Returns (reply, whether the data
    reached its destination whole, what the intruder got)."""
    dp = DataPort()
    if not c.cmd(dp.port_cmd()).startswith("200"):
        return "PORT refused", False, ""
    evil = None
    if before:
        seen = len(lab.log(log))
        evil = as_other("127.0.0.1", rport, "EVIL-BYTES", wait=False)
        evil.stdout.readline()
        # ftpfwd has judged it: one too many, or the first, joined.
        L.eventually(lambda: re.search(
            "remote forward while|data connection to 127.0.0.1:%d" %
            dp.port, lab.log(log)[seen:]) is not None)
    name = "f30m" if verb == "RETR" else "hijacked-%s-%d" % (srv.name,
                                                            before)
    c.send(("%s %s\r\n" % (verb, name)).encode())
    first = c.reply()
    if not first.startswith("1"):
        evil.kill()
        return first, False, evil.communicate()[0]
    d, _ = dp.sock.accept()
    d.settimeout(20)
    h = L.hashlib.sha256()
    try:
        if verb == "RETR":
            h.update(d.recv(1 << 16))
            if not before:
                evil = as_other("127.0.0.1", rport, "EVIL", wait=False)
                evil.stdout.readline()
            while True:
                b = d.recv(1 << 16)
                if not b:
                    break
                h.update(b)
        else:
            d.sendall(b"x" * 65536)
            h.update(b"x" * 65536)
            if not before:
                evil = as_other("127.0.0.1", rport, "EVIL", wait=False)
                evil.stdout.readline()
            for _ in range(64):
                d.sendall(b"y" * 65536)
                h.update(b"y" * 65536)
    except OSError:
        pass
    d.close()
    last = c.reply()
    evil.kill()
    out = evil.communicate()[0]
    if verb == "RETR":
        whole = h.hexdigest() == L.sha256(os.path.join(srv.root, "f30m"))
    else:
        dst = os.path.join(srv.root, name)
        whole = L.eventually(lambda: os.path.exists(dst) and
                             L.sha256(dst) == h.hexdigest(), timeout=3)
    return "%s / %s" % (first, last), whole, out


def log_has(name, pattern):
    return re.search(pattern, lab.log(name)) is not None


vsf = lab.start_vsftpd()
L.make_file(os.path.join(vsf.root, "f30m"), 30 * 1000 * 1000)
for server in (srv, vsf):
    log = "act-%s.log" % server.name
    act = lab.start_ftpfwd(server.port, "-o", "ActiveMode=forward",
                           log=log)
    c = L.Raw(act.port)
    c.login(server.user, server.password)
    c.cmd("TYPE I")
    if server.cwd:
        c.cmd("CWD " + server.cwd)
    dp = DataPort()
    r1 = c.cmd(dp.port_cmd())
    r2 = c.cmd("NLST")
    dconn = dp.sock.accept()[0]
    listing = L.recv_all(dconn)
    dconn.close()
    r3 = c.reply()
    t.ok(r1.startswith("200") and r2.startswith("1") and b"f30m" in listing
         and r3.startswith("226"), "%s: active mode works for the owner" %
         server.name, "%s / %s / %s" % (r1, r2, r3))
    rport = rfwd_port(log)
    if rport is None:
        t.bail("no remote forward in " + lab.tail(log))
    # Between transfers: a connection through the forward is refused.
    between = as_other("127.0.0.1", rport, "EVIL")
    t.ok(got_nothing(between) and L.eventually(lambda: log_has(
        log, "while no transfer awaited one: reset")),
         "%s: between transfers, a connection on the remote forward gets "
         "nothing and is reset" % server.name, between + lab.tail(log))
    for verb in ("RETR", "STOR"):
        for before in (True, False):
            replies, whole, out = hijack(c, server, log, rport, verb,
                                         before)
            final = replies.rsplit(" / ", 1)[-1]
            t.diag("%s %s, intruder %s: %s; data whole: %s; intruder: %s" %
                   (server.name, verb, "first" if before else "mid-way",
                    replies, whole, out.replace("\n", " | ")))
            t.ok(final.startswith("4") or (final.startswith("226") and
                                           whole and got_nothing(out)),
                 "%s: active %s, an extra connection on the remote forward "
                 "%s: a 4xx, or 226 only for data intact and an intruder "
                 "that got nothing" % (server.name, verb,
                                       "first" if before else "mid-way"),
                 "%s; data whole: %s; intruder: %r%s" % (
                     replies, whole, out, lab.tail(log)))
            if final.startswith("4"):
                failed_seen.add(verb)
    t.ok(c.cmd("NOOP").startswith("200"), "%s: the session goes on" %
         server.name)
    c.close()
    act.terminate()
    act.wait()
t.is_(sorted(failed_seen), ["RETR", "STOR"], "a hijacked download and "
      "upload each met 426 at least once (the rewrite was exercised)")

# -- SIGKILL, then a new ftpfwd on the same master -----------------------
tmp = lab.path("tmpdir")
os.makedirs(tmp)
env = dict(os.environ, TMPDIR=tmp)
k = lab.start_ftpfwd(srv.port, "-o", "ActiveMode=forward", log="k.log",
                     env=env)
c, r = login(k.port)
dp = DataPort()
c.cmd(dp.port_cmd())
c.send(b"RETR f30m\r\n")
d, _ = dp.sock.accept()
d.recv(1000)
kport = rfwd_port("k.log")
t.ok(kport in lab.remote_listeners(), "mid-transfer, the remote forward "
     "listens on the ssh server", "%s in %s" % (kport,
                                                lab.remote_listeners()))
k.send_signal(signal.SIGKILL)
k.wait()
d.close()
c.close()
dead = os.listdir(tmp)
t.ok(kport in lab.remote_listeners() and len(dead) == 1,
     "after SIGKILL the forward and the private directory are left",
     "%s %s" % (lab.remote_listeners(), dead))
k2 = lab.start_ftpfwd(srv.port, log="k2.log", env=env)
t.ok(L.eventually(lambda: kport not in lab.remote_listeners()),
     "a new ftpfwd on the same master cancels the dead one's forward",
     "%s still in %s" % (kport, lab.remote_listeners()) +
     lab.tail("k2.log"))
t.ok(L.eventually(lambda: not set(dead) & set(os.listdir(tmp))),
     "and removes its private directory", "%s, the dead one's %s" % (
         os.listdir(tmp), dead))
k2.terminate()
k2.wait()
t.done()
