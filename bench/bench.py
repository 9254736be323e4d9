"""make bench: ftpfwd against what a user would use instead, side by side,
over one ssh master in the same private loopback lab as the tests.

Every row is measured in this run on this master; rows 1, 2, 6 and 7
are medians of BENCH_RUNS runs.  Tools: curl and lftp (FTP), socat over
`ssh -O forward -L` (the raw stream), sftp.  Rows 6 and 7 measure
ftpfwd -o Backend=sftp (no FTP server: the files through the master's
sftp subsystem) against OpenSSH's own sftp.  The targets print PASS or
MISS; a benchmark never fails a build, so the exit status is 0 unless
the lab could not be set up or a transfer came back wrong.

BENCH_QUICK=1 shrinks every row (for trying the script, not for numbers).
"""

import os
import platform
import resource
import statistics
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
BIG = (64 if QUICK else 1024) << 20               # row 1: 1 GiB
SMALL_FILES = 200 if QUICK else 2000              # row 2
SMALL_SIZE = 1024
FLAT_TRANSFERS = 2000 if QUICK else 20000         # row 3
FLAT_WINDOW = 100 if QUICK else 1000
FLAT_PER_SESSION = 50
CONC = 20 if QUICK else 200                       # row 4
CONC_SIZE = 5 * 1000 * 1000
IDLE = CONC                                       # row 5, RSS
SFTP_BIG = (32 if QUICK else 256) << 20           # row 6: 256 MiB
MANY_FILES = 300                                  # row 7
# The raw stream's client reads as curl does, 16 KiB at a time (curl's
# buffer), so the two differ by the path, not by the reader.
SOCAT_BUF = str(16 * 1024)


def say(msg=""):
    print(msg, flush=True)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Cpu:
    """CPU seconds that ftpfwd and the master spend inside a block."""

    def __init__(self, *pids):
        self.pids = pids

    def __enter__(self):
        self.t0 = time.monotonic()
        self.c0 = [cpu_seconds(p) for p in self.pids]
        return self

    def __exit__(self, *exc):
        self.wall = time.monotonic() - self.t0
        self.cpu = [cpu_seconds(p) - c for p, c in zip(self.pids, self.c0)]


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


# -- Row 1: bulk, against the raw stream over the same master -------------
big = os.path.join(srv.root, "big")
with open(big, "wb") as f:
    chunk = os.urandom(1 << 20)
    for _ in range(BIG >> 20):
        f.write(chunk)
up_src = big

raw_port = L.free_port()
raw_dir = lab.make_root("raw")
# The far end of the raw stream: socat on the "ssh server" side.
sink = lab.spawn(["socat", "-b", SOCAT_BUF, "-u", "TCP-LISTEN:%d,bind="
                  "127.0.0.1,reuseaddr,fork" % raw_port,
                  "OPEN:%s/in,creat,trunc" % raw_dir], "socat-sink.log")
L.wait_for("socat sink", L.port_open(raw_port))
src_port = L.free_port()
# -U: the listener comes first, so each connection opens the file anew.
source = lab.spawn(["socat", "-b", SOCAT_BUF, "-U", "TCP-LISTEN:%d,bind="
                    "127.0.0.1,reuseaddr,fork" % src_port, "OPEN:%s" % big],
                   "socat-src.log")
L.wait_for("socat source", L.port_open(src_port))


def ssh_forward(remote_port):
    lport = L.free_port()
    spec = "%d:127.0.0.1:%d" % (lport, remote_port)
    check(["ssh", "-F", lab.ssh_config, "-O", "forward", "-L", spec, "lab"],
          "ssh -O forward")
    L.wait_for("the -L forward", L.port_open(lport))
    return lport, spec


down_l, down_spec = ssh_forward(src_port)
up_l, up_spec = ssh_forward(raw_port)


def raw_down(out="/dev/null"):
    check(["socat", "-b", SOCAT_BUF, "-u", "TCP:127.0.0.1:%d" % down_l,
           "OPEN:%s,creat,trunc" % out], "raw download")


def raw_up():
    check(["socat", "-b", SOCAT_BUF, "-u", "OPEN:%s" % up_src,
           "TCP:127.0.0.1:%d" % up_l], "raw upload")


def ftp_down(extra, base=None):
    r = check(curl + extra + ["-w", "%{size_download}", (base or url) +
                              "big", "-o", "/dev/null"], "curl RETR")
    if int(r.stdout) != BIG:
        sys.exit("bench: RETR moved %s bytes, not %d" % (r.stdout, BIG))


def ftp_up(extra):
    check(curl + extra + ["-T", up_src, url + "big-up"], "curl STOR")
    if os.path.getsize(os.path.join(srv.root, "big-up")) != BIG:
        sys.exit("bench: STOR stored the wrong size")


def timed(fn, *args, pid=None):
    with Cpu(pid or fwd_pid, master_pid) as c:
        fn(*args)
    return c


def median(cpus):
    """The run of median wall time."""
    cpus = sorted(cpus, key=lambda c: c.wall)
    return cpus[len(cpus) // 2]


def median_of(fn, *args, pid=None):
    return median([timed(fn, *args, pid=pid) for _ in range(RUNS)])


say("row 1: %d MiB through ftpfwd against the raw stream (ssh -O forward "
    "-L, socat), median of %d" % (BIG >> 20, RUNS))
# Once, untimed: the raw stream moves every byte (and warms the cache).
raw_down(lab.path("raw-check"))
if os.path.getsize(lab.path("raw-check")) != BIG:
    sys.exit("bench: the raw stream moved %d bytes, not %d" %
             (os.path.getsize(lab.path("raw-check")), BIG))
os.unlink(lab.path("raw-check"))
# Interleaved, raw then each mode, RUNS times: this machine drifts by more
# than the differences measured, so every median spans the same stretch.
cases = [("RETR", "raw", raw_down, ()), ("RETR", "passive", ftp_down, ([],)),
         ("RETR", "active", ftp_down, (ACTIVE,)), ("STOR", "raw", raw_up, ()),
         ("STOR", "passive", ftp_up, ([],)),
         ("STOR", "active", ftp_up, (ACTIVE,))]
runs = {(verb, mode): [] for verb, mode, _, _ in cases}
for _ in range(RUNS):
    for verb, mode, fn, args in cases:
        runs[verb, mode].append(timed(fn, *args))
        if (verb, mode) == ("STOR", "raw"):
            # The raw upload's last bytes reach the sink after socat exits.
            L.wait_for("the raw upload", lambda: os.path.getsize(
                os.path.join(raw_dir, "in")) == BIG, timeout=60)


raw = {verb: median(runs[verb, "raw"]) for verb in ("RETR", "STOR")}
bulk_cpu = []
for verb in ("RETR", "STOR"):
    for mode in ("passive", "active"):
        c = median(runs[verb, mode])
        ratio = raw[verb].wall / c.wall
        row(1, "%s %s" % (verb, mode), "%.0f MB/s" % mbps(BIG, c.wall),
            "%.0f MB/s raw" % mbps(BIG, raw[verb].wall), ratio, ">=0.95",
            ratio >= 0.95)
        bulk_cpu.append((verb, mode, c))
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
    "%.0f MB/s raw" % mbps(BIG, raw["RETR"].wall),
    "%.2f" % (raw["RETR"].wall / c.wall),
    "(no target; ftpfwd CPU %.2f s, master %.2f s)" % tuple(c.cpu)))
fwd_tls.terminate()
vst.proc.terminate()

for spec in (down_spec, up_spec):
    subprocess.run(["ssh", "-F", lab.ssh_config, "-O", "cancel", "-L", spec,
                    "lab"], capture_output=True)
os.unlink(os.path.join(srv.root, "big-up"))

# -- Row 2: many small files in one session, against sftp -----------------
say()
say("row 2: %d files of %d bytes in one session, against sftp over the "
    "same master, median of %d" % (SMALL_FILES, SMALL_SIZE, RUNS))
small = os.path.join(srv.root, "small")
os.mkdir(small)
blob = os.urandom(SMALL_SIZE)
names = ["f%05d" % i for i in range(SMALL_FILES)]
for n in names:
    with open(os.path.join(small, n), "wb") as f:
        f.write(blob)
got = lab.make_root("got")


def curl_many(extra, urls, outdir):
    """One curl, one FTP session, reusing the connection for every URL."""
    cfg = lab.path("curl.cfg")
    with open(cfg, "w") as f:
        for u in urls:
            f.write('url = "%s"\noutput = "%s/%s"\n' %
                    (u, outdir, u.rsplit("/", 1)[1]))
    check(curl + extra + ["-K", cfg], "curl of %d files" % len(urls))


def small_ftp(extra):
    curl_many(extra, [url + "small/" + n for n in names], got)


def small_sftp():
    batch = lab.path("sftp.batch")
    with open(batch, "w") as f:
        f.write("get %s/* %s/\n" % (small, got))
    check(["sftp", "-q", "-F", lab.ssh_config, "-b", batch, "lab"], "sftp")


def small_check():
    for n in names:
        p = os.path.join(got, n)
        with open(p, "rb") as f:
            if f.read() != blob:
                sys.exit("bench: %s came back wrong" % n)
        os.unlink(p)


ref = median_of(small_sftp)
small_check()
for mode, extra in (("passive", []), ("active", ACTIVE)):
    c = median_of(small_ftp, extra)
    small_check()
    ratio = ref.wall / c.wall
    row(2, "%d x 1 KiB %s" % (SMALL_FILES, mode),
        "%.0f files/s" % (SMALL_FILES / c.wall),
        "%.0f files/s sftp" % (SMALL_FILES / ref.wall), ratio, ">=1.00",
        ratio >= 1.0)

# -- Row 3: flatness over a long master life ------------------------------
say()
say("row 3: %d active transfers of 1 KiB, %d per session, in one master's "
    "life" % (FLAT_TRANSFERS, FLAT_PER_SESSION))
per = []
one = url + "small/" + names[0]
for _ in range(FLAT_TRANSFERS // FLAT_PER_SESSION):
    t0 = time.monotonic()
    curl_many(ACTIVE, [one] * FLAT_PER_SESSION, got)
    per += [(time.monotonic() - t0) / FLAT_PER_SESSION] * FLAT_PER_SESSION
first = statistics.mean(per[:FLAT_WINDOW])
last = statistics.mean(per[-FLAT_WINDOW:])
row(3, "last %d / first %d" % (FLAT_WINDOW, FLAT_WINDOW),
    "%.2f ms" % (last * 1e3), "%.2f ms first" % (first * 1e3), last / first,
    "<=1.20", last / first <= 1.2)

# -- Row 4: many sessions at once ---------------------------------------
say()
say("row 4: %d concurrent passive sessions, %d bytes each" %
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
raw_down_rate = BIG / raw["RETR"].wall
row(4, "%d x 5 MB: complete, sha256" % CONC, "%d/%d" % (good, CONC),
    "", None, "all", good == CONC)
row(4, "aggregate", "%.0f MB/s" % (agg / 1e6), "%.0f MB/s raw" %
    (raw_down_rate / 1e6), agg / raw_down_rate, ">=0.90",
    agg / raw_down_rate >= 0.9)
say("  (for scale: the same %d curls straight to vsftpd, no ssh: %.0f MB/s, "
    "%d/%d complete)" % (CONC, CONC * CONC_SIZE / direct.wall / 1e6,
                         direct_good, CONC))

# -- Row 5: what ftpfwd itself costs -------------------------------------
say()
say("row 5: ftpfwd's CPU against the master's, and its memory")
for verb, mode, c in bulk_cpu:
    share = c.cpu[0] / c.cpu[1] if c.cpu[1] > 0 else 0.0
    row(5, "CPU, %s %s" % (verb, mode), "%.2f s" % c.cpu[0],
        "%.2f s master" % c.cpu[1], share, "<=0.05" if mode == "passive"
        else "(none)", share <= 0.05 or mode != "passive")
share = c4.cpu[0] / c4.cpu[1] if c4.cpu[1] > 0 else 0.0
row(5, "CPU, row 4", "%.2f s" % c4.cpu[0], "%.2f s master" % c4.cpu[1],
    share, "<=0.05", share <= 0.05)
before = L.rss_kib(fwd_pid)
idle = []
for _ in range(IDLE):
    c = L.Raw(fwd.port)
    c.login(srv.user, srv.password)
    idle.append(c)
after = L.rss_kib(fwd_pid)
per_kib = (after - before) / IDLE
row(5, "RSS per idle session (%d)" % IDLE, "%.1f KiB" % per_kib,
    "%d -> %d KiB" % (before, after), None, "<=64 KiB", per_kib <= 64)
for c in idle:
    c.close()

# -- Row 6: Backend=sftp, bulk, against sftp over the same master ---------
say()
say("row 6: %d MiB through ftpfwd -o Backend=sftp (curl) against sftp "
    "get/put over the same master, median of %d" % (SFTP_BIG >> 20, RUNS))
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
# Interleaved, as row 1 is.
scases = [("RETR", "sftp", sftp_get), ("RETR", "backend", backend_down),
          ("STOR", "sftp", sftp_put), ("STOR", "backend", backend_up)]
sruns = {(verb, who): [] for verb, who, _ in scases}
for _ in range(RUNS):
    for verb, who, fn in scases:
        sruns[verb, who].append(timed(fn, pid=sfwd.pid))
for verb, ref_name in (("RETR", "get"), ("STOR", "put")):
    ref = median(sruns[verb, "sftp"])
    c = median(sruns[verb, "backend"])
    ratio = ref.wall / c.wall
    row(6, "%s %d MiB, Backend=sftp" % (verb, SFTP_BIG >> 20),
        "%.0f MB/s" % mbps(SFTP_BIG, c.wall),
        "%.0f MB/s sftp %s" % (mbps(SFTP_BIG, ref.wall), ref_name), ratio,
        ">=0.90", ratio >= 0.9)
    say("        (ftpfwd CPU %.2f s, master %.2f s; with sftp: master "
        "%.2f s)" % (c.cpu[0], c.cpu[1], ref.cpu[1]))
for name in ("big-up", "big-put"):
    os.unlink(os.path.join(sfiles, name))

# -- Row 7: Backend=sftp, many small files, against sftp ------------------
say()
say("row 7: %d files of %d bytes, lftp mget * through ftpfwd -o "
    "Backend=sftp against sftp get * over the same master, median of %d" %
    (MANY_FILES, SMALL_SIZE, RUNS))
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
for _ in range(RUNS):
    for who, fn in (("sftp", sftp_mget), ("backend", lftp_mget)):
        many_runs[who].append(timed(fn, pid=sfwd.pid))
        many_check()
ref = median(many_runs["sftp"])
c = median(many_runs["backend"])
ratio = ref.wall / c.wall
row(7, "%d x 1 KiB, lftp mget, sftp" % MANY_FILES,
    "%.0f files/s" % (MANY_FILES / c.wall),
    "%.0f files/s sftp" % (MANY_FILES / ref.wall), ratio, ">=1.00",
    ratio >= 1.0)
sfwd.terminate()

lab.stop()
say()
say("%d of %d targets met" % (sum(1 for r in rows if r[6]), len(rows)))
