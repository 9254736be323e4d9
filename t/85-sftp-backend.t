# ftpfwd -o Backend=sftp (issue 14): ftpfwd is the FTP server, serving
# the ssh server's files through the master's sftp subsystem, with no
# FTP server anywhere.  The master logs in as a second, unprivileged
# account made here (ftpfwd-t85), so that permission denied is real.
# Every client, passive and active, down and up, by sha256; REST, APPE,
# STOU, lftp mirror both ways, MLSD/MLST facts against os.stat, SIZE,
# MDTM, TYPE A, awkward names, the directory commands, exact error
# codes, ABOR, FTPS toward the client, PasswordFile, the usage errors,
# and -W sftp behind socat, on a socketpair and on pipes.
import atexit
import calendar
import ftplib
import os
import re
import shutil
import socket
import ssl
import stat
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
import sftplab as S                               # noqa: E402
from clients import (CLIENTS, Curl, Lftp, Ftplib,  # noqa: E402
                     CurlTLS, LftpTLS, FtplibTLS, lftp_quoted, run)

OTHER = "ftpfwd-t85"
USER, PASSWORD = "alice", "any password will do"
t = L.Tap()
if os.geteuid() != 0 or shutil.which("useradd") is None:
    t.skip("Backend=sftp as an unprivileged ssh user",
           "needs root and useradd to create the account %s" % OTHER)
    t.done()

account = None


def remove_account():
    if account is not None:
        account.remove()


# Registered before the lab, so it runs after the lab has stopped the
# master and sshd, whose processes run as the account.
atexit.register(remove_account)
lab = L.Lab("sftp")
with lab.setup(t):
    account = S.Account(OTHER, lab.path("home"))
    lab.start_sshd()
    S.as_account(lab, account)
    lab.start_master()
home = account.home
HOME = os.path.realpath(home)            # as sftp's realpath says it
with open(lab.path("sshd_config")) as f:
    t.ok("Subsystem sftp %s\n" % S.SFTP_SERVER in f.read(),
         "the lab's sshd runs %s for sftp" % S.SFTP_SERVER)
t.ok(L.pid_alive(lab.master_pid) and
     "Accepted publickey for %s " % OTHER in lab.log("sshd.log") and
     S.sftp_servers(lab) == [],
     "the master is logged in as %s, and no sftp-server runs yet" % OTHER,
     lab.tail("sshd.log"))


def server_side():
    """What runs on the ssh server for us: the argv[0] of every process
    below the lab's sshd."""
    return sorted({argv[0].decode("utf-8", "replace")
                   for pid, argv in L.processes()
                   if pid != lab.sshd.pid and lab.descends(pid,
                                                           lab.sshd.pid)})


def put_file(name, data=None, size=None, mode=0o644):
    """A file in the account's home, owned by it."""
    path = os.path.join(home, name)
    if size is not None:
        L.make_file(path, size)
    else:
        with open(path, "wb") as f:
            f.write(data)
    os.chmod(path, mode)
    account.own(path)
    return path


SIZES = {"0": 0, "1": 1, "50m": 50 * 1000 * 1000}
src, want = {}, {}
for tag, size in SIZES.items():
    src[tag] = L.make_file(lab.path("src-" + tag), size)
    want[tag] = L.sha256(src[tag])
    shutil.copy(src[tag], put_file("f" + tag, b""))
L.make_file(lab.path("src-1m"), 1000 * 1000)
want["1m"] = L.sha256(lab.path("src-1m"))
shutil.copy(lab.path("src-1m"), put_file("f1m", b""))

# ftpfwd finds the master with ssh -G, so the login names its user and
# host; in a time zone far from UTC, to catch local time in the facts.
with lab.setup(t):
    fwd = S.start_ftpfwd(lab, log="fwd.log", dest=True,
                         env=dict(os.environ, TZ="JST-9"))
srv = L.Server("sftp", fwd.port, home, USER, PASSWORD, fwd)


def session(active=False, port=None, cls=Ftplib, **kw):
    return cls(port or fwd.port, USER, PASSWORD, active, **kw).session()


def raw(port=None):
    c = L.Raw(port or fwd.port)
    return c, c.login(USER, PASSWORD)


def code(reply):
    return reply[:3]


def ftplib_reply(fn):
    """What a server's refusal looks like through ftplib: its reply as
    text (ftplib raises it), or "ok: ..." if nothing was refused."""
    try:
        return "ok: %r" % (fn(),)
    except ftplib.all_errors as e:
        return str(e)


def transfer_reply(f, cmd, data=None):
    """cmd (RETR, STOR, ...) on ftplib session f: its refusal's reply, or
    "150 ... / final" when it started, with data sent or got."""
    try:
        conn = f.transfercmd(cmd)
    except ftplib.all_errors as e:
        return str(e)
    try:
        if data is None:
            L.recv_all(conn)
        else:
            conn.sendall(data)
    except OSError:
        pass
    conn.close()
    try:
        return "150 / " + f.getresp()
    except ftplib.all_errors as e:
        return "150 / " + str(e)


# -- The greeting, the login, the commands that need no file -------------
c = L.Raw(fwd.port)
banner = c.reply()
t.ok(S.GREETING.match(banner) is not None,
     "greeting: 220 ftpfwd VERSION ready: files of the ssh server, "
     "through sftp", banner)
t.is_(c.cmd("PWD"), "530 Please log in with USER and PASS.",
      "before login, PWD gets 530")
t.is_(c.cmd("RETR f1"), "530 Please log in with USER and PASS.",
      "before login, RETR gets 530")
feat = c.cmd("FEAT")
lines = feat.splitlines()
t.ok(lines[0] == "211-Features:" and lines[-1] == "211 End" and
     set(lines[1:-1]) >= {" EPRT", " EPSV", " MDTM", " MFMT", " SIZE",
                          " REST STREAM",
                          " MLST type*;size*;modify*;perm*;unix.mode*;",
                          " UTF8", " TVFS"} and
     " AUTH TLS" not in lines,
     "FEAT before login lists the contract's features, and no AUTH TLS "
     "without ClientTLS", feat)
t.is_(c.cmd("SYST"), "215 UNIX Type: L8", "SYST")
t.is_(c.cmd("USER " + USER), "331 Password required for " + USER, "USER")
t.is_(c.cmd("PASS " + PASSWORD), "230 Logged in as %s@127.0.0.1 through "
      "sftp" % OTHER, "PASS: 230 names ssh -G's user and host, through "
      "sftp")
t.is_(c.cmd("NOOP"), "200 NOOP ok.", "NOOP")
t.is_(c.cmd("OPTS UTF8 ON"), "200 Always in UTF8 mode.", "OPTS UTF8 ON")
t.is_(c.cmd("PWD"), '257 "%s" is the current directory' % HOME,
      "PWD: the account's home, from sftp")
for line, want_reply in (("TYPE A", "200 Type set to A"),
                         ("TYPE I", "200 Type set to I"),
                         ("TYPE L 8", "200 Type set to I"),
                         ("MODE S", "200 Mode set to S"),
                         ("STRU F", "200 Structure set to F")):
    t.is_(c.cmd(line), want_reply, line)
t.is_(code(c.cmd("TYPE E")), "504", "TYPE E: 504")
t.is_(c.cmd("ACCT x"), "502 Command not implemented.", "ACCT: 502")
t.is_(c.cmd("XYZZY plugh"), "502 Command not implemented.",
      "an unknown command: 502")
t.is_(c.cmd("NOOP"), "200 NOOP ok.", "the session goes on after 502")
t.is_(c.cmd("ABOR"), "225 No transfer to ABOR.", "ABOR while idle: 225")
for line in ("PORT 10,9,8,7,4,1", "PORT 127,0,0,1,0,21"):
    t.ok(code(c.cmd(line)) in ("500", "504"),
         "%r (another host, a port below 1024) refused with 500/504" %
         line)
r = c.cmd("EPSV")
t.ok(re.match(r"^229 Entering Extended Passive Mode \(\|\|\|\d+\|\)$", r),
     "EPSV: 229 with a port", r)
r = c.cmd("PASV")
t.ok(re.match(r"^227 Entering Passive Mode \(127,0,0,1,\d+,\d+\)\.$", r),
     "PASV: 227 with 127.0.0.1 and a port", r)
r = c.cmd("HELP")
t.ok(r.startswith("214-") and r.splitlines()[-1] == "214 Help OK.",
     "HELP: 214", r)
t.is_(code(c.cmd("SITE HELP")), "214", "SITE HELP: 214")
r = c.cmd("STAT")
t.ok(r.startswith("211-") and r.splitlines()[-1] == "211 End of status.",
     "STAT: 211 ... 211 End of status.", r)
r = c.cmd("STAT f1m")
t.ok(r.startswith("213-") and r.splitlines()[-1] == "213 End of status."
     and any(ln.endswith("f1m") and " 1000000 " in ln
             for ln in r.splitlines()),
     "STAT f1m: 213, an ls -l line with its size and name", r)
t.ok(c.cmd("REIN").startswith("220") and
     c.cmd("PWD") == "530 Please log in with USER and PASS.",
     "REIN: 220, then logged out")
t.is_(c.cmd("QUIT"), "221 Goodbye.", "QUIT: 221")
t.ok(c.closed(), "and the connection closes")

# -- Every client, passive and active, down and up -----------------------
for cl in L.matrix(CLIENTS, fwd.port, srv):
    what = "%s %s" % (cl.name, cl.mode)
    for tag in SIZES:
        local = lab.path("dl-%s-%s-%s" % (cl.name, cl.mode, tag))
        up = "up-%s-%s-%s" % (cl.name, cl.mode, tag)
        for verb, transfer in L.both_ways(cl, srv, "f" + tag, local,
                                          src[tag], up, want[tag]):
            ok, text = transfer()
            t.ok(ok, "%s: %s %s bytes, same sha256" % (what, verb,
                                                      SIZES[tag]),
                 text + lab.tail(fwd.logname))
    ok, text = cl.list()
    t.ok(ok and re.search(r" 50000000 .* f50m\r?$", text, re.M) and
         re.search(r" f1\r?$", text, re.M), "%s: LIST shows the files "
         "with their sizes" % what, text)
    ok, text = cl.nlst()
    t.ok(ok and {"f50m", "f1", "f0"} <= set(text.split()),
         "%s: NLST names the files" % what, text)
    if cl.lists_mlsd:
        ok, text = cl.mlsd()
        t.ok(ok and {"f50m", "f1"} <= set(text.split()),
             "%s: MLSD names the files" % what, text)
    # REST: a download resumed from 1234567 bytes.
    part = lab.path("part-%s-%s" % (cl.name, cl.mode))
    with open(src["50m"], "rb") as f, open(part, "wb") as o:
        o.write(f.read(1234567))
    ok, text = cl.resume("f50m", part)
    t.ok(ok and L.sha256(part) == want["50m"],
         "%s: REST resumes a download, same sha256" % what, text)
f = session()                     # a session open, its channel with it
f.voidcmd("TYPE I")
f.size("f1")
side = server_side()
f.quit()
f.close()
# (sh: the account's shell, through which sshd starts the subsystem.)
t.ok(S.SFTP_SERVER in side and all(
    a in (S.SFTP_SERVER, "sh", "/bin/sh") or a.startswith("sshd")
    for a in side),
     "on the ssh server only sshd and sftp-server run: no FTP server", side)
t.ok("subsystem 'sftp' for %s" % OTHER in lab.log("sshd.log"),
     "sshd started the sftp subsystem for %s" % OTHER, lab.tail("sshd.log"))
m = re.search(r'#\d+ RETR "([^"]*)" 50000000 bytes \d+\.\d{3}s 226',
              lab.log(fwd.logname))
t.ok(m is not None and m.group(1).endswith("f50m"),
     "the log has a line per transfer: #N RETR \"path\" BYTES bytes "
     "S.SSSs 226", lab.tail(fwd.logname))
t.ok(re.search(r"#\d+ session from 127\.0\.0\.1(:\d+)? \(uid 0\) to "
               r"sftp$", lab.log(fwd.logname), re.M),
     "the log has #N session from 127.0.0.1 (uid 0) to sftp",
     lab.tail(fwd.logname))

# REST by hand: the exact reply, and a download from an offset.
f = session()
f.voidcmd("TYPE I")
t.is_(f.sendcmd("REST 999990"), "350 Restarting at 999990. Send STORE or "
      "RETRIEVE.", "REST: 350 with the offset")
conn = f.transfercmd("RETR f1m")
got = L.recv_all(conn)
conn.close()
t.is_(f.voidresp()[:3], "226", "RETR after REST: 226")
with open(lab.path("src-1m"), "rb") as one:
    t.ok(got == one.read()[999990:], "RETR after REST 999990: the last "
         "10 bytes", "got %d bytes" % len(got))

# APPE: onto an existing file, and onto a new one.
put_file("appended", b"head:")
f.storbinary("APPE appended", open(lab.path("src-1m"), "rb"))
with open(lab.path("src-1m"), "rb") as one:
    body = one.read()
with open(os.path.join(home, "appended"), "rb") as a:
    t.ok(a.read() == b"head:" + body, "APPE (ftplib): appended to the "
         "existing file, byte for byte")
cu = Curl(fwd.port, USER, PASSWORD, False)
ok, text = run(cu.base + ["--append", "-T", src["1"], cu.url + "appended"])
with open(os.path.join(home, "appended"), "rb") as a, \
        open(src["1"], "rb") as one:
    t.ok(ok and a.read() == b"head:" + body + one.read(),
         "APPE (curl --append): appended again", text)
r = f.storbinary("APPE appe-new", open(src["1"], "rb"))
t.ok(r.startswith("226") and L.sha256(os.path.join(home, "appe-new")) ==
     want["1"], "APPE of a new file creates it", r)
f.quit()
f.close()



def stou(active):
    """One STOU by hand: (the 150's name, the final reply)."""
    c, _ = raw()
    c.cmd("TYPE I")
    if active:
        lst = socket.socket()
        lst.bind(("127.0.0.1", 0))
        lst.listen(1)
        c.cmd(L.port_command(lst.getsockname()[1]))
        first = c.cmd("STOU")
        d = lst.accept()[0] if first.startswith("150") else None
        lst.close()
    else:
        port = L.ftp_port_of(c.cmd("PASV"))
        d = socket.create_connection(("127.0.0.1", port), timeout=20)
        first = c.cmd("STOU")
    if d is not None:
        d.sendall(body)
        d.close()
    final = c.reply() if first.startswith("150") else ""
    c.close()
    m = re.match(r"^150 FILE: (.+)$", first)
    return (m.group(1) if m else None), first, final


# STOU: a name of the server's choosing, twice, two files.
stoued = []
for active in (False, True):
    name, first, final = stou(active)
    path = os.path.join(home, name) if name else ""
    if name and name.startswith("/"):
        path = name
    t.ok(name is not None and final.startswith("226") and
         os.path.exists(path) and L.sha256(path) == want["1m"],
         "STOU (%s): 150 FILE: NAME, 226, and NAME holds the data" %
         ("active" if active else "passive"), "%s / %s" % (first, final))
    stoued.append(name)
t.ok(len(set(stoued)) == 2 and None not in stoued,
     "two STOUs, two different names", stoued)

# -- TYPE A: LF to CRLF on RETR, CRLF to LF on STOR ----------------------
text_lf = b"".join(b"line %d of the text, with some words\n" % i
                   for i in range(20000)) + b"\n\nlast"
put_file("text.txt", text_lf)
f = session()
f.voidcmd("TYPE A")
conn = f.transfercmd("RETR text.txt")
got = L.recv_all(conn)
conn.close()
final = f.voidresp()
t.ok(got == text_lf.replace(b"\n", b"\r\n") and final.startswith("226"),
     "TYPE A RETR: every LF arrives as CRLF (%d bytes in)" % len(text_lf),
     "got %d bytes, want %d" % (len(got), len(text_lf.replace(b"\n",
                                                             b"\r\n"))))
conn = f.transfercmd("STOR text-up.txt")
crlf = text_lf.replace(b"\n", b"\r\n")
for i in range(0, len(crlf), 4097):      # CR and LF in different sends
    conn.sendall(crlf[i:i + 4097])
conn.close()
final = f.voidresp()
with open(os.path.join(home, "text-up.txt"), "rb") as up:
    t.ok(final.startswith("226") and up.read() == text_lf,
         "TYPE A STOR: every CRLF is stored as LF", final)
t.is_(f.sendcmd("REST 10")[:3], "350", "TYPE A: REST 10 is taken")
t.is_(transfer_reply(f, "RETR text.txt")[:3], "504",
      "TYPE A: RETR after REST 10 is 504")
f.voidcmd("TYPE I")
f.sendcmd("REST 0")
conn = f.transfercmd("RETR text.txt")
got = L.recv_all(conn)
conn.close()
f.voidresp()
t.ok(got == text_lf, "TYPE I again: the text comes as it is")
f.quit()
f.close()
c, _ = raw()
c.cmd("TYPE A")
port = L.ftp_port_of(c.cmd("PASV"))
d = socket.create_connection(("127.0.0.1", port), timeout=20)
r = c.cmd("RETR text.txt")
L.recv_all(d)
d.close()
c.reply()
# NAME: as the client gave it, or absolute (the contract allows both).
t.ok(re.match(r"^150 Opening ASCII mode data connection for (%s/)?"
              r"text\.txt \(%d bytes\)$" % (re.escape(HOME), len(text_lf)),
              r),
     "TYPE A RETR: 150 Opening ASCII mode ... (N bytes)", r)
c.cmd("TYPE I")
port = L.ftp_port_of(c.cmd("PASV"))
d = socket.create_connection(("127.0.0.1", port), timeout=20)
r = c.cmd("RETR f1m")
L.recv_all(d)
d.close()
c.reply()
t.ok(r in ("150 Opening BINARY mode data connection for %s (1000000 "
           "bytes)" % n for n in ("f1m", HOME + "/f1m")),
     "TYPE I RETR: 150 Opening BINARY mode ... (N bytes)", r)
c.close()

# -- Names with spaces, UTF-8 and a leading dash -------------------------
NAMES = ["with space.bin", "ünïcødé файл.bin", "-dash.bin"]
for n in NAMES:
    shutil.copy(lab.path("src-1m"), put_file(n, b""))
for cls in CLIENTS:
    cl = cls(fwd.port, USER, PASSWORD, False)
    for n in NAMES:
        remote = n
        if cls is Lftp and n.startswith("-"):
            remote = "./" + n         # lftp's get would take it for options
        local = lab.path("name-%s-%d" % (cl.name, NAMES.index(n)))
        ok, text = L.fetch(cl, remote, local, want["1m"])
        t.ok(ok, "%s: RETR %r, same sha256" % (cl.name, n), text)
        up = n.replace(".bin", "-up-%s.bin" % cl.name)
        ok, text = L.store(cl, lab.path("src-1m"), up,
                           os.path.join(home, up), want["1m"])
        t.ok(ok, "%s: STOR %r, same sha256, that name on the server" %
             (cl.name, up), text)
f = session()
listed = set(f.nlst())
t.ok(set(NAMES) <= listed and
     {n.replace(".bin", "-up-ftplib.bin") for n in NAMES} <= listed,
     "NLST names them exactly, in UTF-8", sorted(listed))
lines = []
f.retrlines("LIST", lines.append)
t.ok(all(any(ln.endswith(" " + n) for ln in lines) for n in NAMES),
     "LIST lines end with them", "\n".join(lines))
f.quit()
f.close()

# -- Directories: MKD, CWD, CDUP, PWD, RMD, RNFR/RNTO, DELE --------------
c, _ = raw()
r = c.cmd("MKD d one")
t.ok(r == '257 "%s/d one" created' % HOME and
     os.path.isdir(os.path.join(home, "d one")), "MKD: 257 \"/abs\" "
     "created, and the directory exists", r)
t.is_(c.cmd("CWD d one"), "250 Directory changed to %s/d one" % HOME,
      "CWD into it: 250 with the absolute path")
t.is_(c.cmd("PWD"), '257 "%s/d one" is the current directory' % HOME,
      "PWD there")
r = c.cmd('MKD q"uote')
t.ok(r.startswith("257") and os.path.isdir(os.path.join(home, "d one",
                                                        'q"uote')),
     "MKD of a name with a double quote", r)
t.is_(c.cmd('XCWD q"uote'), '250 Directory changed to %s/d one/q"uote' %
      HOME, "XCWD into it")
t.is_(c.cmd("XPWD"), '257 "%s/d one/q""uote" is the current directory' %
      HOME, "XPWD doubles the quote in the path")
t.is_(c.cmd("CDUP"), "250 Directory changed to %s/d one" % HOME, "CDUP")
t.is_(c.cmd("XCUP"), "250 Directory changed to %s" % HOME, "XCUP")
t.is_(c.cmd("CWD /"), "250 Directory changed to /", "CWD /")
t.is_(c.cmd("CDUP"), "250 Directory changed to /", "CDUP at / stays at /")
t.is_(c.cmd("CWD " + HOME + "/d one"), "250 Directory changed to %s/d one"
      % HOME, "CWD to an absolute path")
r = c.cmd('RMD q"uote')
t.ok(r in ('250 Removed q"uote', '250 Removed %s/d one/q"uote' % HOME),
     "RMD: 250 Removed NAME", r)
t.ok(not os.path.exists(os.path.join(home, "d one", 'q"uote')),
     "and the directory is gone")
c.cmd("CWD ..")
put_file("tomove", b"move me")
t.is_(c.cmd("RNTO moved"), "503 RNFR first.", "RNTO without RNFR: 503")
t.is_(c.cmd("RNFR tomove"), "350 Ready for RNTO.", "RNFR: 350")
t.is_(c.cmd("RNTO d one/moved"), "250 Rename successful.", "RNTO: 250")
t.ok(not os.path.exists(os.path.join(home, "tomove")) and
     open(os.path.join(home, "d one", "moved"), "rb").read() == b"move me",
     "the file moved into the directory")
r = c.cmd("RMD d one")
t.ok(code(r) == "550" and os.path.isdir(os.path.join(home, "d one")),
     "RMD of a directory that is not empty: 550, still there", r)
r = c.cmd("DELE d one/moved")
t.ok(r in ("250 Deleted d one/moved", "250 Deleted %s/d one/moved" % HOME),
     "DELE: 250 Deleted NAME", r)
t.ok(not os.path.exists(os.path.join(home, "d one", "moved")),
     "and the file is gone")
r = c.cmd("RMD d one")
t.ok(r in ("250 Removed d one", "250 Removed %s/d one" % HOME),
     "RMD of the emptied one", r)
t.ok(not os.path.exists(os.path.join(home, "d one")), "and it is gone")
c.close()

# -- MLSD and MLST facts against os.stat; SIZE, MDTM, MFMT, SITE CHMOD ----
STAMP = calendar.timegm((2020, 1, 2, 3, 4, 5))
put_file("stamped", b"12345")
os.utime(os.path.join(home, "stamped"), (STAMP, STAMP))
os.makedirs(os.path.join(home, "adir"))
account.own(os.path.join(home, "adir"))
os.chmod(os.path.join(home, "adir"), 0o750)


def facts_of(st):
    return {"type": "dir" if stat.S_ISDIR(st.st_mode) else "file",
            "size": str(st.st_size),
            "modify": time.strftime("%Y%m%d%H%M%S",
                                    time.gmtime(st.st_mtime)),
            "unix.mode": "0%o" % (st.st_mode & 0o7777)}


def compare(facts, st):
    """The facts that differ from os.stat's (size only for files)."""
    mine = facts_of(st)
    keys = ["type", "modify", "unix.mode"] + (
        ["size"] if mine["type"] == "file" else [])
    return {k: (facts.get(k), mine[k]) for k in keys
            if facts.get(k) != mine[k]}


f = session()
entries = dict(f.mlsd())
real = {n for n in os.listdir(home)}
t.ok(set(entries) - {".", ".."} == real, "MLSD lists every entry of the "
     "home directory, no more", "MLSD %s\nos   %s" % (
         sorted(set(entries) - {".", ".."}), sorted(real)))
bad = {}
for n in sorted(real & set(entries)):
    d = compare(entries[n], os.lstat(os.path.join(home, n)))
    if d:
        bad[n] = d
t.ok(not bad and len(real & set(entries)) > 10,
     "MLSD: size, modify (UTC), unix.mode and type agree with os.stat "
     "for all %d entries" % len(real & set(entries)), bad)
t.ok(entries.get("stamped", {}).get("modify") == "20200102030405",
     "MLSD: modify is UTC, while ftpfwd runs in TZ=JST-9",
     entries.get("stamped"))
t.ok(entries.get("adir", {}).get("unix.mode") == "0750" and
     entries.get("adir", {}).get("type") == "dir",
     "MLSD: a directory is type=dir, unix.mode=0750", entries.get("adir"))


def mlst(name):
    r = f.sendcmd("MLST " + name)
    lines = r.splitlines()
    if len(lines) != 3 or lines[0] not in ("250-Listing " + name,
                                           "250-Listing %s/%s" % (HOME,
                                                                  name)) or \
            lines[2] != "250 End" or not lines[1].startswith(" "):
        return r, None, None
    factstr, _, path = lines[1][1:].partition(" ")
    facts = {}
    for fact in factstr.rstrip(";").split(";"):
        k, _, v = fact.partition("=")
        facts[k.lower()] = v
    return r, facts, path


for name in ("stamped", "f50m", "adir", "with space.bin", "-dash.bin"):
    r, facts, path = mlst(name)
    t.ok(facts is not None and path == HOME + "/" + name and
         not compare(facts, os.lstat(os.path.join(home, name))),
         "MLST %r: 250-Listing, facts as os.stat says, the absolute path, "
         "250 End" % name, "%s\n%s" % (r, facts and compare(
             facts, os.lstat(os.path.join(home, name)))))
t.is_(f.sendcmd("OPTS MLST type;size;"), "200 MLST OPTS type;size;",
      "OPTS MLST type;size;")
r, facts, path = mlst("stamped")
t.ok(facts is not None and set(facts) == {"type", "size"},
     "after OPTS MLST type;size;, MLST gives only those", r)
f.sendcmd("OPTS MLST type;size;modify;perm;unix.mode;")
t.is_(f.sendcmd("SIZE f50m"), "213 50000000", "SIZE f50m")
# SIZE and MDTM right after a listing that said them, and right after
# this session changed the file: what the file is now.
put_file("changing", b"12345")
list(f.mlsd())
t.is_(f.sendcmd("SIZE changing"), "213 5", "SIZE right after MLSD")
f.storbinary("STOR changing", open(src["1"], "rb"))
t.is_(f.sendcmd("SIZE changing"), "213 1", "SIZE right after this "
      "session's STOR: the new size")
f.storbinary("APPE changing", open(lab.path("src-1m"), "rb"))
t.is_(f.sendcmd("SIZE changing"), "213 1000001", "SIZE right after APPE")
f.sendcmd("MFMT 20010203040506 changing")
t.is_(f.sendcmd("MDTM changing"), "213 20010203040506", "MDTM right "
      "after MFMT")
f.sendcmd("RNFR changing")
f.sendcmd("RNTO changed")
t.ok(ftplib_reply(lambda: f.sendcmd("SIZE changing")).startswith("550")
     and f.sendcmd("SIZE changed") == "213 1000001",
     "right after RNFR/RNTO: SIZE of the old name 550, of the new name its "
     "size")
f.sendcmd("DELE changed")
t.ok(ftplib_reply(lambda: f.sendcmd("SIZE changed")).startswith("550"),
     "right after DELE: SIZE is 550")
# Another session changes a file that this one has just listed.
put_file("shared", b"12345")
list(f.mlsd())
g = session()
g.storbinary("STOR shared", open(lab.path("src-1m"), "rb"))
g.quit()
g.close()
# The man page: what a listing told may answer SIZE for 2 s, so a change
# made meanwhile by someone else may go unseen that long, and no longer.
stored = time.monotonic()
sizes = []


def fresh():
    sizes.append(f.sendcmd("SIZE shared"))
    return sizes[-1] == "213 1000000"


t.ok(L.eventually(fresh, timeout=4) and
     time.monotonic() - stored < 3.5,
     "SIZE after another session's STOR of a file this one listed: the "
     "new size within the 2 s the man page allows (first answer %r)" %
     sizes[:1], sizes[-3:])
# A file whose stat says 0 bytes but that has more (/proc, on the ssh
# server): all of it, as cat would give it.
with open("/proc/version", "rb") as pv:
    version = pv.read()
f.voidcmd("TYPE I")
conn = f.transfercmd("RETR /proc/version")
got = L.recv_all(conn)
conn.close()
f.voidresp()
t.ok(got == version, "RETR /proc/version (stat says 0 bytes): the whole "
     "text", "got %r" % got[:200])
t.is_(f.sendcmd("SIZE f0"), "213 0", "SIZE of an empty file")
r = ftplib_reply(lambda: f.sendcmd("SIZE adir"))
t.ok(r.startswith("550") and "not a plain file" in r,
     "SIZE of a directory: 550 NAME: not a plain file", r)
t.is_(f.sendcmd("MDTM stamped"), "213 20200102030405", "MDTM: UTC")
t.is_(f.sendcmd("MDTM f1m"), "213 " + time.strftime(
    "%Y%m%d%H%M%S", time.gmtime(os.stat(os.path.join(home,
                                                     "f1m")).st_mtime)),
      "MDTM of a file just written")
r = f.sendcmd("MFMT 19991231235958 stamped")
t.ok(r in ("213 Modify=19991231235958; " + n for n in ("stamped", HOME +
                                                       "/stamped")),
     "MFMT: 213 Modify=...; path", r)
t.is_(os.stat(os.path.join(home, "stamped")).st_mtime,
      float(calendar.timegm((1999, 12, 31, 23, 59, 58))),
      "MFMT: the file's mtime is that time in UTC")
t.is_(f.sendcmd("SITE CHMOD 0751 stamped"), "200 SITE CHMOD command ok.",
      "SITE CHMOD 0751")
t.is_(stat.S_IMODE(os.stat(os.path.join(home, "stamped")).st_mode), 0o751,
      "SITE CHMOD: the mode is 0751")

# -- Errors: the exact codes ---------------------------------------------
ROOTFILE = os.path.join(home, "root-only")
with open(ROOTFILE, "wb") as rf:
    rf.write(b"not for you")
os.chmod(ROOTFILE, 0o600)                # root's, in the account's home
ROOTDIR = os.path.join(home, "root-dir")
os.makedirs(ROOTDIR)
os.chmod(ROOTDIR, 0o755)
with open(os.path.join(ROOTDIR, "inside"), "wb") as rf:
    rf.write(b"x")
for active in (False, True):
    mode = "active" if active else "passive"
    f.set_pasv(not active)
    r = transfer_reply(f, "RETR no-such-file")
    t.ok(r.startswith("550") and "No such file" in r,
         "%s: RETR of a missing file: 550 ...: No such file" % mode, r)
    r = transfer_reply(f, "RETR adir")
    t.ok(r.startswith("550"), "%s: RETR of a directory: 550" % mode, r)
    r = transfer_reply(f, "RETR root-only")
    t.ok(r.startswith("550") and "Permission denied" in r,
         "%s: RETR of root's 0600 file: 550 ...: Permission denied" % mode,
         r)
    r = transfer_reply(f, "STOR root-dir/new", b"data")
    t.ok(r.startswith("550") and "Permission denied" in r and
         not os.path.exists(os.path.join(ROOTDIR, "new")),
         "%s: STOR into root's directory: 550 ...: Permission denied" %
         mode, r)
    t.is_(f.sendcmd("NOOP"), "200 NOOP ok.", "%s: the session goes on" %
          mode)
f.set_pasv(True)
for cmd, needle, what in (
        ("CWD f1", "Not a directory", "CWD to a file"),
        ("CWD no-such-dir", "No such file", "CWD to a missing directory"),
        ("DELE no-such-file", "No such file", "DELE of a missing file"),
        ("DELE root-dir/inside", "Permission denied",
         "DELE in root's directory"),
        ("MKD root-dir/sub", "Permission denied",
         "MKD in root's directory"),
        ("MKD adir", "", "MKD of an existing directory"),
        ("RMD no-such-dir", "No such file", "RMD of a missing directory"),
        ("SIZE no-such-file", "No such file", "SIZE of a missing file"),
        ("MDTM no-such-file", "No such file", "MDTM of a missing file")):
    r = ftplib_reply(lambda: f.sendcmd(cmd))
    t.ok(r.startswith("550") and needle in r, "%s: 550 %s" % (
        what, needle), r)
c, _ = raw()
r = c.cmd("RNFR no-such-file")
if r.startswith("350"):
    r += " / " + c.cmd("RNTO renamed-from-nothing")
t.ok(r.split(" / ")[-1].startswith("550") and "No such file" in r and
     not os.path.exists(os.path.join(home, "renamed-from-nothing")),
     "RNFR of a missing file: 550 No such file (at RNFR or at RNTO)", r)
c.close()
t.ok(os.path.exists(os.path.join(ROOTDIR, "inside")) and
     not os.path.exists(os.path.join(ROOTDIR, "sub")),
     "root's directory is as it was")
t.is_(f.sendcmd("PWD"), '257 "%s" is the current directory' % HOME,
      "after the failed CWDs, still in the home directory")
f.quit()
f.close()

# -- ABOR of a running download, then the session goes on ----------------
for active in (False, True):
    mode = "active" if active else "passive"
    f = session(active)
    try:
        f.voidcmd("TYPE I")
        conn = f.transfercmd("RETR f50m")
        got = conn.recv(65536)
        replies = [f.abort()]            # the data connection still open
        if replies[0][:3] == "426":
            replies.append(f.getresp())
        conn.close()
        t.ok(len(got) > 0 and [code(x) for x in replies] == ["426", "226"],
             "%s: ABOR of a running download: 426, then 226" % mode,
             replies)
        data = []
        f.retrbinary("RETR f1m", data.append)
        t.ok(L.hashlib.sha256(b"".join(data)).hexdigest() == want["1m"],
             "%s: the session goes on after ABOR: RETR f1m, same sha256" %
             mode)
        f.quit()
    except (ftplib.Error, OSError, EOFError) as e:
        t.ok(False, "%s: ABOR" % mode, repr(e) + lab.tail(fwd.logname))
    finally:
        f.close()

# -- lftp mirror, down and up, a tree with subdirectories -----------------
def make_tree(top, salt):
    spec = {"a.bin": 100000, "sub dir/b.bin": 200001,
            "sub dir/deeper/c.bin": 3000, "sub dir/deeper/zero": 0,
            "ünï/d.txt": 17, "-lead/e.bin": 5000}
    for rel, size in spec.items():
        p = os.path.join(top, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        L.make_file(p, size + salt)
    os.makedirs(os.path.join(top, "empty"), exist_ok=True)
    return top


def tree_of(top):
    """relative path -> sha256 of a file, or "dir"."""
    out = {}
    for d, dirs, files in os.walk(top):
        for n in dirs:
            out[os.path.relpath(os.path.join(d, n), top)] = "dir"
        for n in files:
            out[os.path.relpath(os.path.join(d, n), top)] = L.sha256(
                os.path.join(d, n))
    return out


remote_tree = make_tree(os.path.join(home, "tree"), 0)
account.own(remote_tree)
# Times of their own, years back, for lftp to copy from MLSD's modify.
for i, rel in enumerate(sorted(tree_of(remote_tree))):
    when = STAMP + 3600 * i + 7
    os.utime(os.path.join(remote_tree, rel), (when, when))
lf = Lftp(fwd.port, USER, PASSWORD, False)
ok, text = lf.cmd("mirror tree %s" % lftp_quoted(lab.path("mirrored")))
t.ok(ok and tree_of(lab.path("mirrored")) == tree_of(remote_tree),
     "lftp mirror: the tree arrives whole, subdirectories and all",
     text + "\n%s\n%s" % (tree_of(lab.path("mirrored")),
                         tree_of(remote_tree)))
skew = {rel: (int(os.stat(os.path.join(lab.path("mirrored"), rel)).st_mtime),
              int(os.stat(os.path.join(remote_tree, rel)).st_mtime))
        for rel, v in tree_of(remote_tree).items() if v != "dir" and
        os.path.exists(os.path.join(lab.path("mirrored"), rel))}
t.ok(skew and all(a == b for a, b in skew.values()),
     "lftp mirror: the files keep the server's mtimes (MLSD's modify read "
     "as UTC)", {k: v for k, v in skew.items() if v[0] != v[1]})
local_tree = make_tree(lab.path("to-upload"), 7)
for active in (False, True):
    mode = "active" if active else "passive"
    dest = "tree-up-" + mode
    lf = Lftp(fwd.port, USER, PASSWORD, active)
    ok, text = lf.cmd("mirror -R %s %s" % (lftp_quoted(local_tree), dest))
    t.ok(ok and tree_of(os.path.join(home, dest)) == tree_of(local_tree),
         "lftp mirror -R (%s): the tree is uploaded whole" % mode, text)
# Run again: nothing to send (a reverse mirror's dry run says "get"
# for each file it would send); then one file grows, and it is the one.
lf = Lftp(fwd.port, USER, PASSWORD, False)


def would_send():
    ok, text = lf.cmd("mirror -R --dry-run %s tree-up-passive" %
                      lftp_quoted(local_tree))
    return ok, [ln for ln in text.splitlines() if ln.startswith("get ")], \
        text


ok, sends, text = would_send()
t.ok(ok and sends == [], "lftp mirror -R again: it sees nothing to send "
     "(the sizes MLSD reads back are right)", text)
with open(os.path.join(local_tree, "sub dir", "b.bin"), "ab") as grow:
    grow.write(b"more")
ok, sends, text = would_send()
t.ok(ok and len(sends) == 1 and
     urllib.parse.unquote(sends[0]).endswith("/sub dir/b.bin"),
     "and after one file grows, that file is the one it would send", text)

# -- FTPS toward the client: ClientTLS=explicit ---------------------------
with lab.setup(t):
    pki = lab.certs()
    tls = S.start_ftpfwd(lab, "-o", "ClientTLS=explicit", "-o",
                         "ClientCertificate=" + pki["cert"], "-o",
                         "ClientKey=" + pki["key"], log="fwd-tls.log")
c = L.Raw(tls.port)
c.reply()
feat = c.cmd("FEAT").splitlines()
t.ok({" AUTH TLS", " PBSZ", " PROT"} <= set(feat),
     "ClientTLS: FEAT lists AUTH TLS, PBSZ and PROT", feat)
c.close()
for cls, modes in ((CurlTLS, (False,)), (LftpTLS, (False, True)),
                   (FtplibTLS, (False, True))):
    for active in modes:
        cl = cls(tls.port, USER, PASSWORD, active, ca=pki["ca"])
        ok, text = L.fetch(cl, "f1m", lab.path("tls-dl"), want["1m"])
        t.ok(ok, "ClientTLS: %s %s: RETR, same sha256" % (cl.name, cl.mode),
             text + lab.tail(tls.logname))
        up = "tls-up-%s-%s" % (cl.name.split()[0], cl.mode)
        ok, text = L.store(cl, lab.path("src-1m"), up,
                           os.path.join(home, up), want["1m"])
        t.ok(ok, "ClientTLS: %s %s: STOR, same sha256" % (cl.name, cl.mode),
             text + lab.tail(tls.logname))
tf = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=pki["ca"]))
tf.connect("127.0.0.1", tls.port, timeout=30)
r = tf.login(USER, PASSWORD)
t.is_(r, "230 Logged in through sftp (ssh master at %s)" % lab.ctl,
      "ClientTLS, found by -S: 230 Logged in through sftp (ssh master at "
      "PATH)")
tf.prot_p()
data = []
tf.retrbinary("RETR f1m", data.append)
t.ok(L.hashlib.sha256(b"".join(data)).hexdigest() == want["1m"],
     "ClientTLS: PROT P download by hand, same sha256")
tf.quit()
tf.close()
# Each ftpfwd keeps up to 4 sftp channels open, each one of the master's
# sessions (sshd's MaxSessions, 10): this one is done, and goes.
tls.terminate()
tls.wait()

# -- PasswordFile and the usage errors ------------------------------------
status, err = S.run_ftpfwd(["-o", "Backend=sftp", "-L",
                            "2121:localhost:21", "-S", lab.ctl])
t.ok(status == 1 and "ftpfwd: -L 2121:localhost:21 names an FTP server, "
     "but Backend=sftp has none (use -L [bind_address:]port)" in err,
     "-o Backend=sftp -L 2121:localhost:21: exit 1 naming the option",
     "%s %s" % (status, err))
status, err = S.run_ftpfwd(["-L", "2121:localhost:21", "-o",
                            "Backend=sftp", "-S", lab.ctl])
t.ok(status == 1 and "-L 2121:localhost:21 names an FTP server" in err,
     "the same with -L before -o: exit 1", "%s %s" % (status, err))
wide = L.free_port()
status, err = S.run_ftpfwd(["-o", "Backend=sftp", "-L", "0.0.0.0:%d" %
                            wide, "-S", lab.ctl])
t.ok(status == 1 and "PasswordFile" in err,
     "-L 0.0.0.0:PORT without PasswordFile: exit 1 naming PasswordFile",
     "%s %s" % (status, err))
t.is_(lab.listener_pid(wide), None, "and nothing listens there")
pwfile = lab.path("ftp-password")
with open(pwfile, "w") as pf:
    pf.write("s3cret pass\nsecond line\n")
os.chmod(pwfile, 0o644)
status, err = S.run_ftpfwd(["-o", "Backend=sftp", "-o", "PasswordFile=" +
                            pwfile, "-L", "0.0.0.0:%d" % wide, "-S",
                            lab.ctl])
t.ok(status == 1 and "ftpfwd: PasswordFile %s: mode 0644 lets other users "
     "read it (chmod 600 %s)" % (pwfile, pwfile) in err,
     "a 0644 PasswordFile: exit 1, saying chmod 600", "%s %s" % (status,
                                                                 err))
for bad in (["-o", "Backend=ftp", "-W", "sftp"],
            ["-o", "Backend=sftp", "-W", "127.0.0.1:21"]):
    status, err = S.run_ftpfwd(bad + ["-S", lab.ctl])
    t.ok(status == 1, "%s: a usage error, exit 1" % " ".join(bad),
         "%s %s" % (status, err))
os.chmod(pwfile, 0o600)
with lab.setup(t):
    pw = S.start_ftpfwd(lab, "-o", "PasswordFile=" + pwfile,
                        binds=("0.0.0.0", "127.0.0.1"), log="fwd-pw.log")
for port, where in ((pw.ports[0], "0.0.0.0"), (pw.ports[1], "loopback")):
    for password, want_reply in (
            ("wrong", "530 Login incorrect."),
            ("second line", "530 Login incorrect."),
            ("s3cret pass", "230 Logged in through sftp (ssh master at "
             "%s)" % lab.ctl)):
        c = L.Raw(port)
        _, r = c.login(USER, password)
        t.is_(r, want_reply, "PasswordFile, %s listener, PASS %r" %
              (where, password))
        if r.startswith("530"):
            t.is_(c.cmd("PWD"), "530 Please log in with USER and PASS.",
                  "  and still logged out")
        else:
            t.is_(code(c.cmd("PWD")), "257", "  and logged in")
        c.close()
t.ok("s3cret" not in lab.log(pw.logname), "no password in the log")
pw.terminate()
pw.wait()

# -- -W sftp: behind socat, on a socketpair, on pipes ---------------------
wport = L.free_port()
lab.spawn(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" % wport,
           "EXEC:%s -W sftp -S %s" % (L.FTPFWD, lab.ctl)], "socat.log")
L.wait_for("socat", lambda: lab.listener_pid(wport) is not None)
c = L.Raw(wport)
banner, r = c.login(USER, PASSWORD)
t.ok(S.GREETING.match(banner) and r == "230 Logged in through sftp (ssh "
     "master at %s)" % lab.ctl, "-W sftp under socat: the greeting and "
     "the login", "%s / %s" % (banner, r))
c.close()
wsrv = L.Server("sftp-W", wport, home, USER, PASSWORD, None)
for cl in L.matrix([Curl, Ftplib], wport, wsrv):
    ok, text = L.fetch(cl, "f1m", lab.path("w-dl"), want["1m"])
    t.ok(ok, "-W sftp under socat: %s %s RETR, same sha256" % (cl.name,
                                                              cl.mode),
         text + lab.tail("socat.log"))
    up = "w-up-%s-%s" % (cl.name, cl.mode)
    ok, text = L.store(cl, lab.path("src-1m"), up, os.path.join(home, up),
                       want["1m"])
    t.ok(ok, "-W sftp under socat: %s %s STOR, same sha256" % (cl.name,
                                                              cl.mode),
         text + lab.tail("socat.log"))


class Pair(L.Raw):
    """Raw over our end of a socketpair."""

    def __init__(self, sock):
        self.sock, self.buf = sock, b""
        sock.settimeout(30)


ours, theirs = socket.socketpair()
wlog = open(lab.path("w-pair.log"), "ab")
wp = subprocess.Popen([L.FTPFWD, "-W", "sftp", "-S", lab.ctl],
                      stdin=theirs, stdout=theirs, stderr=wlog)
lab.adopt(wp)
theirs.close()
c = Pair(ours)
banner, r = c.login(USER, PASSWORD)
t.ok(S.GREETING.match(banner) and r.startswith("230 "),
     "-W sftp on a socketpair: greeting and login", "%s / %s" % (banner, r))
c.cmd("TYPE I")
port = L.ftp_port_of(c.cmd("PASV"))
d = socket.create_connection(("127.0.0.1", port), timeout=20)
first = c.cmd("RETR f1m")
got = L.recv_all(d)
d.close()
last = c.reply()
t.ok(first.startswith("150") and last.startswith("226") and
     L.hashlib.sha256(got).hexdigest() == want["1m"],
     "-W sftp on a socketpair: a passive RETR, same sha256",
     "%s / %s" % (first, last))
port = L.ftp_port_of(c.cmd("PASV"))
d = socket.create_connection(("127.0.0.1", port), timeout=20)
first = c.cmd("STOR w-pair-up")
with open(lab.path("src-1m"), "rb") as one:
    d.sendall(one.read())
d.close()
last = c.reply()
t.ok(first.startswith("150") and last.startswith("226") and
     L.sha256(os.path.join(home, "w-pair-up")) == want["1m"],
     "-W sftp on a socketpair: a passive STOR, same sha256",
     "%s / %s" % (first, last))
t.is_(c.cmd("QUIT"), "221 Goodbye.", "-W sftp on a socketpair: QUIT")
try:
    wp.wait(timeout=10)
except subprocess.TimeoutExpired:
    pass
t.is_(wp.poll(), 0, "and ftpfwd -W exits 0")
c.close()
r = subprocess.run([L.FTPFWD, "-W", "sftp", "-S", lab.ctl],
                   input=b"USER %s\r\nPASS x\r\nPWD\r\nQUIT\r\n" %
                   USER.encode(), capture_output=True, timeout=30)
lines = r.stdout.decode("utf-8", "replace").split("\r\n")
t.is_((r.returncode, [ln[:3] for ln in lines]),
      (0, ["220", "331", "230", "257", "221", ""]),
      "-W sftp on pipes: all replies, then exit 0")
t.ok(len(lines) > 3 and lines[3] == '257 "%s" is the current directory' %
     HOME, "-W sftp on pipes: PWD is the home directory", lines)

# -- LocalUsers: the account is another local user here, too -------------
# What it runs: connect, send some bytes, read to the end, say how it
# ended (as t/75's intruder).
INTRUDER = r"""
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=20)
except OSError as e:
    print("refused", e, flush=True)
    sys.exit(0)
if len(sys.argv) > 2:
    s.sendall(sys.argv[2].encode())
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


def as_account(*args):
    return subprocess.run(
        [L.PY, "-c", INTRUDER] + [str(a) for a in args], user=account.uid,
        group=account.gid, extra_groups=[], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        timeout=30).stdout.strip()


out = as_account(fwd.port, "USER x\r\nPASS y\r\nPWD\r\n")
t.ok("421 ftpfwd: local user %s (uid %d) may not use this forward" % (
    OTHER, account.uid) in out and "230" not in out,
     "LocalUsers=self: another local user gets 421 naming it, no login",
     out)
c, _ = raw()
c.cmd("TYPE I")
for cmd in ("PASV", "EPSV"):
    r = c.cmd(cmd)
    port = L.ftp_port_of(r) if cmd == "PASV" else int(
        re.search(r"\(\|\|\|(\d+)\|\)", r).group(1))
    stolen = as_account(port)
    d = socket.create_connection(("127.0.0.1", port), timeout=20)
    first = c.cmd("RETR f1m")
    got = L.recv_all(d)
    d.close()
    last = c.reply()
    t.ok(re.match(r"(refused |(eof|reset) 0)", stolen.splitlines()[-1]
                  if stolen else "") and last.startswith("226") and
         L.hashlib.sha256(got).hexdigest() == want["1m"],
         "%s: another local user's connection to the data port gets "
         "nothing, the owner's RETR is whole" % cmd,
         "intruder: %r; owner: %s / %s" % (stolen, first, last))
c.close()

# -- At the end ---------------------------------------------------------------
log = lab.log(fwd.logname)
t.ok(PASSWORD not in log and "PASS " not in log,
     "no password in ftpfwd's log")
t.ok(fwd.poll() is None, "ftpfwd still running", log[-3000:])
t.ok(L.pid_alive(lab.master_pid), "the master still up")
t.done()
