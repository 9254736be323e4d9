# Every client against every server, passive and active, through ftpfwd:
# downloads and uploads compared by sha256, listings, REST, ABOR, and
# twenty sessions at once.
import concurrent.futures
import ftplib
import os
import socket
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lab as L                                   # noqa: E402
from clients import CLIENTS, Curl, Ftplib         # noqa: E402

t = L.Tap()
lab = L.Lab.started(t, "transfers")
with lab.setup(t):
    servers = [lab.start_pyftpdlib(), lab.start_vsftpd()]

SIZES = {"0": 0, "1": 1, "50m": 50 * 1000 * 1000}
src = {}
for tag, size in SIZES.items():
    src[tag] = L.make_file(lab.path("src-" + tag), size)
    src[tag + "sum"] = L.sha256(src[tag])

for srv in servers:
    fwd = lab.start_ftpfwd(srv.port, log="ftpfwd-%s.log" % srv.name)
    for tag in SIZES:
        os.link(src[tag], os.path.join(srv.root, "f" + tag))
    for c in L.matrix(CLIENTS, fwd.port, srv):
        what = "%s %s %s" % (srv.name, c.name, c.mode)
        for tag in SIZES:
            local = lab.path("dl-%s-%s-%s-%s" % (srv.name, c.name, c.mode,
                                                 tag))
            up = "up-%s-%s-%s" % (c.name, c.mode, tag)
            for verb, transfer in L.both_ways(c, srv, "f" + tag, local,
                                              src[tag], up,
                                              src[tag + "sum"]):
                ok, text = transfer()
                t.ok(ok, "%s: %s %s bytes, same sha256" % (what, verb,
                                                          SIZES[tag]), text)
        ok, text = c.list()
        t.ok(ok and "f50m" in text and "f1" in text,
             "%s: LIST shows the files" % what, text)
        ok, text = c.nlst()
        t.ok(ok and "f50m" in text.split() and "f1" in text.split(),
             "%s: NLST names the files" % what, text)
        if c.lists_mlsd and srv.name == "pyftpdlib":
            ok, text = c.mlsd()
            t.ok(ok and "f50m" in text.split(),
                 "%s: MLSD names the files" % what, text)
        part = lab.path("part-%s-%s-%s" % (srv.name, c.name, c.mode))
        with open(src["50m"], "rb") as f, open(part, "wb") as o:
            o.write(f.read(1234567))
        ok, text = c.resume("f50m", part)
        t.ok(ok and L.sha256(part) == src["50msum"],
             "%s: REST resumes a download, same sha256" % what, text)

    # ABOR of a running download, then the session goes on.  Passive:
    # ABOR while the data connection is still open, as ftplib's docs
    # show; ftpfwd breaks the data channel since TCP urgent data cannot
    # cross ssh.  Active: the client closes its data socket first.
    for active in (False, True):
        mode = "active" if active else "passive"
        f = srv.client(Ftplib, fwd.port, active).session()
        try:
            conn = f.transfercmd("RETR f50m")
            got = conn.recv(65536)
            if active:
                conn.close()
            replies = [f.abort()]
            if replies[0][:3] == "426":      # the RETR's, then the ABOR's
                replies.append(f.getresp())
            conn.close()
            t.ok(len(got) > 0 and replies[-1][:3] in ("225", "226"),
                 "%s %s: ABOR of a running download answered %s" %
                 (srv.name, mode, [r[:3] for r in replies]), replies)
            data = []
            f.retrbinary("RETR f1", data.append)
            with open(src["1"], "rb") as one:
                t.ok(b"".join(data) == one.read(),
                     "%s %s: the session goes on after ABOR" %
                     (srv.name, mode))
            f.quit()
        except (ftplib.Error, OSError, EOFError) as e:
            t.ok(False, "%s %s: ABOR" % (srv.name, mode), repr(e))
        finally:
            f.close()

    # Active mode costs one remote forward per session, not per transfer
    # (OpenSSH's master never shrinks its table), and that forward lets
    # a connection through only while a transfer waits for one.
    f = srv.client(Ftplib, fwd.port, True).session()
    f.voidcmd("TYPE I")
    seen = set()
    with open(src["1"], "rb") as one:
        want1 = one.read()
    intact = True
    for _ in range(5):
        data = []
        f.retrbinary("RETR f1", data.append)
        intact = intact and b"".join(data) == want1
        seen.update(lab.remote_listeners())
    t.ok(intact, "%s: five active downloads in one session" % srv.name)
    t.is_(len(seen), 1, "%s: they used one remote forward, not five" %
          srv.name)
    rport = min(seen) if seen else 0
    # Someone on the ssh server connects between transfers: ftpfwd
    # resets it without a byte, and the session goes on.
    with socket.create_connection(("127.0.0.1", rport), timeout=10) as c:
        t.is_(c.recv(1), b"", "%s: a connection to the remote forward "
              "between transfers is closed" % srv.name)
    t.ok("while no transfer awaited one: reset" in lab.log(fwd.logname),
         "%s: by ftpfwd, which says why" % srv.name)
    data = []
    f.retrbinary("RETR f1", data.append)
    t.ok(b"".join(data) == want1, "%s: and the next transfer is intact" %
         srv.name)
    f.voidcmd("TYPE I")
    conn = f.transfercmd("RETR f50m")
    h = L.hashlib.sha256()
    while True:
        chunk = conn.recv(1 << 20)
        if not chunk:
            break
        h.update(chunk)
    conn.close()
    f.voidresp()
    f.quit()
    f.close()
    t.is_(h.hexdigest(), src["50msum"], "%s: a 50 MB active download is "
          "intact" % srv.name)
    L.wait_for("the session's forward to go", lambda: rport not in
               lab.remote_listeners(), timeout=10) \
        if rport in lab.remote_listeners() else None
    t.ok(rport not in lab.remote_listeners(), "%s: QUIT cancels the "
         "session's remote forward" % srv.name)

    # Twenty sessions at once, half passive, half active.
    L.make_file(os.path.join(srv.root, "f5m"), 5 * 1000 * 1000)
    want = L.sha256(os.path.join(srv.root, "f5m"))
    def one_of_twenty(i):
        return L.fetch(srv.client(Curl, fwd.port, i % 2 == 1), "f5m",
                       lab.path("par-%s-%d" % (srv.name, i)), want)
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(one_of_twenty, range(20)))
    good = sum(ok for ok, _ in results)
    errs = [text for ok, text in results if not ok]
    t.ok(good == 20, "%s: 20 concurrent sessions, all sha256 equal" %
         srv.name, "%d of 20 good\n%s" % (good, "\n".join(errs)))

    log = lab.log(fwd.logname)
    t.ok(srv.password not in log and "PASS" not in log,
         "%s: no password in ftpfwd's log" % srv.name)
    t.ok(fwd.poll() is None, "%s: ftpfwd still running" % srv.name,
         log[-3000:])

L.wait_for("remote forwards to go",
           lambda: not lab.remote_listeners(), timeout=10) \
    if lab.remote_listeners() else None
t.is_(lab.remote_listeners(), [], "no remote forward left on the ssh server")
t.done()
