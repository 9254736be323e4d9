"""A ProxyCommand for make bench's WAN rows: ssh's stream to host:port
and back, every chunk held DELAY seconds on its way in each direction,
so a master on loopback sees a round trip of twice DELAY.

usage: delay.py host port delay-seconds

No bandwidth limit and no loss: the rows it serves measure round trips.
One process, one select loop; each direction keeps its chunks in order
with the time each may leave.
"""

import collections
import os
import select
import socket
import sys
import time


class Direction:
    def __init__(self, src, dst, shut):
        self.src, self.dst, self.shut = src, dst, shut
        self.held = collections.deque()     # (due, bytes); b"" is EOF
        self.out = b""                      # due, not yet written
        self.reading = True
        self.eof_due = False
        self.done = False

    def release(self, now):
        while self.held and self.held[0][0] <= now:
            data = self.held.popleft()[1]
            if data:
                self.out += data
            else:
                self.eof_due = True

    def flush(self):
        if self.out:
            try:
                n = os.write(self.dst, self.out)
                self.out = self.out[n:]
            except BlockingIOError:
                pass
        if self.eof_due and not self.out and not self.done:
            self.shut()
            self.done = True


def main():
    host, port, delay = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    sock = socket.create_connection((host, port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.setblocking(False)
    for fd in (0, 1):
        os.set_blocking(fd, False)
    up = Direction(0, sock.fileno(), lambda: sock.shutdown(socket.SHUT_WR))
    down = Direction(sock.fileno(), 1, lambda: os.close(1))
    dirs = (up, down)
    while not (up.done and down.done):
        now = time.monotonic()
        for d in dirs:
            d.release(now)
            d.flush()
        rl = [d.src for d in dirs if d.reading]
        wl = [d.dst for d in dirs if d.out and not d.done]
        dues = [d.held[0][0] for d in dirs if d.held]
        timeout = max(0.0, min(dues) - now) if dues else None
        if not rl and not wl and timeout is None:
            break
        r, _, _ = select.select(rl, wl, [], timeout)
        now = time.monotonic()
        for d in dirs:
            if d.src not in r:
                continue
            try:
                data = os.read(d.src, 1 << 16)
            except BlockingIOError:
                continue
            except OSError:
                data = b""
            d.held.append((now + delay, data))
            if not data:
                d.reading = False


if __name__ == "__main__":
    try:
        main()
    except (BrokenPipeError, ConnectionError):
        sys.exit(1)
