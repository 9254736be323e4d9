# Run each libFuzzer harness (t/fuzz.c) for FUZZ_SECONDS (30 unless set),
# two at a time, from a copy of its seed corpus in t/corpus/<target>.
# A crash fails the test and leaves the input in the log: add it to the
# corpus, where every later run replays it first.
import os
import shutil
import subprocess
import sys
import tempfile

here = os.path.dirname(os.path.abspath(__file__))
targets = ["cmd", "port", "eprt", "227", "229", "reply", "mux",
           "sockdiag", "procnet", "sftp"]
seconds = int(os.environ.get("FUZZ_SECONDS", "30"))
work = tempfile.mkdtemp(prefix="ftpfwd-fuzz.")

print("1..%d" % len(targets), flush=True)
n = 0
failed = 0
running = []


def finish(name, proc, corpus, log):
    global n, failed
    proc.wait()
    n += 1
    with open(log, errors="replace") as f:
        text = f.read()
    runs = [line for line in text.splitlines() if "Done " in line]
    ok = proc.returncode == 0
    failed += not ok
    print("%sok %d - fuzz %s for %d s, no crash%s" %
          ("" if ok else "not ", n, name, seconds,
           (" (" + runs[-1].split("Done ")[1] + ")") if runs else ""),
          flush=True)
    if not ok:
        for line in text.splitlines()[-30:]:
            print("# " + line, flush=True)


for name in targets:
    binary = os.path.join(here, "fuzz-" + name)
    if not os.access(binary, os.X_OK):
        print("Bail out! %s is not built (run make check)" % binary)
        sys.exit(255)
    corpus = os.path.join(work, name)
    shutil.copytree(os.path.join(here, "corpus", name), corpus)
    log = os.path.join(work, name + ".log")
    proc = subprocess.Popen([binary, "-max_total_time=%d" % seconds,
                             "-max_len=4096", "-timeout=10",
                             "-artifact_prefix=%s/" % work, corpus],
                            stdout=subprocess.DEVNULL,
                            stderr=open(log, "w"))
    running.append((name, proc, corpus, log))
    if len(running) == 2:
        finish(*running.pop(0))
while running:
    finish(*running.pop(0))
if not failed:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if failed else 0)
