"""make bench: ftpfwd against what a user would use instead, side by side,
over one ssh master in the same private loopback lab as the tests.

Every row is measured in this run.  Where a row sets ftpfwd against a
reference, it runs in rounds (BULK_RUNS for row 1, WAN_RUNS for row 3,
BENCH_RUNS for the others): each round runs every case once, in an
order turned by one place each round, and the row shows the round whose
own ratio is the median, its two times in the row's two columns.  This
machine runs the very same transfer up to 20% faster or slower from one
run to the next, and a case always run in the same slot would take
whatever that slot is worth.  The references: curl through ssh -L
forwards made by hand (row 1), OpenSSH's sftp over the same master (rows
2, 3, 7, 8), the same lftp straight to vsftpd (row 2's floor).  Row 3
runs row 2 over a second master whose ProxyCommand (bench/delay.py)
holds every byte WAN_DELAY_MS each way.  Rows 7 and 8 measure ftpfwd -o
Backend=sftp (no FTP server: the files through the master's sftp
subsystem).  The targets print PASS or MISS; a benchmark never fails a
build, so the exit status is 0 unless the lab could not be set up or a
transfer came back wrong.

BENCH_QUICK=1 shrinks every row (for trying the script, not for numbers).
"""

import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
import urllib.parse

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(TOP, "t"))
# The lab on tmpfs where there is one: the disk is not what we measure.
if os.path.isdir("/dev/shm") and "TMPDIR" not in os.environ:
    os.environ["TMPDIR"] = "/dev/shm"
    tempfile.tempdir = None
import lab as L                                   # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
RUNS = int(os.environ.get("BENCH_RUNS", "1" if QUICK else "5"))
BULK_RUNS = int(os.environ.get("BENCH_BULK_RUNS", "1" if QUICK else "9"))
BIG = (64 if QUICK else 512) << 20                # row 1: 512 MiB
SMALL_FILES = 300                                 # row 2
SMALL_SIZE = 1024
WAN_FILES = 40                                    # row 3
WAN_DELAY_MS = 20                                 # each way
WAN_RUNS = 1 if QUICK else 3
FLAT_TRANSFERS = 2000 if QUICK else 20000         # row 4
FLAT_WINDOW = 400                                 # one lftp session
CONC = 20 if QUICK else 200                       # row 5
CONC_SIZE = 5 * 1000 * 1000
IDLE = CONC                                       # row 6, RSS
SFTP_BIG = (32 if QUICK else 256) << 20           # row 7: 256 MiB
MANY_FILES = 300                                  # row 8


def say(msg=""):
    print(msg, flush=True)


def children_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def tree_seconds(top):
    """The CPU seconds of top and every process below it, with those of
    the children they have waited for (sshd's sessions and their
    sftp-servers)."""
    total = 0
    for pid, _ in L.processes():
        if L.Lab.descends(pid, top):
            try:
                total += sum(int(x) for x in L.proc_stat(pid)[11:15])
            except OSError:
                pass                    # gone meanwhile
    return total / os.sysconf("SC_CLK_TCK")


class Cpu:
    """Wall time inside a block, the CPU seconds that the given processes
    spend in it, those of the children it waited for (lftp, curl), and
    with tree set those of that process and all below it (sshd)."""

    def __init__(self, *pids, tree=None):
        self.pids = pids
        self.tree = tree

    def __enter__(self):
        self.s0 = tree_seconds(self.tree) if self.tree else 0.0
        self.c0 = [L.cpu_seconds(p) for p in self.pids]
        self.k0 = children_seconds()
        self.t0 = time.monotonic()      # the /proc walk is not timed
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        self.cpu = [L.cpu_seconds(p) - c for p, c in zip(self.pids, self.c0)]
        self.children = children_seconds() - self.k0
        self.server = (tree_seconds(self.tree) - self.s0 if self.tree
                       else 0.0)


def check(argv, what, **kw):
    r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                       **kw)
    if r.returncode != 0:
        sys.exit("bench: %s failed (%s): %s" % (what, " ".join(argv),
                 (r.stderr or b"").decode("utf-8", "replace").strip()))
    return r


def mbps(nbytes, secs):
    return nbytes / secs / 1e6


# -- The lab -------------------------------------------------------------
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 65536), hard))
lab = L.Lab("bench")
lab.start_sshd()
lab.start_master()
srv = lab.start_vsftpd(["max_clients=0", "max_per_ip=0"])
# The lab starts ftpfwd with -d; a user's ftpfwd logs at INFO.
fwd = lab.start_ftpfwd(srv.port, "-o", "MaxSessions=%d" % (CONC + 50),
                       "-o", "LogLevel=INFO")
fwd_pid, master_pid = fwd.pid, lab.master_pid
url = "ftp://127.0.0.1:%d/%s/" % (fwd.port, srv.cwd)
ACTIVE = ["-P", "127.0.0.1"]
curl = ["curl", "-sS", "--max-time", "600"]

ssh_v = subprocess.run(["ssh", "-V"], capture_output=True,
                       text=True).stderr.strip()
cipher = "?"
for line in lab.ssh("-G", "lab").stdout.splitlines():
    if line.startswith("ciphers "):
        cipher = line.split()[1].split(",")[0]
model = "?"
with open("/proc/cpuinfo") as f:
    for line in f:
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
say("ftpfwd bench, %s" % time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
say("machine: %s, %d cores, Linux %s, %s, first cipher %s" %
    (model, os.cpu_count(), platform.release(), ssh_v, cipher))
say("lab: sshd, ssh -fNM master, vsftpd %s, ftpfwd, all on loopback%s" %
    ("(tmpfs)" if os.environ["TMPDIR"] == "/dev/shm" else "", "; QUICK"
     if QUICK else ""))
say()

rows = []          # (row, what, ftpfwd, reference, ratio, target, ok)


def row(n, what, ours, ref, ratio, target, ok):
    rows.append((n, what, ours, ref, ratio, target, ok))
    say("  row %s %-34s %-14s %-22s %-6s %s %s" % (
        n, what, ours, ref, "%.2f" % ratio if ratio is not None else "-",
        target, "PASS" if ok else "MISS"))


# -- Row 1: bulk, against the same transfer forwarded by hand ------------
# What a user does without ftpfwd: a server with one fixed passive port,
# and `ssh -L` for the control port and that port.  The forwards listen
# on 127.0.0.2, since the server holds both ports on 127.0.0.1; curl
# ignores the address in 227 and 229 and connects to the control host.
pasv_port = L.free_port()
fixed = lab.start_vsftpd(["pasv_min_port=%d" % pasv_port,
                          "pasv_max_port=%d" % pasv_port],
                         name="vsftpd-fixed")
fixed_fwd = lab.start_ftpfwd(fixed.port, "-o", "LogLevel=INFO",
                             log="ftpfwd-fixed.log")
fixed_url = "ftp://127.0.0.1:%d/%s/" % (fixed_fwd.port, fixed.cwd)
big = os.path.join(fixed.root, "big")
with open(big, "wb") as f:
    chunk = os.urandom(1 << 20)
    for _ in range(BIG >> 20):
        f.write(chunk)
up_src = lab.path("big-src")
os.link(big, up_src)
want_big = L.sha256(big)


def ssh_forward(spec, host, port, config=None):
    """ssh -L spec by hand through config's master (the lab's), once it
    listens at host:port."""
    check(["ssh", "-F", config or lab.ssh_config, "-O", "forward", "-L",
           spec, "lab"], "ssh -O forward -L " + spec)
    L.wait_for("the -L forward " + spec, L.port_open(port, host))


hand_ctl = L.free_port()
hand_specs = ["127.0.0.2:%d:127.0.0.1:%d" % (hand_ctl, fixed.port),
              "127.0.0.2:%d:127.0.0.1:%d" % (pasv_port, pasv_port)]
ssh_forward(hand_specs[0], "127.0.0.2", hand_ctl)
ssh_forward(hand_specs[1], "127.0.0.2", pasv_port)
hand_url = "ftp://127.0.0.2:%d/%s/" % (hand_ctl, fixed.cwd)


def ftp_down(extra, base):
    r = check(curl + extra + ["-w", "%{size_download}", base + "big", "-o",
                              "/dev/null"], "curl RETR " + base)
    if int(r.stdout) != BIG:
        sys.exit("bench: RETR moved %s bytes, not %d" % (r.stdout, BIG))


def ftp_up(extra, base):
    check(curl + extra + ["-T", up_src, base + "big-up"],
          "curl STOR " + base)
    if os.path.getsize(os.path.join(fixed.root, "big-up")) != BIG:
        sys.exit("bench: STOR through %s stored the wrong size" % base)


def timed(fn, *args, pid=None, tree=None):
    with Cpu(pid or fwd_pid, master_pid, tree=tree) as c:
        fn(*args)
    return c


def median(cpus):
    """The run of median wall time."""
    cpus = sorted(cpus, key=lambda c: c.wall)
    return cpus[len(cpus) // 2]


def median_of(fn, *args, pid=None):
    return median([timed(fn, *args, pid=pid) for _ in range(RUNS)])


def rotated(cases, k):
    """cases turned by k places: over the rounds each case takes each
    slot in turn."""
    k %= len(cases)
    return cases[k:] + cases[:k]


def paired(refs, ours):
    """(reference, ours, ratio) of the round whose ratio, the
    reference's time over ours, is the median: both times from the same
    round, so drift between rounds cancels."""
    rounds = sorted((r.wall / c.wall, i) for i, (r, c) in
                    enumerate(zip(refs, ours)))
    ratio, i = rounds[len(rounds) // 2]
    return refs[i], ours[i], ratio


say("row 1: %d MiB by curl through ftpfwd against the by-hand set-up "
    "(ssh -L for the control port and vsftpd's one passive port), "
    "median round of %d" % (BIG >> 20, BULK_RUNS))
# Once, untimed, each way: every byte arrives (and the cache is warm).
ftp_up([], hand_url)
if L.sha256(os.path.join(fixed.root, "big-up")) != want_big:
    sys.exit("bench: the by-hand upload came back wrong")
ftp_up(ACTIVE, fixed_url)
if L.sha256(os.path.join(fixed.root, "big-up")) != want_big:
    sys.exit("bench: the active upload through ftpfwd came back wrong")
# Interleaved, by hand and each mode, in rounds (see the top): this
# machine drifts by more than the differences measured.
cases = {"RETR": [("hand", ftp_down, ([], hand_url)),
                  ("passive", ftp_down, ([], fixed_url)),
                  ("active", ftp_down, (ACTIVE, fixed_url))],
         "STOR": [("hand", ftp_up, ([], hand_url)),
                  ("passive", ftp_up, ([], fixed_url)),
                  ("active", ftp_up, (ACTIVE, fixed_url))]}
runs = {(verb, mode): [] for verb in cases for mode, _, _ in cases[verb]}
for r in range(BULK_RUNS):
    for verb in cases:
        for mode, fn, args in rotated(cases[verb], r):
            runs[verb, mode].append(timed(fn, *args, pid=fixed_fwd.pid))
# The by-hand median: the scale of the rows that have no round of their
# own (UpstreamTLS, row 5).
hand = {verb: median(runs[verb, "hand"]) for verb in ("RETR", "STOR")}
bulk_cpu = []
for verb in ("RETR", "STOR"):
    for mode in ("passive", "active"):
        ref, c, ratio = paired(runs[verb, "hand"], runs[verb, mode])
        row(1, "%s %s" % (verb, mode), "%.0f MB/s" % mbps(BIG, c.wall),
            "%.0f MB/s by hand" % mbps(BIG, ref.wall), ratio,
            ">=0.97", ratio >= 0.97)
        bulk_cpu.append((verb, mode, c))
        say("        (master CPU: by hand %.2f s, through ftpfwd %.2f s)"
            % (ref.cpu[1], c.cpu[1]))
# The same download with UpstreamTLS: ftpfwd decrypts and copies every
# byte (no target: TLS costs what it costs; this row says how much).
vst = lab.start_vsftpd(tls=True, name="vsftpd-tls")
os.link(big, os.path.join(vst.root, "big"))
fwd_tls = lab.start_ftpfwd(vst.port, "-o", "UpstreamTLS=explicit", "-o",
                           "UpstreamCAFile=" + lab.certs()["ca"], "-o",
                           "LogLevel=INFO", log="ftpfwd-tls.log")
c = median_of(ftp_down, [], "ftp://127.0.0.1:%d/%s/" % (fwd_tls.port,
                                                        vst.cwd),
              pid=fwd_tls.pid)
say("  row 1 %-34s %-14s %-22s %-6s %s" % (
    "RETR passive, UpstreamTLS", "%.0f MB/s" % mbps(BIG, c.wall),
    "%.0f MB/s by hand" % mbps(BIG, hand["RETR"].wall),
    "%.2f" % (hand["RETR"].wall / c.wall),
    "(no target; ftpfwd CPU %.2f s, master %.2f s)" % tuple(c.cpu)))
fwd_tls.terminate()
vst.proc.terminate()
for spec in hand_specs:
    subprocess.run(["ssh", "-F", lab.ssh_config, "-O", "cancel", "-L", spec,
                    "lab"], capture_output=True, stdin=subprocess.DEVNULL)
fixed_fwd.terminate()
fixed.proc.terminate()
raw_down_rate = BIG / hand["RETR"].wall

# -- Rows 2 and 3: many small files in one lftp session, against sftp ----
# The by-hand set-up for lftp too: a vsftpd with one passive port, which
# it names as 127.0.0.2, where ssh -L listens for it (rows 2 and 3 each
# forward it through their own master).
hand_pasv = L.free_port()
hand_srv = lab.start_vsftpd(["pasv_min_port=%d" % hand_pasv,
                             "pasv_max_port=%d" % hand_pasv,
                             "pasv_address=127.0.0.2"], name="vsftpd-hand")
blob = os.urandom(SMALL_SIZE)
names = ["f%05d" % i for i in range(SMALL_FILES)]
for root in (srv.root, hand_srv.root):
    for d, count in (("small", SMALL_FILES), ("wan", WAN_FILES)):
        os.mkdir(os.path.join(root, d))
        for n in names[:count]:
            with open(os.path.join(root, d, n), "wb") as f:
                f.write(blob)
got = lab.make_root("got")


def lftp(port, mode, commands, what, host="127.0.0.1"):
    """One lftp, one FTP session, as a batch script would run it."""
    check(["lftp", "-c", "set cmd:fail-exit true; set net:max-retries 1; "
           "set net:timeout 30; set xfer:clobber on; "
           "set ftp:passive-mode %s; open ftp://anonymous:x@%s:%d; "
           "%s" % ("off" if mode == "active" else "on", host, port,
                   commands)], what)


def small_lftp(port, mode, d, host="127.0.0.1"):
    lftp(port, mode, "cd %s/%s; lcd %s; mget *" % (srv.cwd, d, got),
         "lftp mget", host)


def hand_forwards(config, verb):
    """ssh -L by hand through config's master for hand_srv's control
    port and its passive port, at the same ports on 127.0.0.2 (verb:
    forward or cancel)."""
    for port in (hand_srv.port, hand_pasv):
        spec = "127.0.0.2:%d:127.0.0.1:%d" % (port, port)
        if verb == "forward":
            ssh_forward(spec, "127.0.0.2", port, config)
        else:
            check(["ssh", "-F", config, "-O", "cancel", "-L", spec, "lab"],
                  "ssh -O cancel -L " + spec)


def small_sftp(config, d):
    batch = lab.path("sftp.batch")
    with open(batch, "w") as f:
        f.write("get %s/* %s/\n" % (os.path.join(srv.root, d), got))
    check(["sftp", "-q", "-F", config, "-b", batch, "lab"], "sftp")


def small_check(count):
    got_names = sorted(os.listdir(got))
    if got_names != names[:count]:
        sys.exit("bench: %d files came back, not %d" % (len(got_names),
                                                        count))
    for n in got_names:
        p = os.path.join(got, n)
        with open(p, "rb") as f:
            if f.read() != blob:
                sys.exit("bench: %s came back wrong" % n)
        os.unlink(p)


def small_row(n, d, count, config, port, pid, runs):
    """The files of d by sftp, by lftp through ftpfwd in both modes, and
    by the same lftp through ssh -L by hand, interleaved.  Returns each
    case's runs."""
    hand_forwards(config, "forward")
    cases = [("sftp", small_sftp, (config, d)),
             ("passive", small_lftp, (port, "passive", d)),
             ("active", small_lftp, (port, "active", d)),
             ("hand", small_lftp, (hand_srv.port, "passive", d,
                                   "127.0.0.2"))]
    res = {who: [] for who, _, _ in cases}
    for r in range(runs):
        for who, fn, args in rotated(cases, r):
            res[who].append(timed(fn, *args, pid=pid, tree=lab.sshd.pid))
            small_check(count)
    hand_forwards(config, "cancel")
    rate = "%.0f" if n == 2 else "%.1f"
    for mode in ("passive", "active"):
        ref, c, ratio = paired(res["sftp"], res[mode])
        target = 1.0 if n == 2 else 1.5
        row(n, "%d x 1 KiB lftp %s" % (count, mode),
            (rate + " files/s") % (count / c.wall),
            (rate + " files/s sftp") % (count / ref.wall), ratio,
            ">=%.2f" % target, ratio >= target)
    ref, c, ratio = paired(res["sftp"], res["hand"])
    say(("  (by hand, ssh -L for vsftpd's control port and its one passive "
         "port, the same lftp passive: " + rate + " files/s, %.2f of sftp)")
        % (count / c.wall, ratio))
    return res


say()
say("row 2: %d files of %d bytes, lftp mget in one session against one "
    "sftp -b of gets, over the same master, median round of %d" %
    (SMALL_FILES, SMALL_SIZE, RUNS))
small = small_row(2, "small", SMALL_FILES, lab.ssh_config, fwd.port,
                  fwd_pid, RUNS)
floor = median_of(small_lftp, srv.port, "passive", "small")
small_check(SMALL_FILES)
say("  (the floor: the same lftp straight to vsftpd, no ssh: %.0f files/s)"
    % (SMALL_FILES / floor.wall))


def per_file_us(runs, what):
    """The median over runs of what(run), in microseconds per file."""
    vals = sorted(what(c) for c in runs)
    return vals[len(vals) // 2] / SMALL_FILES * 1e6


# Where each millisecond of a file goes: sftp needs no new channel per
# file, an FTP data connection does, and every control line crosses ssh.
say("  (CPU per file, median of %d: ftpfwd passive: ftpfwd %.0f us, master "
    "%.0f, sshd %.0f, lftp %.0f; sftp: master %.0f, sshd with its "
    "sftp-server %.0f, sftp and its ssh %.0f; straight to vsftpd: lftp "
    "%.0f; wall %.0f / %.0f / %.0f us)" % (
        RUNS, per_file_us(small["passive"], lambda c: c.cpu[0]),
        per_file_us(small["passive"], lambda c: c.cpu[1]),
        per_file_us(small["passive"], lambda c: c.server),
        per_file_us(small["passive"], lambda c: c.children),
        per_file_us(small["sftp"], lambda c: c.cpu[1]),
        per_file_us(small["sftp"], lambda c: c.server),
        per_file_us(small["sftp"], lambda c: c.children),
        floor.children / SMALL_FILES * 1e6,
        per_file_us(small["passive"], lambda c: c.wall),
        per_file_us(small["sftp"], lambda c: c.wall),
        floor.wall / SMALL_FILES * 1e6))

# Row 3: the same over a round trip of 2 * WAN_DELAY.  A second master
# reaches the same sshd through bench/delay.py as its ProxyCommand; its
# stderr goes to a log, or ssh -f would keep the caller's pipe open.
say()
say("row 3: %d files of %d bytes as row 2, over a %d ms round trip (the "
    "master's ProxyCommand delays each way), median round of %d" %
    (WAN_FILES, SMALL_SIZE, 2 * WAN_DELAY_MS, WAN_RUNS))
wan_ctl = lab.path("ctl-wan")
wan_config = lab.path("ssh_config-wan")
with open(lab.ssh_config) as f, open(wan_config, "w") as g:
    for line in f:
        if line.strip().startswith("ControlPath "):
            line = "  ControlPath %s\n" % wan_ctl
        g.write(line)
    g.write("  ProxyCommand /usr/bin/python3 %s 127.0.0.1 %d %.3f 2>>%s\n" %
            (os.path.join(TOP, "bench", "delay.py"), lab.ssh_port,
             WAN_DELAY_MS / 1000, lab.path("delay.log")))
check(["ssh", "-F", wan_config, "-fNM", "lab"], "the WAN master")
r = subprocess.run(["ssh", "-F", wan_config, "-O", "check", "lab"],
                   capture_output=True, text=True, stdin=subprocess.DEVNULL)
wan_master = int(r.stderr.split("pid=")[1].split(")")[0])
lab.adopt(wan_master)
wan_fwd = lab._ftpfwd_ready([L.FTPFWD, "-d", "-L", "127.0.0.1:0:127.0.0.1:%d"
                             % srv.port, "-S", wan_ctl, "-o",
                             "LogLevel=INFO"], "ftpfwd-wan.log", L.WAIT, {})
small_row(3, "wan", WAN_FILES, wan_config, wan_fwd.port, wan_fwd.pid, WAN_RUNS)
wan_fwd.terminate()
subprocess.run(["ssh", "-F", wan_config, "-O", "exit", "lab"],
               capture_output=True, stdin=subprocess.DEVNULL)

# -- Row 4: ftpfwd's CPU per transfer, and flatness over a long life ------
say()
say("row 4: %d active transfers of 1 KiB by lftp, %d per session, in one "
    "master's and one ftpfwd's life" % (FLAT_TRANSFERS, FLAT_WINDOW))
one = "get %s/wan/%s -o /dev/null" % (srv.cwd, names[0])
# Each window's CPU too, so that a drift in the wall time can be laid at
# the door of whoever grew: ftpfwd, the master, or lftp (a child).
wins = []
before = [(L.fds(p), L.rss_kib(p)) for p in (fwd_pid, master_pid)]
with Cpu(fwd_pid, master_pid) as flat:
    for _ in range(FLAT_TRANSFERS // FLAT_WINDOW):
        with Cpu(fwd_pid, master_pid) as win:
            lftp(fwd.port, "active", "; ".join([one] * FLAT_WINDOW),
                 "lftp of %d gets" % FLAT_WINDOW)
        wins.append(win)
after = [(L.fds(p), L.rss_kib(p)) for p in (fwd_pid, master_pid)]
first, last = wins[0], wins[-1]


def per_transfer_us(secs):
    return secs / FLAT_WINDOW * 1e6


us = flat.cpu[0] / FLAT_TRANSFERS * 1e6
row(4, "ftpfwd CPU per transfer", "%.0f us" % us, "%.0f us master" %
    (flat.cpu[1] / FLAT_TRANSFERS * 1e6), None, "<=100 us", us <= 100)
drift = last.wall / first.wall
row(4, "last %d / first %d" % (FLAT_WINDOW, FLAT_WINDOW),
    "%.2f ms" % (last.wall / FLAT_WINDOW * 1e3),
    "%.2f ms first" % (first.wall / FLAT_WINDOW * 1e3),
    drift, "<=1.20", drift <= 1.2)
say("  (CPU per transfer, first window -> last: ftpfwd %.0f -> %.0f us, "
    "master %.0f -> %.0f us, lftp %.0f -> %.0f us; each +-%.0f us, "
    "one clock tick)" %
    (per_transfer_us(first.cpu[0]), per_transfer_us(last.cpu[0]),
     per_transfer_us(first.cpu[1]), per_transfer_us(last.cpu[1]),
     per_transfer_us(first.children), per_transfer_us(last.children),
     per_transfer_us(1 / os.sysconf("SC_CLK_TCK"))))
say("  (held before -> after: ftpfwd %d -> %d fds, %d -> %d KiB; master "
    "%d -> %d fds, %d -> %d KiB)" %
    (before[0][0], after[0][0], before[0][1], after[0][1],
     before[1][0], after[1][0], before[1][1], after[1][1]))

# -- Row 5: many sessions at once ---------------------------------------
say()
say("row 5: %d concurrent passive sessions, %d bytes each" %
    (CONC, CONC_SIZE))
conc = os.path.join(srv.root, "conc")
L.make_file(conc, CONC_SIZE)
want = L.sha256(conc)
cdir = lab.make_root("conc-got")


def concurrent(base_url):
    """CONC curls at once; returns (complete with the right sha256, Cpu)."""
    for name in os.listdir(cdir):
        os.unlink(os.path.join(cdir, name))
    with Cpu(fwd_pid, master_pid) as c:
        procs = [subprocess.Popen(curl + [base_url + "conc", "-o",
                                          "%s/%d" % (cdir, i)],
                                  stdin=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
                 for i in range(CONC)]
        codes = [p.wait() for p in procs]
    return sum(1 for i, code in enumerate(codes) if code == 0 and
               L.sha256("%s/%d" % (cdir, i)) == want), c


# For scale: the same clients against the same server with no ssh at all.
direct_good, direct = concurrent("ftp://127.0.0.1:%d/%s/" % (srv.port,
                                                              srv.cwd))
good, c4 = concurrent(url)
agg = CONC * CONC_SIZE / c4.wall
row(5, "%d x 5 MB: complete, sha256" % CONC, "%d/%d" % (good, CONC),
    "", None, "all", good == CONC)
row(5, "aggregate", "%.0f MB/s" % (agg / 1e6), "%.0f MB/s by hand" %
    (raw_down_rate / 1e6), agg / raw_down_rate, ">=0.90",
    agg / raw_down_rate >= 0.9)
say("  (for scale: the same %d curls straight to vsftpd, no ssh: %.0f MB/s, "
    "%d/%d complete)" % (CONC, CONC * CONC_SIZE / direct.wall / 1e6,
                         direct_good, CONC))

# -- Row 6: what ftpfwd itself costs -------------------------------------
say()
say("row 6: ftpfwd's CPU against the master's, and its memory")
for verb, mode, c in bulk_cpu:
    share = c.cpu[0] / c.cpu[1] if c.cpu[1] > 0 else 0.0
    row(6, "CPU, %s %s" % (verb, mode), "%.2f s" % c.cpu[0],
        "%.2f s master" % c.cpu[1], share, "<=0.05" if mode == "passive"
        else "(none)", share <= 0.05 or mode != "passive")
share = c4.cpu[0] / c4.cpu[1] if c4.cpu[1] > 0 else 0.0
row(6, "CPU, row 5", "%.2f s" % c4.cpu[0], "%.2f s master" % c4.cpu[1],
    share, "<=0.05", share <= 0.05)
before = L.rss_kib(fwd_pid)
idle = []
for _ in range(IDLE):
    c = L.Raw(fwd.port)
    c.login(srv.user, srv.password)
    idle.append(c)
after = L.rss_kib(fwd_pid)
per_kib = (after - before) / IDLE
row(6, "RSS per idle session (%d)" % IDLE, "%.1f KiB" % per_kib,
    "%d -> %d KiB" % (before, after), None, "<=64 KiB", per_kib <= 64)
for c in idle:
    c.close()

# -- Row 7: Backend=sftp, bulk, against sftp over the same master ---------
say()
say("row 7: %d MiB through ftpfwd -o Backend=sftp (curl) against sftp "
    "get/put over the same master, median round of %d" %
    (SFTP_BIG >> 20, RUNS))
sfiles = lab.make_root("sftp-files")
sbig = os.path.join(sfiles, "big")
with open(sbig, "wb") as f:
    for _ in range(SFTP_BIG >> 20):
        f.write(chunk)
sfwd = lab.start_ftpfwd_sftp("-o", "LogLevel=INFO")
# The lab's ssh user is root: the files are named by absolute path, in
# one CWD (curl's %2F and singlecwd).
surl = "ftp://127.0.0.1:%d/%s/" % (sfwd.port, urllib.parse.quote(
    "%2F" + sfiles.lstrip("/"), safe="%/"))
scurl = curl + ["--ftp-method", "singlecwd"]


def sftp_batch(what, *lines):
    """OpenSSH's sftp through the same master, as a user would script it."""
    batch = lab.path("sftp.batch")
    with open(batch, "w") as f:
        f.write("".join(line + "\n" for line in lines))
    check(["sftp", "-q", "-F", lab.ssh_config, "-o", "ControlPath=" + lab.ctl,
           "-b", batch, "lab"], what)


def backend_down():
    r = check(scurl + ["-w", "%{size_download}", surl + "big", "-o",
                       "/dev/null"], "curl RETR through Backend=sftp")
    if int(r.stdout) != SFTP_BIG:
        sys.exit("bench: Backend=sftp RETR moved %s bytes, not %d" %
                 (r.stdout, SFTP_BIG))


def backend_up():
    check(scurl + ["-T", sbig, surl + "big-up"],
          "curl STOR through Backend=sftp")
    if os.path.getsize(os.path.join(sfiles, "big-up")) != SFTP_BIG:
        sys.exit("bench: Backend=sftp STOR stored the wrong size")


def sftp_get():
    sftp_batch("sftp get", "get %s /dev/null" % sbig)


def sftp_put():
    sftp_batch("sftp put", "put %s %s/big-put" % (sbig, sfiles))
    if os.path.getsize(os.path.join(sfiles, "big-put")) != SFTP_BIG:
        sys.exit("bench: sftp put stored the wrong size")


# Once, untimed, each way: every byte arrives (and the cache is warm).
backend_down()
backend_up()
if L.sha256(os.path.join(sfiles, "big-up")) != L.sha256(sbig):
    sys.exit("bench: the Backend=sftp upload came back wrong")
# Interleaved, in rounds, as row 1 is.
scases = {"RETR": [("sftp", sftp_get), ("backend", backend_down)],
          "STOR": [("sftp", sftp_put), ("backend", backend_up)]}
sruns = {(verb, who): [] for verb in scases for who, _ in scases[verb]}
for r in range(RUNS):
    for verb in scases:
        for who, fn in rotated(scases[verb], r):
            sruns[verb, who].append(timed(fn, pid=sfwd.pid))
for verb, ref_name in (("RETR", "get"), ("STOR", "put")):
    ref, c, ratio = paired(sruns[verb, "sftp"], sruns[verb, "backend"])
    row(7, "%s %d MiB, Backend=sftp" % (verb, SFTP_BIG >> 20),
        "%.0f MB/s" % mbps(SFTP_BIG, c.wall),
        "%.0f MB/s sftp %s" % (mbps(SFTP_BIG, ref.wall), ref_name), ratio,
        ">=0.90", ratio >= 0.9)
    say("        (ftpfwd CPU %.2f s, master %.2f s; with sftp: master "
        "%.2f s)" % (c.cpu[0], c.cpu[1], ref.cpu[1]))
for name in ("big-up", "big-put"):
    os.unlink(os.path.join(sfiles, name))

# -- Row 8: Backend=sftp, many small files, against sftp ------------------
say()
say("row 8: %d files of %d bytes, lftp mget * through ftpfwd -o "
    "Backend=sftp against sftp get * over the same master, median round "
    "of %d" % (MANY_FILES, SMALL_SIZE, RUNS))
many = os.path.join(sfiles, "many")
os.mkdir(many)
many_names = ["m%03d" % i for i in range(MANY_FILES)]
for n in many_names:
    with open(os.path.join(many, n), "wb") as f:
        f.write(blob)
many_got = lab.make_root("many-got")


def lftp_mget():
    """One lftp, one FTP session: mget * in the directory."""
    check(["lftp", "-c", "set cmd:fail-exit true; set net:max-retries 1; "
           "set net:timeout 30; set xfer:clobber on; "
           "open ftp://ftp:ftp@127.0.0.1:%d; cd \"%s\"; lcd \"%s\"; "
           "mget *" % (sfwd.port, many, many_got)], "lftp mget")


def sftp_mget():
    sftp_batch("sftp get *", "get %s/* %s/" % (many, many_got))


def many_check():
    got_names = sorted(os.listdir(many_got))
    if got_names != many_names:
        sys.exit("bench: %d files came back, not %d" % (len(got_names),
                                                        MANY_FILES))
    for n in many_names:
        p = os.path.join(many_got, n)
        with open(p, "rb") as f:
            if f.read() != blob:
                sys.exit("bench: %s came back wrong" % n)
        os.unlink(p)


many_runs = {"sftp": [], "backend": []}
for r in range(RUNS):
    for who, fn in rotated([("sftp", sftp_mget), ("backend", lftp_mget)],
                           r):
        many_runs[who].append(timed(fn, pid=sfwd.pid))
        many_check()
ref, c, ratio = paired(many_runs["sftp"], many_runs["backend"])
row(8, "%d x 1 KiB, lftp mget, sftp" % MANY_FILES,
    "%.0f files/s" % (MANY_FILES / c.wall),
    "%.0f files/s sftp" % (MANY_FILES / ref.wall), ratio, ">=1.00",
    ratio >= 1.0)
sfwd.terminate()

lab.stop()
say()
say("%d of %d targets met" % (sum(1 for r in rows if r[6]), len(rows)))
