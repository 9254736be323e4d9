# The Debian package and the systemd user units: make deb builds
# ftpfwd_VERSION_ARCH.deb out of a copy of the tree; its contents and
# Depends; lintian; dpkg -i; the installed ftpfwd's version, man page
# and example; the README's recipe run by ssh with /usr/bin/ftpfwd; the
# units under systemd-analyze verify; the units' own ExecStart and
# ListenStream run against the lab, alone and under
# systemd-socket-activate; dpkg -r and dpkg -P leave nothing behind.
#
# The machine is left as it was found: the package is purged again
# after the test, on failure too.  A machine with an ftpfwd package of
# its own, or with any of the package's files, is not touched: those
# steps are skipped, saying so.
#
# systemd-analyze verify runs as root with no user manager: --user
# verify needs only an XDG_RUNTIME_DIR (a private directory here) to
# load units from the user search path, /usr/lib/systemd/user among
# them; it checks ExecStart's program and runs man for Documentation=.
import atexit
import gzip
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import Curl                          # noqa: E402

t = L.Tap()
T0 = time.monotonic()
MONTHS = ("January", "February", "March", "April", "May", "June", "July",
          "August", "September", "October", "November", "December")
UNITDIR = "/usr/lib/systemd/user"
SERVICE = os.path.join(UNITDIR, "ftpfwd@.service")
SOCKET = os.path.join(UNITDIR, "ftpfwd@.socket")


# A SIGTERM (prove interrupted) still runs the atexit purge, but waits
# for a running dpkg: killed half-way, it would leave its database so.
dpkg_running = []
stopping = []


def on_term(*_):
    if dpkg_running:
        stopping.append(True)
    else:
        sys.exit(1)


signal.signal(signal.SIGTERM, on_term)


def run(argv, **kw):
    kw.setdefault("timeout", 120)
    return subprocess.run(argv, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, **kw)


def dpkg(*args):
    """dpkg with the arguments, a SIGTERM meanwhile acted on after it."""
    dpkg_running.append(True)
    try:
        r = run(["dpkg"] + list(args), timeout=300)
    finally:
        dpkg_running.clear()
    if stopping:
        sys.exit(1)
    return r


def unit_values(path, section, key):
    """Every value of key in section of a unit file, in order; an empty
    assignment resets the list, as systemd does."""
    values, cur, pending = [], None, ""
    with open(path) as f:
        for raw in f:
            line = pending + raw.strip()
            pending = ""
            if line.endswith("\\"):
                pending = line[:-1] + " "
                continue
            if not line or line[0] in "#;":
                continue
            if line.startswith("["):
                cur = line.strip("[]")
            elif cur == section and "=" in line:
                k, v = line.split("=", 1)
                if k.strip() == key:
                    values = values + [v.strip()] if v.strip() else []
    return values


def exec_argv(line, instance, env):
    """An ExecStart= line as systemd makes it a command: %i is the
    instance, %% a per cent sign; a word that is just $NAME becomes the
    words of NAME's value, ${NAME} inside a word its value."""
    def specifiers(w):
        def one(m):
            if m.group(1) not in "i%":
                raise ValueError("specifier %%%s is not known to this "
                                 "test" % m.group(1))
            return instance if m.group(1) == "i" else "%"
        return re.sub(r"%(.)", one, w)
    argv = []
    for w in shlex.split(line):
        m = re.fullmatch(r"\$([A-Za-z_][A-Za-z0-9_]*)", w)
        if m:
            argv += env.get(m.group(1), "").split()
        else:
            argv.append(specifiers(re.sub(
                r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                lambda m: env.get(m.group(1), ""), w)))
    return argv


def ftpfwd_pids(port):
    """Processes whose program is ftpfwd and whose -L listens on port."""
    return [pid for pid, argv in L.processes()
            if argv[0].endswith(b"ftpfwd") and
            re.search(rb"(^| |:)%d:[^ ]+:\d+( |$)" % port,
                      b" ".join(argv))]


def exe(pid):
    try:
        return os.readlink("/proc/%d/exe" % pid)
    except OSError:
        return None


def git_state():
    """Everything git sees in the tree, ignored files included."""
    if not os.path.isdir(os.path.join(L.TOP, ".git")):
        return None
    return run(["git", "-C", L.TOP, "status", "--porcelain", "--ignored",
                "--untracked-files=all"]).stdout


def pkg_known():
    """ftpfwd's state in dpkg's database, "" when dpkg has no trace."""
    r = run(["dpkg-query", "-W", "-f=${Status}", "ftpfwd"])
    status = r.stdout.strip() if r.returncode == 0 else ""
    return "" if status.endswith(" not-installed") else status


mk = open(os.path.join(L.TOP, "Makefile")).read()
version = re.search(r"^VERSION =\s*(\S+)", mk, re.M).group(1)
date = re.search(r"^DATE =\s*(\d+)-(\d+)-(\d+)\s*$", mk, re.M)
mandate = "%s %d, %s" % (MONTHS[int(date.group(2)) - 1],
                         int(date.group(3)), date.group(1))
readme_text = open(os.path.join(L.TOP, "README")).read()
manpage = open(os.path.join(L.TOP, "man", "ftpfwd.1")).read()

# -- make deb ----------------------------------------------------------------
lacking = [p for p in ("dpkg-buildpackage", "dpkg-deb", "dpkg")
           if shutil.which(p) is None]
if lacking:
    t.skip("make deb and everything after it", "no %s here (Debian "
           "packages dpkg, dpkg-dev)" % ", ".join(lacking))
    t.done()
arch = run(["dpkg", "--print-architecture"]).stdout.strip()
lab = L.Lab.started(t, "package")
with lab.setup(t):
    srv = lab.start_vsftpd()
L.make_file(os.path.join(srv.root, "f1m"), 1000 * 1000)
want = L.sha256(os.path.join(srv.root, "f1m"))

debdir = lab.path("deb")
tree_before = git_state()
t0 = time.monotonic()
# Its scratch copy in the lab's directory too, gone with the lab.
r = run(["make", "-s", "-C", L.TOP, "deb", "DEBDIR=" + debdir],
        env=dict(os.environ, TMPDIR=lab.dir), timeout=600)
deb = os.path.join(debdir, "ftpfwd_%s_%s.deb" % (version, arch))
if not t.ok(r.returncode == 0 and os.path.isfile(deb),
            "make deb builds ftpfwd_%s_%s.deb (%.1f s)" % (
                version, arch, time.monotonic() - t0), r.stdout + r.stderr):
    t.bail("no package to test")
if tree_before is None:
    t.skip("make deb leaves the tree as git saw it", "not a git checkout")
else:
    t.is_(git_state(), tree_before, "make deb leaves the tree as git saw "
          "it, ignored files included")
    t.is_(run(["git", "-C", L.TOP, "check-ignore", "-q", os.path.basename(
          deb)]).returncode, 0, "where make deb puts it by default, the "
          ".deb is ignored by git")

fields = {}
for k in ("Package", "Version", "Architecture", "Depends"):
    fields[k] = run(["dpkg-deb", "-f", deb, k]).stdout.strip()
t.is_((fields["Package"], fields["Version"], fields["Architecture"]),
      ("ftpfwd", version, arch), "the package's name, version (the "
      "Makefile's VERSION) and architecture")
contents = run(["dpkg-deb", "-c", deb]).stdout.splitlines()
files = sorted(ln.split()[-1][1:] for ln in contents if ln[0] != "d")
t.is_(files, sorted([
    "/usr/bin/ftpfwd", "/usr/share/man/man1/ftpfwd.1.gz",
    "/usr/share/doc/ftpfwd/README.gz", "/usr/share/doc/ftpfwd/changelog.gz",
    "/usr/share/doc/ftpfwd/copyright",
    "/usr/share/doc/ftpfwd/examples/ssh_config",
    SERVICE, SOCKET]), "the package holds the binary, the man page, "
    "README, an ssh_config example and the two user units")

# Depends: what dpkg-shlibdeps found, so exactly the packages of the
# libraries the binary needs, each with the version shlibs asks for.
unpacked = lab.path("unpacked")
run(["dpkg-deb", "-x", deb, unpacked])
binary = os.path.join(unpacked, "usr", "bin", "ftpfwd")
needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]",
                    run(["readelf", "-d", binary]).stdout)
lib_pkgs = set()
for ln in run(["ldd", binary]).stdout.splitlines():
    m = re.match(r"\s*(\S+) => (/\S+)", ln)
    if m and m.group(1) in needed:
        for p in (m.group(2), os.path.realpath(m.group(2))):
            s = run(["dpkg", "-S", p])
            if s.returncode == 0:
                lib_pkgs.add(s.stdout.split(":")[0])
                break
# make check SANITIZE=1 runs this too: the package builds its own.
t.ok(needed and not [n for n in needed if re.match(r"lib(a|ub|t)san", n)],
     "the package's ftpfwd is a plain build, whatever the tree's is",
     repr(needed))
deps = [d.strip() for d in fields["Depends"].split(",")]
control = open(os.path.join(L.TOP, "debian", "control")).read()
t.ok(re.search(r"^Depends: \$\{shlibs:Depends\}, \$\{misc:Depends\}$",
               control, re.M) and needed and
     sorted(d.split()[0] for d in deps) == sorted(lib_pkgs) and
     all(re.fullmatch(r"\S+ \(>= \S+\)", d) for d in deps),
     "Depends are shlibs' (%s)" % fields["Depends"],
     "NEEDED %r from %r\n%s" % (needed, sorted(lib_pkgs), fields["Depends"]))

lintian = shutil.which("lintian")
if lintian is None:
    t.skip("lintian: no errors", "no lintian here (Debian package lintian)")
    t.skip("lintian: no warnings", "no lintian here")
else:
    r = run([lintian, "--fail-on", "error", "--show-overrides", deb])
    tags = [ln for ln in r.stdout.splitlines() if re.match(r"[A-Z]: ", ln)]
    t.ok(r.returncode == 0 and not [x for x in tags if x[0] == "E"],
         "lintian: no errors", r.stdout + r.stderr)
    # An override is allowed with its reason: a comment line above it.
    ovr = os.path.join(L.TOP, "debian", "ftpfwd.lintian-overrides")
    lines = open(ovr).read().splitlines() if os.path.exists(ovr) else []
    bare = [ln for i, ln in enumerate(lines) if ln.strip() and
            not ln.startswith("#") and
            not (i > 0 and lines[i - 1].startswith("#"))]
    t.ok(not [x for x in tags if x[0] == "W"] and not bare,
         "lintian: no warnings; %d overridden, each with a comment" % len(
             [x for x in tags if x[0] == "O"]), r.stdout + "\n".join(bare))

# -- dpkg -i ---------------------------------------------------------------
theirs = pkg_known()
present = [f for f in files if os.path.lexists(f)]
if theirs or present:
    why = ("this machine has an ftpfwd package (%s)" % theirs if theirs else
           "this machine has %s, which the package would replace" %
           ", ".join(present))
    t.skip("dpkg -i, the installed package, dpkg -r and dpkg -P",
           why + ": not touched")
    t.done()

# What was there before: dpkg -P must take all the rest.
before = {p for p in ("/" + ln.split()[-1][2:].rstrip("/")
                      for ln in contents) if os.path.lexists(p)}
installed = []


def purge():
    if installed:
        installed.clear()
        dpkg_running.append(True)         # a SIGTERM now: no matter
        run(["dpkg", "-P", "ftpfwd"], timeout=300)


atexit.register(purge)
try:
    installed.append(True)                # before: dpkg -i may stop
    r = dpkg("-i", deb)
    t.ok(r.returncode == 0 and pkg_known().startswith("install ok "
         "installed"), "dpkg -i installs it", r.stdout + r.stderr)
    r = run(["/usr/bin/ftpfwd", "-V"])
    t.is_(r.stdout.strip(), "ftpfwd " + version, "/usr/bin/ftpfwd -V "
          "prints the Makefile's version")
    r = run(["man", "-w", "ftpfwd"])
    t.is_(r.stdout.strip(), "/usr/share/man/man1/ftpfwd.1.gz",
          "man -w ftpfwd finds the package's page")
    with gzip.open("/usr/share/man/man1/ftpfwd.1.gz", "rt") as f:
        dd = [ln for ln in f.read().splitlines() if ln.startswith(".Dd")]
    r = run(["man", "ftpfwd"], env=dict(os.environ, MANPAGER="cat",
                                         PAGER="cat", MANWIDTH="80"))
    footer = [ln for ln in r.stdout.splitlines() if ln.strip()][-1:]
    t.ok(dd == [".Dd " + mandate] and footer and mandate in footer[0],
         "man ftpfwd shows the Makefile's DATE, %s" % mandate,
         "%r %r" % (dd, footer))
    with gzip.open("/usr/share/doc/ftpfwd/changelog.gz", "rt") as f:
        changelog = f.read()
    stamp = "%02d %s %s" % (int(date.group(3)), MONTHS[int(
        date.group(2)) - 1][:3], date.group(1))
    t.ok(changelog.startswith("ftpfwd (%s) " % version) and
         re.search(r"^ -- .+>  \w{3}, %s " % stamp, changelog, re.M),
         "the changelog's version and date are the Makefile's", changelog)
    with gzip.open("/usr/share/doc/ftpfwd/README.gz", "rt") as f:
        t.ok(f.read() == readme_text, "the installed README is the tree's")
    t.is_(L.recipe_lines(open("/usr/share/doc/ftpfwd/examples/"
                            "ssh_config").read()),
          L.recipe_lines(readme_text), "the installed ssh_config example has "
          "the README's recipe, word for word")

    # -- the README's recipe, with /usr/bin/ftpfwd -------------------------
    # As t/45 runs it, with only /usr/bin and /bin on the PATH that ssh
    # gives LocalCommand: neither the tree's ftpfwd nor one in /usr/local.
    port = L.free_port()
    ctl = lab.path("cm-ftpgw")
    cfg = lab.recipe_config(L.recipe_lines(readme_text), ctl, port,
                            srv.port)
    env = dict(os.environ, PATH="/usr/bin:/bin")

    def ssh(*args):
        return run(["ssh", "-F", cfg] + list(args), env=env, timeout=30)

    r = ssh("-fN", "ftpgw")
    up = r.returncode == 0 and L.eventually(L.port_open(port), timeout=10)
    pids = ftpfwd_pids(port)
    c = Curl(port, srv.user, srv.password, False, srv.cwd)
    ok, out = c.get("f1m", lab.path("got-recipe"))
    t.ok(up and len(pids) == 1 and exe(pids[0]) == "/usr/bin/ftpfwd" and ok
         and L.sha256(lab.path("got-recipe")) == want,
         "the README's recipe, ssh -fN ftpgw, runs /usr/bin/ftpfwd: a "
         "download by sha256", "%s %r %r\n%s" % (
             r.stderr, pids, [exe(p) for p in pids], out))
    ssh("-O", "exit", "ftpgw")
    t.ok(pids and L.eventually(lambda: not ftpfwd_pids(port), timeout=10),
         "ssh -O exit ftpgw: the installed ftpfwd goes with the master")

    # -- the units ------------------------------------------------------
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        t.skip("systemd-analyze --user verify", "no systemd-analyze here "
               "(Debian package systemd)")
        t.skip("systemd-analyze fails a unit with a missing program",
               "no systemd-analyze here")
    else:
        rt = lab.path("xdg-runtime")
        os.mkdir(rt, 0o700)
        aenv = dict(os.environ, XDG_RUNTIME_DIR=rt)
        r = run([analyze, "--user", "verify", SERVICE, SOCKET], env=aenv)
        t.is_((r.returncode, r.stdout + r.stderr), (0, ""),
              "systemd-analyze --user verify: both installed units clean")
        # Not blind here: the same service naming a program that is not
        # there fails.
        bad = lab.path("bad")
        os.mkdir(bad)
        with open(SERVICE) as f, open(os.path.join(bad, "ftpfwd@.service"),
                                      "w") as g:
            g.write(f.read().replace("/usr/bin/ftpfwd", bad + "/nothing"))
        r = run([analyze, "--user", "verify", os.path.join(
            bad, "ftpfwd@.service")], env=aenv)
        t.ok(r.returncode != 0 and "nothing is not executable" in r.stderr,
             "systemd-analyze fails a unit with a missing program",
             r.stdout + r.stderr)

    # The service's ExecStart as systemd would run it for ftpfwd@lab:
    # FTPFWD_OPTS as a drop-in sets it, with -F for the lab's ssh_config
    # (ssh reads ~/.ssh/config from the passwd entry, not from $HOME).
    execs = unit_values(SERVICE, "Service", "ExecStart")
    t.ok(len(execs) == 1 and execs[0].startswith("/usr/bin/ftpfwd "),
         "ftpfwd@.service runs /usr/bin/ftpfwd", repr(execs))
    alone = L.free_port()
    argv = exec_argv(execs[0], "lab", {"FTPFWD_OPTS": "-F %s -L "
                                       "%d:127.0.0.1:%d" % (
                                           lab.ssh_config, alone,
                                           srv.port)})
    p = lab.spawn(argv, "service.log")
    up = L.eventually(lambda: "ready, master at " + lab.ctl in
                      lab.log("service.log") or p.poll() is not None,
                      timeout=20) and p.poll() is None
    ok, out = Curl(alone, srv.user, srv.password, False, srv.cwd).get(
        "f1m", lab.path("got-service"))
    t.ok(up and ok and L.sha256(lab.path("got-service")) == want,
         "ExecStart for ftpfwd@lab (%s): the master found by ssh -G, a "
         "download by sha256" % " ".join(argv[:2] + ["...", argv[-1]]),
         out + lab.tail("service.log"))
    p.terminate()
    p.wait(timeout=10)

    # No master: the exit status the unit does not restart on.
    nomaster = lab.path("nomaster_config")
    with open(lab.ssh_config) as f, open(nomaster, "w") as g:
        g.write(f.read().replace(lab.ctl, lab.path("no-such-master")))
    r = run(exec_argv(execs[0], "lab", {"FTPFWD_OPTS": "-F " + nomaster}))
    prevent = unit_values(SERVICE, "Service", "RestartPreventExitStatus")
    t.ok(unit_values(SERVICE, "Service", "Restart") == ["on-failure"] and
         prevent and str(r.returncode) in prevent[-1].split() and
         "no ControlMaster at" in r.stderr,
         "no master: ExecStart exits %d, which RestartPreventExitStatus "
         "(%s) keeps from restarting" % (r.returncode, " ".join(prevent)),
         r.stderr)

    # ftpfwd@.socket's listener handed over by systemd-socket-activate:
    # the unit's own ListenStream, its port replaced by a free one (as a
    # drop-in does: 2121 may be taken here), and the service's ExecStart.
    listen = unit_values(SOCKET, "Socket", "ListenStream")
    default = re.search(r"^\.Fl L Ar (\S+):\S+:\S+ ,$", manpage, re.M)
    t.ok(listen and default and listen == [default.group(1)],
         "ftpfwd@.socket listens where ftpfwd does by default, as the man "
         "page says (%s)" % " ".join(listen), repr(listen))
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        t.skip("socket activation from the units' lines",
               "no systemd-socket-activate here (Debian package systemd)")
    else:
        host = listen[0].rsplit(":", 1)[0] if listen else "?"
        sport, fport = L.free_port(), L.free_port()
        argv = exec_argv(execs[0], "lab", {"FTPFWD_OPTS": "-F %s -L "
                                           "%d:127.0.0.1:%d" % (
                                               lab.ssh_config, fport,
                                               srv.port)})
        sa = lab.spawn([activate, "-l", "%s:%d" % (host, sport)] + argv,
                       "activate.log")
        L.wait_for("the activated socket", L.port_open(sport, host))
        ok, out = Curl(sport, srv.user, srv.password, False, srv.cwd).get(
            "f1m", lab.path("got-socket"))
        t.ok(host == "127.0.0.1" and ok and
             L.sha256(lab.path("got-socket")) == want and
             exe(sa.pid) == "/usr/bin/ftpfwd" and
             "serving 1 socket from the service manager for 127.0.0.1:%d" %
             srv.port in lab.log("activate.log") and
             lab.listener_pid(fport) is None,
             "ftpfwd@lab.socket's listener, passed to ExecStart: a "
             "download by sha256, and no listener of ftpfwd's own",
             out + lab.tail("activate.log"))
        sa.terminate()
        sa.wait(timeout=10)

    # -- dpkg -r, dpkg -P --------------------------------------------------
    listed = run(["dpkg", "-L", "ftpfwd"]).stdout.split("\n")
    listed = [p for p in listed if p and p != "/."]
    r = dpkg("-r", "ftpfwd")
    left = [p for p in listed if os.path.lexists(p) and
            not os.path.isdir(p)]
    t.ok(r.returncode == 0 and not left, "dpkg -r removes every file "
         "dpkg -L listed (%d paths)" % len(listed), r.stderr + repr(left))
    r = dpkg("-P", "ftpfwd")
    installed.clear()
    left = [p for p in listed if os.path.lexists(p) and p not in before]
    t.ok(r.returncode == 0 and not left and not pkg_known(),
         "dpkg -P leaves nothing of the package, directories included",
         r.stderr + repr(left))
finally:
    purge()
t.diag("%.1f s" % (time.monotonic() - T0))
t.done()
