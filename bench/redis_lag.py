"""Live replication lag of a Redis destination: a steady load on the source (SET, LPUSH, HSET,
ZADD in pipelined bursts every 10 ms, `RATE` commands/s in all) plus a probe key written every
10 ms; the destination's keyspace notifications say when each probe arrived there. Prints the
achieved load and the probes' lag p50/p99/max in milliseconds.

usage: redis_lag.py SRC_PORT DST_PORT RATE SECONDS
"""

import socket
import sys
import threading
import time


def encode(*args):
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(out)


def connect(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def drain_replies(sock, n, buf=bytearray()):
    """Reads n simple replies (+OK / :int) from sock."""
    seen = 0
    while seen < n:
        chunk = sock.recv(1 << 16)
        if not chunk:
            raise SystemExit("source closed the connection")
        seen += chunk.count(b"\r\n")


def main():
    src, dst, rate, secs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
    sent = {}
    arrived = {}
    stop = threading.Event()

    sub = connect(dst)
    sub.sendall(encode("CONFIG", "SET", "notify-keyspace-events", "K$"))
    sub.recv(1024)
    sub.sendall(encode("PSUBSCRIBE", "__keyspace@0__:lagprobe:*"))

    def listen():
        buf = b""
        prefix = b"__keyspace@0__:lagprobe:"
        while not stop.is_set():
            try:
                chunk = sub.recv(1 << 16)
            except OSError:
                return
            if not chunk:
                return
            now = time.monotonic()
            buf += chunk
            while True:
                i = buf.find(prefix)
                if i < 0:
                    buf = buf[-64:]
                    break
                j = buf.find(b"\r\n", i)
                if j < 0:
                    buf = buf[i:]
                    break
                text = buf[i + len(prefix):j]
                if text.isdigit():
                    arrived.setdefault(int(text), now)
                buf = buf[j:]

    listener = threading.Thread(target=listen, daemon=True)
    listener.start()
    time.sleep(0.3)

    load = connect(src)
    per_tick = max(1, rate // 100)
    value = b"x" * 64
    commands = 0
    probe = 0
    start = time.monotonic()
    tick = start
    seq = 0
    while time.monotonic() - start < secs:
        batch = []
        for k in range(per_tick):
            seq += 1
            kind = seq % 4
            key = b"lag:%d" % (seq % 100000)
            if kind == 0:
                batch.append(encode(b"SET", key, value))
            elif kind == 1:
                batch.append(encode(b"LPUSH", b"lag:list:%d" % (seq % 1000), value))
            elif kind == 2:
                batch.append(encode(b"HSET", b"lag:hash:%d" % (seq % 1000), b"f%d" % (seq % 50), value))
            else:
                batch.append(encode(b"ZADD", b"lag:zset:%d" % (seq % 1000), seq, b"m%d" % (seq % 5000)))
        probe += 1
        batch.append(encode(b"SET", b"lagprobe:%d" % probe, b"1"))
        sent[probe] = time.monotonic()
        load.sendall(b"".join(batch))
        drain_replies(load, len(batch))
        commands += len(batch)
        tick += 0.01
        delay = tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    elapsed = time.monotonic() - start
    time.sleep(2)
    stop.set()
    lags = sorted((arrived[p] - sent[p]) * 1000 for p in sent if p in arrived)
    missing = len(sent) - len(lags)
    if not lags:
        raise SystemExit("no probe arrived")
    pct = lambda q: lags[min(len(lags) - 1, int(q * len(lags)))]
    print("load %d commands/s for %.0f s; probes %d (missing %d); lag ms p50 %.1f p99 %.1f max %.1f"
          % (commands / elapsed, elapsed, len(sent), missing, pct(0.5), pct(0.99), lags[-1]))


if __name__ == "__main__":
    main()
