"""Real FTP clients driven the way a user would drive them.  Each call
returns (ok, text): whether the client said it succeeded, and what it
printed (for listings and for diagnostics)."""

import ftplib
import re
import ssl
import subprocess
import urllib.parse

TIMEOUT = 120


def run(argv, stdin=None):
    try:
        r = subprocess.run(argv, input=stdin, capture_output=True,
                           timeout=TIMEOUT)
    except subprocess.TimeoutExpired as e:
        return False, "timed out: %r" % (e,)
    out = (r.stdout + r.stderr).decode("utf-8", "replace")
    return r.returncode == 0, out


def url_quoted(s, safe="/"):
    """s in a URL: every byte but letters, digits, _.-~ and safe's as
    %XX (a path keeps its slashes)."""
    return urllib.parse.quote(s, safe=safe)


def lftp_quoted(s):
    """s as one word of lftp's command language, whatever it holds: in
    double quotes, inside which a backslash escapes " and itself."""
    return '"%s"' % s.replace("\\", "\\\\").replace('"', '\\"')


def ftp_quoted(s):
    """s as one word of inetutils ftp's commands: every character but
    letters, digits and ./_- escaped with a backslash (inside its double
    quotes a backslash escapes nothing)."""
    return re.sub(r"([^\w./-])", r"\\\1", s)


class Client:
    """What every client takes, in the same order: the port and host to
    reach (an IPv6 host is written bare, ::1), the login, passive or
    active, the directory to work in, and for the FTPS ones the CA that
    signed the certificate."""
    name = None
    lists_mlsd = False

    def __init__(self, port, user, password, active, cwd="",
                 host="127.0.0.1", ca=None):
        self.port, self.user, self.password = port, user, password
        self.active, self.cwd, self.host, self.ca = active, cwd, host, ca
        self.mode = "active" if active else "passive"


class Curl(Client):
    name = "curl"

    def __init__(self, *args, **kw):
        Client.__init__(self, *args, **kw)
        host, cwd = self.host, self.cwd
        self.url = "ftp://%s:%d/%s" % ("[%s]" % host if ":" in host else host,
                                       self.port,
                                       url_quoted(cwd) + "/" if cwd else "")
        self.base = ["curl", "-sS", "-g", "--max-time", str(TIMEOUT),
                     "--user", "%s:%s" % (self.user, self.password)]
        if self.active:       # EPRT first, then PORT, as curl does
            self.base += ["-P", host if ":" not in host else "-"]

    def get(self, remote, local):
        return run(self.base + [self.url + url_quoted(remote), "-o", local])

    def put(self, local, remote):
        return run(self.base + ["-T", local, self.url + url_quoted(remote)])

    def resume(self, remote, local):
        return run(self.base + ["-C", "-", self.url + url_quoted(remote),
                                "-o", local])

    def list(self):
        return run(self.base + [self.url])

    def nlst(self):
        return run(self.base + ["--list-only", self.url])


class Lftp(Client):
    name = "lftp"
    lists_mlsd = True

    def __init__(self, *args, **kw):
        Client.__init__(self, *args, **kw)
        # lftp's defaults stay on: it sends AUTH TLS even when FEAT lists
        # none, and falls back to plain FTP on our 534.  The login goes
        # in the URL, where lftp decodes %XX: open -u splits user from
        # password at the first comma, and has no way to escape one.
        host = "[%s]" % self.host if ":" in self.host else self.host
        self.pre = ("set cmd:fail-exit true; set net:max-retries 1; "
                    "set net:timeout 30; set ftp:passive-mode %s; "
                    "set ftp:use-mlsd true; open ftp://%s:%s@%s:%d; %s" %
                    ("off" if self.active else "on",
                     url_quoted(self.user, safe=""),
                     url_quoted(self.password, safe=""), host, self.port,
                     "cd %s; " % lftp_quoted(self.cwd) if self.cwd else ""))

    def cmd(self, c):
        """c: lftp commands, run after the login; bytes go as they are."""
        if isinstance(c, bytes):
            return run(["lftp", "-c", self.pre.encode() + c])
        return run(["lftp", "-c", self.pre + c])

    def get(self, remote, local):
        return self.cmd("get %s -o %s" % (lftp_quoted(remote),
                                          lftp_quoted(local)))

    def put(self, local, remote):
        return self.cmd("put %s -o %s" % (lftp_quoted(local),
                                          lftp_quoted(remote)))

    def resume(self, remote, local):
        return self.cmd("get -c %s -o %s" % (lftp_quoted(remote),
                                             lftp_quoted(local)))

    def list(self):
        return self.cmd("ls")

    def nlst(self):
        return self.cmd("nlist")

    def mlsd(self):
        return self.cmd("cls -1")


class Ftplib(Client):
    """Python's ftplib: PASV on IPv4, EPSV on IPv6; PORT/EPRT likewise."""
    name = "ftplib"
    lists_mlsd = True

    def connection(self):
        return ftplib.FTP()

    def protect(self, f):
        pass

    def session(self, timeout=TIMEOUT):
        """Connected, logged in, in cwd, in the client's mode: the
        ftplib.FTP object, for what the other methods do not do."""
        f = self.connection()
        f.connect(self.host, self.port, timeout=timeout)
        f.login(self.user, self.password)      # FTP_TLS: AUTH TLS first
        self.protect(f)
        f.set_pasv(not self.active)
        if self.cwd:
            f.cwd(self.cwd)
        return f

    def do(self, fn):
        try:
            f = self.session()
            try:
                out = fn(f)
                f.quit()
            finally:
                f.close()
            return True, out if isinstance(out, str) else ""
        except (ftplib.Error, OSError, EOFError) as e:
            return False, "%s: %s" % (type(e).__name__, e)

    def get(self, remote, local):
        def fn(f):
            with open(local, "wb") as out:
                f.retrbinary("RETR " + remote, out.write)
        return self.do(fn)

    def put(self, local, remote):
        def fn(f):
            with open(local, "rb") as src:
                f.storbinary("STOR " + remote, src)
        return self.do(fn)

    def resume(self, remote, local):
        def fn(f):
            with open(local, "ab") as out:
                f.retrbinary("RETR " + remote, out.write, rest=out.tell())
        return self.do(fn)

    def list(self):
        lines = []
        return self.do(lambda f: (f.retrlines("LIST", lines.append),
                                  "\n".join(lines))[1])

    def nlst(self):
        return self.do(lambda f: "\n".join(f.nlst()))

    def mlsd(self):
        return self.do(lambda f: "\n".join(n for n, _ in f.mlsd()))


class InetutilsFtp(Client):
    """GNU inetutils ftp, fed a script on stdin like a batch job."""
    name = "ftp"

    def __init__(self, *args, **kw):
        Client.__init__(self, *args, **kw)
        # -g: a local file name is a name, not a pattern to expand.
        self.argv = ["ftp", "-n", "-v", "-g", "-A" if self.active else "-p",
                     self.host, str(self.port)]
        self.login = "user %s %s\nbinary\n%s" % (
            ftp_quoted(self.user), ftp_quoted(self.password),
            "cd %s\n" % ftp_quoted(self.cwd) if self.cwd else "")

    def script(self, body):
        ok, out = run(self.argv, (self.login + body + "quit\n").encode())
        # ftp exits 0 whatever happened; judge by its replies.
        bad = [line for line in out.splitlines()
               if line[:1] in ("4", "5") and line[:3].isdigit() and
               line[3:4] in (" ", "-")]
        return ok and not bad and "Not connected" not in out, out

    def get(self, remote, local):
        return self.script("get %s %s\n" % (ftp_quoted(remote),
                                            ftp_quoted(local)))

    def put(self, local, remote):
        return self.script("put %s %s\n" % (ftp_quoted(local),
                                            ftp_quoted(remote)))

    def resume(self, remote, local):
        return self.script("reget %s %s\n" % (ftp_quoted(remote),
                                              ftp_quoted(local)))

    def list(self):
        return self.script("ls\n")

    def nlst(self):
        return self.script("nlist\n")


CLIENTS = [Curl, Lftp, Ftplib, InetutilsFtp]


# -- The same clients, set to insist on FTPS (explicit, AUTH TLS) --------
class CurlTLS(Curl):
    name = "curl --ssl-reqd"

    def __init__(self, *args, **kw):
        Curl.__init__(self, *args, **kw)
        self.base += ["--ssl-reqd", "--cacert", self.ca]


class LftpTLS(Lftp):
    name = "lftp ftp:ssl-force"

    def __init__(self, *args, **kw):
        Lftp.__init__(self, *args, **kw)
        self.pre = ("set ftp:ssl-force true; set ftp:ssl-protect-data "
                    "true; set ssl:ca-file %s; " % lftp_quoted(self.ca)) + \
            self.pre


class FtplibTLS(Ftplib):
    name = "ftplib FTP_TLS"

    def connection(self):
        return ftplib.FTP_TLS(
            context=ssl.create_default_context(cafile=self.ca))

    def protect(self, f):
        f.prot_p()


TLS_CLIENTS = [CurlTLS, LftpTLS, FtplibTLS]
