"""A private loopback lab for ftpfwd's tests and demo: sshd, a ControlMaster,
real FTP servers and ftpfwd, each on a free port, each stopped by its pid."""

import atexit
import contextlib
import hashlib
import os
import pwd
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
FTPFWD = os.path.join(TOP, "ftpfwd")
PY = "/usr/bin/python3"          # Debian's, which sees python3-pyftpdlib
WAIT = 30                        # seconds any one start may take
# make check SANITIZE=1 says so: ftpfwd is built with ASan and UBSan.
SANITIZED = os.environ.get("FTPFWD_SANITIZED") == "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(what, cond, timeout=WAIT):
    """Poll a condition (a port, a line in a log) until it holds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.01)
    raise RuntimeError("timed out waiting for " + what)


def eventually(cond, timeout=10):
    """Whether a condition comes to hold within timeout; for a test to
    assert on, where wait_for would abort the whole file."""
    try:
        wait_for("a condition", cond, timeout)
        return True
    except RuntimeError:
        return False


def _have_v6():
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


HAVE_V6 = _have_v6()             # an IPv6 loopback (::1) to test on


def port_command(port, host="127.0.0.1"):
    """The PORT command that names host:port."""
    return "PORT %s,%d,%d" % (host.replace(".", ","), port >> 8, port & 255)


def allocated_port(text):
    """The port ftpfwd says it listens on, in its log or on stderr; None
    before it has said."""
    m = re.search(r"Allocated port (\d+) for FTP", text)
    return int(m.group(1)) if m else None


def port_open(port, host="127.0.0.1"):
    def probe():
        try:
            with socket.create_connection((host, port), timeout=1):
                return True
        except OSError:
            return False
    return probe


def recipe_lines(text):
    """The ~/.ssh/config recipe of the README (or the man page, or an
    example file), from "Host ftpgw" to its end, as lists of words."""
    lines = text.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.strip() ==
                 "Host ftpgw")
    out = []
    for ln in lines[start:]:
        if not ln.strip() or ln.startswith(".") or ln.startswith("("):
            break
        out.append(ln.split())
    return out


def processes():
    """(pid, argv as bytes) of every live process we can read."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % d, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and argv[0] and pid_alive(int(d)):
            yield int(d), argv


def recv_all(sock):
    """Everything a data connection brings, to its end."""
    got = b""
    while True:
        b = sock.recv(1 << 16)
        if not b:
            return got
        got += b


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fds(pid):
    """How many descriptors a process holds."""
    return len(os.listdir("/proc/%d/fd" % pid))


def fd_list(pid):
    d = "/proc/%d/fd" % pid
    return sorted("%s->%s" % (n, os.readlink(os.path.join(d, n)))
                  for n in os.listdir(d))


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_stat(pid):
    """The fields of /proc/PID/stat after the command's name, which may
    hold anything: [0] the state, [1] the parent's pid, [11] and [12]
    the user and system CPU time in clock ticks."""
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()


def cpu_seconds(pid):
    """The CPU time, user and system, that a process has used so far."""
    fields = proc_stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:       # a zombie child is gone for our purposes
        return proc_stat(pid)[0] != "Z"
    except OSError:
        return False


class Adopted:
    """A process that is not our child (the master, a daemon), with as
    much of Popen's interface as Lab.stop uses.  Held by a pidfd, through
    which a signal reaches that process or none, never a later one that
    got the same pid; where there are no pidfds (an old kernel, a seccomp
    filter), by its pid and start time, which a later one does not
    share."""

    def __init__(self, pid):
        self.pid, self.fd = pid, None
        try:
            self.fd = os.pidfd_open(pid)
        except ProcessLookupError:
            raise
        except OSError:
            try:
                self.started = proc_stat(pid)[19]
            except OSError:
                raise ProcessLookupError(pid)

    def poll(self):
        """None while it runs; its status is its parent's to know."""
        if self.fd is not None:
            return 0 if select.select([self.fd], [], [], 0)[0] else None
        try:
            fields = proc_stat(self.pid)
        except OSError:
            return 0
        return None if fields[19] == self.started and fields[0] != "Z" else 0

    def send_signal(self, sig):
        try:
            if self.fd is not None:
                signal.pidfd_send_signal(self.fd, sig)
            elif self.poll() is None:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass                # it has exited

    def kill(self):
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout=None):
        if self.fd is not None:
            gone = select.select([self.fd], [], [], timeout)[0]
        else:
            gone = eventually(lambda: self.poll() is not None,
                              WAIT if timeout is None else timeout)
        if not gone:
            raise subprocess.TimeoutExpired("pid %d" % self.pid, timeout)
        return 0

    def close(self):
        if self.fd is not None:
            os.close(self.fd)


class Lab:
    def __init__(self, name="lab"):
        self.dir = tempfile.mkdtemp(prefix="ftpfwd-%s." % name)
        self.procs = []         # Popen or Adopted; stopped in reverse order
        self.ftpfwds = []
        atexit.register(self.stop)

    @classmethod
    def started(cls, tap, name, sshd_extra=()):
        """A lab with its sshd and master up, or a TAP bail-out."""
        lab = cls(name)
        with lab.setup(tap):
            lab.start_sshd(sshd_extra)
            lab.start_master()
        return lab

    @contextlib.contextmanager
    def setup(self, tap):
        """Whatever a test starts in here: bail out saying why it failed."""
        try:
            yield
        except Exception as e:                    # noqa: BLE001
            tap.bail("cannot start the lab: %s" % e)

    def path(self, *p):
        return os.path.join(self.dir, *p)

    def spawn(self, argv, log, **kw):
        out = open(self.path(log), "ab")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=subprocess.STDOUT, **kw)
        return self.adopt(p)

    def adopt(self, proc):
        """Have stop() end proc too: a Popen, or the pid of a process
        that is not our child, which a pidfd then holds.  Returns proc."""
        if isinstance(proc, subprocess.Popen):
            self.procs.append(proc)
        else:
            try:
                self.procs.append(Adopted(proc))
            except ProcessLookupError:
                pass            # gone already: nothing to stop
        return proc

    def log(self, name):
        try:
            with open(self.path(name), "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def tail(self, name, lines=25):
        """The end of a log, for a failure's diagnostics."""
        return "--- the end of %s:\n%s" % (
            name, "\n".join(self.log(name).splitlines()[-lines:]))

    # -- sshd and the master ------------------------------------------
    def start_sshd(self, extra=()):
        os.makedirs("/run/sshd", exist_ok=True)
        for key in ("hostkey", "id"):
            if not os.path.exists(self.path(key)):
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N",
                                "", "-f", self.path(key)], check=True)
        shutil.copy(self.path("id.pub"), self.path("authorized_keys"))
        self.ssh_port = free_port()
        conf = ["Port %d" % self.ssh_port, "ListenAddress 127.0.0.1",
                "HostKey " + self.path("hostkey"),
                "AuthorizedKeysFile " + self.path("authorized_keys"),
                "PidFile " + self.path("sshd.pid"),
                "StrictModes no", "UsePAM no",
                "PermitRootLogin prohibit-password",
                "Subsystem sftp /usr/lib/openssh/sftp-server",
                "LogLevel VERBOSE"] + list(extra)
        with open(self.path("sshd_config"), "w") as f:
            f.write("\n".join(conf) + "\n")
        self.sshd = self.spawn(["/usr/sbin/sshd", "-D", "-e", "-f",
                                self.path("sshd_config")], "sshd.log")
        wait_for("sshd on port %d" % self.ssh_port, port_open(self.ssh_port))
        self.write_ssh_config()

    def write_ssh_config(self, extra=()):
        self.ctl = self.path("ctl")
        conf = ["Host lab", "  HostName 127.0.0.1",
                "  Port %d" % self.ssh_port, "  User root",
                "  IdentityFile " + self.path("id"), "  IdentitiesOnly yes",
                "  UserKnownHostsFile " + self.path("known_hosts"),
                "  StrictHostKeyChecking accept-new", "  BatchMode yes",
                "  ControlPath " + self.ctl, "  LogLevel ERROR"]
        conf += ["  " + e for e in extra]
        self.ssh_config = self.path("ssh_config")
        with open(self.ssh_config, "w") as f:
            f.write("\n".join(conf) + "\n")

    def start_socat_w(self, server_port, nofork=False, log="socat.log"):
        """ftpfwd -W behind socat on a free port: on a socketpair, or
        with nofork on the TCP socket itself, as inetd hands it over."""
        port = free_port()
        # socat splits its address at colons: escape ours.
        self.spawn(["socat", "TCP-LISTEN:%d,bind=127.0.0.1,reuseaddr,fork" %
                    port, "EXEC:%s -W 127.0.0.1\\:%d -S %s%s" % (
                        FTPFWD, server_port, self.ctl,
                        ",nofork" if nofork else "")], log)
        wait_for("socat", port_open(port))
        return port

    def recipe_config(self, recipe, ctl, port, server_port):
        """An ssh_config of the README's recipe (recipe_lines) as
        written, with only what names this machine replaced: the host,
        the ControlPath, the ports; then how to reach the lab's sshd."""
        subst = {"bastion.example.com": "127.0.0.1", "~/.ssh/cm-%C": ctl,
                 "2121:ftp.internal:21": "%d:127.0.0.1:%d" % (port,
                                                             server_port)}
        conf = []
        for words in recipe:
            words = [subst.get(w, w) for w in words]
            conf.append(("    " if words[0] != "Host" else "") +
                        " ".join(words))
        conf += ["    Port %d" % self.ssh_port, "    User root",
                 "    IdentityFile " + self.path("id"),
                 "    IdentitiesOnly yes",
                 "    UserKnownHostsFile " + self.path("known_hosts"),
                 "    StrictHostKeyChecking accept-new", "    BatchMode yes",
                 "    LogLevel ERROR"]
        cfg = self.path("recipe_config")
        with open(cfg, "w") as f:
            f.write("\n".join(conf) + "\n")
        return cfg

    def ssh(self, *args, **kw):
        return subprocess.run(["ssh", "-F", self.ssh_config] + list(args),
                              stdin=subprocess.DEVNULL, capture_output=True,
                              text=True, **kw)

    def start_master(self, *opts):
        r = self.ssh("-fNM", *opts, "lab")
        if r.returncode != 0:
            raise RuntimeError("ssh master: " + r.stderr)
        self.master_pid = self.master_check()
        if self.master_pid is None:
            raise RuntimeError("ssh master did not come up")
        self.adopt(self.master_pid)

    def master_check(self):
        r = self.ssh("-O", "check", "lab")
        m = re.search(r"pid=(\d+)", r.stderr)
        return int(m.group(1)) if m else None

    def remote_listeners(self):
        """TCP ports that sshd's children listen on: remote forwards."""
        out = subprocess.run(["ss", "-Hltnp"], capture_output=True,
                             text=True).stdout
        ours = set()
        for line in out.splitlines():
            port = int(line.split()[3].rsplit(":", 1)[1])
            for pid in map(int, re.findall(r"pid=(\d+)", line)):
                if port != self.ssh_port and self.descends(pid,
                                                           self.sshd.pid):
                    ours.add(port)
        return sorted(ours)

    @staticmethod
    def listener_pid(port):
        """The pid of whatever listens on 127.0.0.1:port, or None."""
        out = subprocess.run(["ss", "-Hltnp", "sport = :%d" % port],
                             capture_output=True, text=True).stdout
        m = re.search(r"pid=(\d+)", out)
        return int(m.group(1)) if m else None

    @staticmethod
    def descends(pid, ancestor):
        while pid > 1:
            if pid == ancestor:
                return True
            try:
                pid = int(proc_stat(pid)[1])
            except OSError:
                return False
        return False

    # -- FTP servers ---------------------------------------------------
    def make_root(self, name, writable=True):
        root = self.path(name)
        os.makedirs(root, exist_ok=True)
        os.chmod(root, 0o777 if writable else 0o755)
        return root

    def start_pyftpdlib(self, user="alice", password="secret", tls=False,
                        host="127.0.0.1", name=None):
        """name: of its log and root, for a second one of the same kind."""
        log = name or ("pyftpd-tls" if tls else "pyftpd") + (
            "-v6" if host != "127.0.0.1" else "")
        root = self.make_root(log + "-root")
        port = free_port()
        argv = [PY, os.path.join(HERE, "pyftpd.py"), str(port), root, user,
                password]
        if tls:
            argv += [self.certs()["cert"], self.certs()["key"]]
        p = self.spawn(argv, log + ".log",
                       env=dict(os.environ, PYFTPD_HOST=host))
        wait_for("pyftpdlib on port %d" % port, port_open(port, host))
        return Server(name or "pyftpdlib" + ("-tls" if tls else "") +
                      ("6" if host != "127.0.0.1" else ""), port, root,
                      user, password, p)

    def certs(self):
        """A CA, and a certificate it signed for localhost and 127.0.0.1;
        another CA that signed nothing of ours."""
        d = self.path("pki")
        files = {k: os.path.join(d, k + ".pem") for k in
                 ("ca", "ca-key", "cert", "key", "other-ca", "other-ca-key")}
        if os.path.exists(files["cert"]):
            return files
        os.makedirs(d)

        def openssl(*args):
            subprocess.run(["openssl"] + list(args), check=True,
                           capture_output=True)
        for ca in ("ca", "other-ca"):
            openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes",
                    "-days", "2", "-subj", "/CN=ftpfwd test " + ca,
                    "-keyout", files[ca + "-key"], "-out", files[ca])
        csr = os.path.join(d, "cert.csr")
        openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj",
                "/CN=localhost", "-keyout", files["key"], "-out", csr)
        ext = os.path.join(d, "ext")
        with open(ext, "w") as f:
            f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        openssl("x509", "-req", "-in", csr, "-CA", files["ca"], "-CAkey",
                files["ca-key"], "-CAcreateserial", "-days", "2",
                "-extfile", ext, "-out", files["cert"])
        return files

    def start_vsftpd(self, extra=(), tls=False, name="vsftpd", v6=False):
        # vsftpd will not chroot an anonymous user into a writable
        # directory: the files live in a writable pub/ below it.
        top = self.make_root(name + "-root", writable=False)
        root = self.make_root(os.path.join(name + "-root", "pub"))
        port = free_port()
        os.makedirs("/var/run/vsftpd/empty", exist_ok=True)
        conf = (["listen=NO", "listen_ipv6=YES", "listen_address6=::1"]
                if v6 else ["listen=YES", "listen_ipv6=NO",
                            "listen_address=127.0.0.1"])
        conf += ["listen_port=%d" % port, "background=NO",
                "anonymous_enable=YES", "local_enable=NO",
                "no_anon_password=YES", "anon_root=" + top,
                "write_enable=YES", "anon_upload_enable=YES",
                "anon_mkdir_write_enable=YES",
                "anon_other_write_enable=YES", "anon_umask=022",
                "allow_writeable_chroot=YES", "seccomp_sandbox=NO",
                "connect_from_port_20=NO", "port_promiscuous=NO",
                "pasv_promiscuous=NO", "xferlog_enable=YES",
                "vsftpd_log_file=" + self.path(name + ".xfer"),
                "secure_chroot_dir=/var/run/vsftpd/empty"]
        if tls:
            # FTPS only, as strict as vsftpd gets: TLS for the login and
            # every data connection, each resuming the control session,
            # and an upload complete only with its close_notify.
            conf += ["ssl_enable=YES", "allow_anon_ssl=YES",
                     "force_anon_logins_ssl=YES", "force_anon_data_ssl=YES",
                     "require_ssl_reuse=YES", "ssl_ciphers=HIGH",
                     "strict_ssl_read_eof=YES",
                     "rsa_cert_file=" + self.certs()["cert"],
                     "rsa_private_key_file=" + self.certs()["key"]]
        conf += list(extra)
        cfg = self.path(name + ".conf")
        with open(cfg, "w") as f:
            f.write("\n".join(conf) + "\n")
        p = self.spawn(["/usr/sbin/vsftpd", cfg], name + ".log")
        wait_for("vsftpd on port %d" % port,
                 port_open(port, "::1" if v6 else "127.0.0.1"))
        return Server(name, port, root, "anonymous", "ftpfwd@", p,
                      cwd="pub")

    def start_pureftpd(self, user="alice", password="secret"):
        """pure-ftpd as t/deps.sh unpacked it, with its default anti-FXP
        checks: data connections only from and to the control's peer.
        One virtual user, chrooted to a writable home."""
        bindir = os.path.join(HERE, "pure-ftpd", "usr")
        root = self.make_root("pureftpd-root")
        try:
            owner = pwd.getpwnam("ftp")
        except KeyError:
            owner = pwd.getpwnam("nobody")
        crypted = subprocess.run(["openssl", "passwd", "-6", password],
                                 capture_output=True, text=True,
                                 check=True).stdout.strip()
        pw, pdb = self.path("pureftpd.passwd"), self.path("pureftpd.pdb")
        with open(pw, "w") as f:
            f.write("%s:%s:%d:%d::%s/./::::::::::::\n" % (
                user, crypted, owner.pw_uid, owner.pw_gid, root))
        subprocess.run([os.path.join(bindir, "bin", "pure-pw"), "mkdb",
                        pdb, "-f", pw], check=True, capture_output=True)
        port = free_port()
        # -E: no anonymous; -H: no DNS; -A: chroot everyone.
        p = self.spawn([os.path.join(bindir, "sbin", "pure-ftpd"), "-S",
                        "127.0.0.1,%d" % port, "-l", "puredb:" + pdb, "-E",
                        "-H", "-A"], "pureftpd.log")
        wait_for("pure-ftpd on port %d" % port, port_open(port))
        return Server("pure-ftpd", port, root, user, password, p)

    # -- ftpfwd --------------------------------------------------------
    def start_ftpfwd(self, server_port, *args, log="ftpfwd.log",
                     bind="127.0.0.1", host="127.0.0.1", under=(),
                     timeout=WAIT, **popen):
        """Run ftpfwd in the foreground on a port it picks; return it,
        with .port and .logname.  under: a command to run it under
        (valgrind and its options); popen: for Popen (env, preexec_fn)."""
        argv = list(under) + [FTPFWD, "-d", "-L", "%s:0:%s:%d" % (
            bind, host, server_port), "-S", self.ctl] + list(args)
        return self._ftpfwd_ready(argv, log, timeout, popen)

    def start_ftpfwd_sftp(self, *args, log="ftpfwd-sftp.log",
                          bind="127.0.0.1", timeout=WAIT, **popen):
        """ftpfwd -o Backend=sftp in the foreground on a port it picks,
        through the lab's master: the ssh server's files, no FTP server.
        Returns it, with .port and .logname."""
        argv = [FTPFWD, "-d", "-o", "Backend=sftp", "-L", "%s:0" % bind,
                "-S", self.ctl] + list(args)
        return self._ftpfwd_ready(argv, log, timeout, popen)

    def _ftpfwd_ready(self, argv, log, timeout, popen):
        """Run argv (an ftpfwd in the foreground on port 0) and wait for
        its port and its ready line; return it with .port, .logname."""
        p = self.spawn(argv, log, **popen)

        def ready():
            if allocated_port(self.log(log)) is not None:
                return True
            if p.poll() is not None:
                raise RuntimeError("ftpfwd exited: " + self.log(log))
            return False
        wait_for("ftpfwd's port", ready, timeout)
        wait_for("ftpfwd ready", lambda: "ready, master at" in self.log(log),
                 timeout)
        p.port = allocated_port(self.log(log))
        p.logname = log
        self.ftpfwds.append(p)
        return p

    def stop(self):
        """SIGTERM to every process still running, newest first, then
        SIGKILL to any not gone within 5 s.  Only through Popen, which
        signals no child it has reaped, and pidfds: a pid once reaped may
        be another process's by now."""
        procs, self.procs = self.procs, []
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if isinstance(p, Adopted):
                p.close()
        if os.environ.get("FTPFWD_KEEP_LAB") is None:
            shutil.rmtree(self.dir, ignore_errors=True)


class Server:
    def __init__(self, name, port, root, user, password, proc, cwd=""):
        self.name, self.port, self.root = name, port, root
        self.user, self.password, self.proc = user, password, proc
        self.cwd = cwd          # where root is, as the FTP client sees it

    def client(self, cls, port, active=False, **kw):
        """A client of class cls (t/clients.py) logging in here through
        port (ftpfwd's), into cwd; kw: host, ca."""
        return cls(port, self.user, self.password, active, self.cwd, **kw)


def fetch(client, remote, local, want):
    """Download remote into local, with client: (whether the client
    says it succeeded and local has the sha256 want, what it printed).
    A local file from before is removed first, to prove nothing."""
    if os.path.exists(local):
        os.unlink(local)
    ok, text = client.get(remote, local)
    return ok and os.path.exists(local) and sha256(local) == want, text


def store(client, local, remote, dest, want):
    """Upload local as remote, with client: (whether the client says it
    succeeded and dest, where the server keeps remote, has the sha256
    want, what it printed).  A dest from before is removed first."""
    if os.path.exists(dest):
        os.unlink(dest)
    ok, text = client.put(local, remote)
    return ok and os.path.exists(dest) and sha256(dest) == want, text


def matrix(classes, port, srv, **kw):
    """The matrix's clients and modes: each class, passive then active,
    logging in to srv through port (ftpfwd's); kw: host, ca."""
    for cls in classes:
        for active in (False, True):
            yield srv.client(cls, port, active, **kw)


def both_ways(client, srv, remote, local, src, up, want):
    """The matrix's directions: ("RETR", transfer), remote downloaded
    into local, then ("STOR", transfer), src uploaded as up, which srv
    keeps in its root; transfer() is fetch's or store's (ok, text), ok
    only where the file arrived with the sha256 want."""
    yield "RETR", lambda: fetch(client, remote, local, want)
    yield "STOR", lambda: store(client, src, up, os.path.join(srv.root, up),
                                want)


def ftp_port_of(reply227):
    """The port in a 227 reply, as a client would compute it."""
    nums = re.search(r"(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)", reply227)
    return int(nums.group(5)) * 256 + int(nums.group(6)) if nums else None


def make_file(path, size):
    """A file of exactly size bytes that no compressor shortens."""
    with open(path, "wb") as f:
        left = size
        while left > 0:
            n = min(left, 1 << 20)
            f.write(os.urandom(n))
            left -= n
    return path


class Tap:
    """Just enough TAP for prove."""
    def __init__(self):
        self.n = 0
        self.failed = 0

    def ok(self, cond, name, diag=None):
        self.n += 1
        if not cond:
            self.failed += 1
        print("%sok %d - %s" % ("" if cond else "not ", self.n, name),
              flush=True)
        if not cond and diag:
            # To stderr, as Test::More does: prove shows it even when it
            # is not verbose, so a failure in CI's log says why.
            for line in str(diag).rstrip().splitlines()[-60:]:
                print("# " + line, file=sys.stderr, flush=True)
        return cond

    def is_(self, got, want, name):
        return self.ok(got == want, name, "got:  %r\nwant: %r" % (got, want))

    def skip(self, name, why):
        self.n += 1
        print("ok %d - %s # SKIP %s" % (self.n, name, why), flush=True)

    def diag(self, msg):
        for line in str(msg).splitlines():
            print("# " + line, flush=True)

    def bail(self, msg):
        print("Bail out! " + msg, flush=True)
        sys.exit(255)

    def done(self):
        print("1..%d" % self.n, flush=True)
        sys.exit(1 if self.failed else 0)


class Raw:
    """A control connection we drive byte by byte, for what no polite
    client sends: pipelined bursts, split lines, hostile arguments."""

    def __init__(self, port, host="127.0.0.1", timeout=20):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.rstrip(b"\r").decode("utf-8", "replace")

    def reply(self):
        """One whole reply; multi-line replies joined with newlines."""
        first = self.line()
        lines = [first]
        if first[3:4] == "-":
            while True:
                line = self.line()
                lines.append(line)
                if line[:3] == first[:3] and line[3:4] == " ":
                    break
        return "\n".join(lines)

    def cmd(self, line):
        self.send(line.encode() + b"\r\n")
        return self.reply()

    def login(self, user, password):
        banner = self.reply()
        self.cmd("USER " + user)
        return banner, self.cmd("PASS " + password)

    def closed(self):
        """True once the peer has closed (EOF); waits up to the timeout."""
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    return True
                self.buf += data
        except OSError:
            return True

    def close(self):
        self.sock.close()
