"""What t/85, t/86 and t/87 share for ftpfwd -o Backend=sftp (issue 14): an
ftpfwd that is the FTP server itself, answering from the ssh server's
files through the master's sftp subsystem, with no FTP server anywhere;
the sftp-servers the lab's sshd runs for it; a second local account for
the master to log in as."""

import ftplib
import os
import pwd
import re
import subprocess
import threading
import time

import lab as L
from clients import Ftplib

SFTP_SERVER = "/usr/lib/openssh/sftp-server"
GREETING = re.compile(r"^220 ftpfwd \S+ ready: files of the ssh server, "
                      r"through sftp$")


def start_ftpfwd(lab, *args, log="ftpfwd.log", binds=("127.0.0.1",),
                 dest=False, timeout=L.WAIT, **popen):
    """ftpfwd -d -o Backend=sftp listening on a free port of each bind
    address; with dest, it finds the master by ssh -G on the lab's host
    (-F lab's config), else by -S.  Returns the Popen with .port (the
    first listener's), .ports (all) and .logname.  Ready once every port
    listens, owned by that process (no connection made to find out)."""
    ports = [L.free_port() for _ in binds]
    argv = [L.FTPFWD, "-d", "-o", "Backend=sftp"]
    for bind, port in zip(binds, ports):
        argv += ["-L", "%s:%d" % (bind, port)]
    argv += list(args)
    argv += ["-F", lab.ssh_config, "lab"] if dest else ["-S", lab.ctl]
    p = lab.spawn(argv, log, **popen)

    def ready():
        if p.poll() is not None:
            raise RuntimeError("ftpfwd exited %s: %s" % (p.returncode,
                                                         lab.log(log)))
        return all(lab.listener_pid(port) == p.pid for port in ports)
    L.wait_for("ftpfwd -o Backend=sftp on port(s) %s" % ports, ready,
               timeout)
    p.port, p.ports, p.logname = ports[0], ports, log
    lab.ftpfwds.append(p)
    return p


def sftp_servers(lab):
    """The pids of the sftp-servers that the lab's sshd started (for
    whatever user), and no others on the machine."""
    return [pid for pid, argv in L.processes()
            if argv[0] == SFTP_SERVER.encode() and
            lab.descends(pid, lab.sshd.pid)]


def run_ftpfwd(args, timeout=15, **kw):
    """ftpfwd run to its end (a usage error): (exit status, stderr).  One
    that does not end within timeout is killed and reported as None: it
    started when it should have refused to."""
    try:
        r = subprocess.run([L.FTPFWD] + list(args), stdin=subprocess.DEVNULL,
                           capture_output=True, text=True, timeout=timeout,
                           **kw)
    except subprocess.TimeoutExpired as e:
        return None, "still running after %ds: %s" % (
            timeout, (e.stderr or b"").decode("utf-8", "replace")
            if isinstance(e.stderr, bytes) else e.stderr or "")
    return r.returncode, r.stderr


class Account:
    """A second local account for the ssh master to log in as, with its
    home in the lab's directory; removed by remove(), which waits for
    its processes (sshd's session, the sftp-servers) to go first."""

    def __init__(self, name, home):
        self.name, self.home = name, home
        self.remove()
        # A password of "*": no password login, but not a locked account
        # ("!"), which sshd without PAM refuses even for a key.  A real
        # shell: sshd starts the sftp subsystem through it.
        r = subprocess.run(["useradd", "--no-create-home", "--home-dir",
                            home, "--shell", "/bin/sh", "--password", "*",
                            name], capture_output=True, text=True)
        if r.returncode != 0:
            raise RuntimeError("useradd %s: %s" % (name, r.stderr))
        pw = pwd.getpwnam(name)
        self.uid, self.gid = pw.pw_uid, pw.pw_gid
        os.makedirs(home, exist_ok=True)
        os.chmod(home, 0o755)
        os.chown(home, self.uid, self.gid)

    def own(self, path):
        """path (a file or a tree) belongs to the account."""
        os.chown(path, self.uid, self.gid)
        for top, dirs, files in os.walk(path):
            for n in dirs + files:
                os.lchown(os.path.join(top, n), self.uid, self.gid)
        return path

    def processes(self):
        out = []
        for d in os.listdir("/proc"):
            if d.isdigit():
                try:
                    if os.stat("/proc/" + d).st_uid == self.uid:
                        out.append(int(d))
                except OSError:
                    pass
        return out

    def remove(self):
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            return
        if hasattr(self, "uid"):
            L.eventually(lambda: not self.processes(), timeout=10)
        subprocess.run(["userdel", self.name], capture_output=True)


def as_account(lab, account):
    """The lab's ssh_config with the master logging in as account, not
    root; the lab's directory open to it for the authorized_keys."""
    os.chmod(lab.dir, 0o711)
    with open(lab.ssh_config) as f:
        conf = f.read()
    conf = conf.replace("  User root\n", "  User %s\n" % account.name)
    with open(lab.ssh_config, "w") as f:
        f.write(conf)


def at_once(lab, port, files, n, size, user="bob", password="whatever"):
    """n ftplib sessions at once, odd ones active, all logged in before
    any transfer starts; each downloads a file of its own and uploads
    another, both checked by sha256.  Returns (results, the most
    sftp-servers seen at one time, seconds): results[i] is True or what
    went wrong and at which step."""
    want_down, want_up = {}, {}
    for i in range(n):
        want_down[i] = L.sha256(L.make_file(
            os.path.join(files, "down-%d" % i), size + i))
        want_up[i] = L.sha256(L.make_file(lab.path("up-src-%d" % i),
                                          size - i))
    barrier = threading.Barrier(n)
    results = [None] * n
    most = [0]
    done = threading.Event()

    def one(i):
        mode = "active" if i % 2 else "passive"
        try:
            f = Ftplib(port, user, password, i % 2 == 1,
                       cwd=files).session(timeout=120)
        except (ftplib.Error, OSError, EOFError) as e:
            barrier.abort()
            results[i] = "login: %r" % (e,)
            return
        step = "waiting for the others"
        try:
            barrier.wait(timeout=120)
            step = "RETR down-%d (%s)" % (i, mode)
            h = L.hashlib.sha256()
            f.retrbinary("RETR down-%d" % i, h.update)
            if h.hexdigest() != want_down[i]:
                results[i] = "RETR down-%d: another sha256" % i
                return
            step = "STOR up-%d (%s)" % (i, mode)
            with open(lab.path("up-src-%d" % i), "rb") as src:
                f.storbinary("STOR up-%d" % i, src)
            dest = os.path.join(files, "up-%d" % i)
            if not os.path.exists(dest) or L.sha256(dest) != want_up[i]:
                results[i] = "STOR up-%d: another sha256 on the server" % i
                return
            step = "QUIT"
            f.quit()
            results[i] = True
        except (ftplib.Error, OSError, EOFError,
                threading.BrokenBarrierError) as e:
            results[i] = "%s: %r" % (step, e)
        finally:
            f.close()

    def sampler():
        while not done.is_set():
            most[0] = max(most[0], len(sftp_servers(lab)))
            time.sleep(0.05)

    watch = threading.Thread(target=sampler)
    watch.start()
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=600)
    done.set()
    watch.join()
    return results, most[0], time.monotonic() - start


def at_once_failures(results):
    """The lines that say which of at_once's sessions failed, and how."""
    return "%d of %d good\n%s" % (
        sum(r is True for r in results), len(results),
        "\n".join("#%d: %s" % (i, r) for i, r in enumerate(results)
                  if r is not True))
