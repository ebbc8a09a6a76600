"""Bus-side helpers of bench/tracking.sh: independent clients (nats-py, confluent-kafka, PyMySQL),
not dts's own consumer.

  marker  BUS ADDR JOB N TIMEOUT        polls every 10 ms until the event of marker row N (key
                                        {"marker_id":N}) is stored; prints the epoch time at
                                        which it was first seen and its stream sequence (NATS)
                                        or offset + 1 (Kafka): the messages stored up to it
  latency BUS ADDR JOB SRC_PORT RATE ROWS_PER_TX SECS
                                        end-to-end latency: a writer inserts RATE rows/s into
                                        sbtest.lat (ROWS_PER_TX rows per autocommit INSERT), each
                                        row carrying the writer's clock (µs) when its INSERT was
                                        sent; a consumer on the bus (started first, reading only
                                        new events) takes its clock when each event arrives.
                                        Prints: rows written, achieved rate, received, p50, p99,
                                        max (ms) and samples, skipping the first second.

BUS is nats (ADDR nats://host:port) or kafka (ADDR host:port). The subscription's names follow
dts-bus::naming with the default prefix `dts`: stream DTS_<job>, subjects dts.<job>.<db>.<table>,
Kafka topic dts.<job> (one partition unless configured).
"""

import asyncio
import json
import sys
import threading
import time


def marker_key(n):
    """The end of the marker row's key JSON: `{"marker_id":N}`."""
    return b'"marker_id":%d}' % n


def stream(job):
    return "DTS_" + job


def topic(job):
    return "dts." + job


# ---------------------------------------------------------------- NATS


async def nats_connect(addr):
    import nats

    return await nats.connect(addr, max_reconnect_attempts=3)


async def nats_marker(addr, job, n, timeout):
    from nats.js.errors import NotFoundError

    nc = await nats_connect(addr)
    js = nc.jetstream()
    deadline = time.time() + timeout
    subject = "dts.%s.sbtest.marker" % job
    while time.time() < deadline:
        try:
            m = await js.get_last_msg(stream(job), subject)
            if marker_key(n) in (m.headers or {}).get("dts-key", "").encode():
                seen = time.time()
                await nc.close()
                return seen, m.seq
        except NotFoundError:
            pass
        await asyncio.sleep(0.01)
    await nc.close()
    return None


async def nats_latency_consumer(addr, job, table, out, ready, stop):
    from nats.js.api import DeliverPolicy

    nc = await nats_connect(addr)
    js = nc.jetstream()
    subject = "dts.%s.sbtest.%s" % (job, table)

    async def on_msg(msg):
        now = time.time()
        if msg.data:
            out.append((now, msg.data))

    sub = await js.subscribe(subject, cb=on_msg, ordered_consumer=True, deliver_policy=DeliverPolicy.NEW,
                             pending_msgs_limit=1_000_000, pending_bytes_limit=1 << 30)
    await nc.flush()
    ready.set()
    while not stop.is_set():
        await asyncio.sleep(0.05)
    await sub.unsubscribe()
    await nc.close()


# ---------------------------------------------------------------- Kafka


def kafka_consumer(addr, extra=None):
    from confluent_kafka import Consumer

    conf = {
        "bootstrap.servers": addr,
        "group.id": "bench-%d" % time.time_ns(),
        "enable.auto.commit": False,
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 10,
        "fetch.min.bytes": 1,
        "log_level": 3,
    }
    conf.update(extra or {})
    return Consumer(conf)


def kafka_partitions(c, job):
    md = c.list_topics(topic(job), timeout=10)
    t = md.topics.get(topic(job))
    if t is None or t.error is not None:
        raise SystemExit("no topic %s: %s" % (topic(job), t and t.error))
    return sorted(t.partitions)


def kafka_ends(c, job, parts):
    from confluent_kafka import TopicPartition

    return {p: c.get_watermark_offsets(TopicPartition(topic(job), p), timeout=10, cached=False)[1] for p in parts}


def kafka_marker(addr, job, n, timeout):
    """(time seen, offset + 1) of marker n. tansu reports a partition's end offset one produce
    batch late (records past it are readable), so this reads forward from the reported end,
    jumping ahead to it whenever it moves past what was read: only the newest batch is read.
    Nothing is published after a marker, so no jump can skip it."""
    from confluent_kafka import TopicPartition

    c = kafka_consumer(addr)
    parts = kafka_partitions(c, job)
    deadline = time.time() + timeout
    ends = kafka_ends(c, job, parts)
    pos = {p: max(ends[p] - 1, 0) for p in parts}
    c.assign([TopicPartition(topic(job), p, pos[p]) for p in parts])
    while time.time() < deadline:
        ends = kafka_ends(c, job, parts)
        for p in parts:
            if ends[p] - 1 > pos[p]:
                pos[p] = ends[p] - 1
                try:
                    c.seek(TopicPartition(topic(job), p, pos[p]))
                except Exception:  # not fetching yet: assign again
                    c.assign([TopicPartition(topic(job), q, pos[q]) for q in parts])
        while True:
            got = c.consume(10000, 0.01)
            if not got:
                break
            for m in got:
                if m.error():
                    continue
                pos[m.partition()] = m.offset() + 1
                if m.key() and marker_key(n) in m.key():
                    seen = time.time()
                    c.close()
                    return seen, m.offset() + 1
        time.sleep(0.01)
    c.close()
    return None


def kafka_latency_consumer(addr, job, out, ready, stop):
    from confluent_kafka import TopicPartition

    c = kafka_consumer(addr)
    parts = kafka_partitions(c, job)
    ends = kafka_ends(c, job, parts)
    c.assign([TopicPartition(topic(job), p, ends[p]) for p in parts])
    c.poll(0.1)
    ready.set()
    while not stop.is_set():
        m = c.poll(0.05)
        if m is None or m.error():
            continue
        now = time.time()
        v = m.value()
        if v:
            out.append((now, v))
    c.close()


# ---------------------------------------------------------------- latency


def writer(port, rate, rows_per_tx, secs, stats):
    import pymysql

    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", password="", database="sbtest",
                           autocommit=True)
    cur = conn.cursor()
    tx_per_s = rate / rows_per_tx
    start = time.time()
    n = 0
    rows = 0
    while True:
        due = start + n / tx_per_s
        now = time.time()
        if now - start >= secs:
            break
        if due > now:
            time.sleep(due - now)
        t_us = time.time_ns() // 1000
        cur.execute("INSERT INTO lat (t) VALUES " + ",".join(["(%d)" % t_us] * rows_per_tx))
        n += 1
        rows += rows_per_tx
    stats["rows"] = rows
    stats["secs"] = time.time() - start
    stats["start"] = start
    conn.close()


def samples(received, since_us):
    """(arrival s, latency ms) of the rows written from `since_us` on (earlier rows, re-read
    when the consumer started, are not this run's)."""
    out = []
    for now, data in received:
        try:
            v = json.loads(data)
        except ValueError:
            continue
        after = v.get("after") if isinstance(v, dict) else None
        if not after or "t" not in after or after["t"] < since_us:
            continue
        out.append((now, (now * 1e6 - after["t"]) / 1000.0))
    return out


def pct(xs, q):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    return xs[min(len(xs) - 1, int(round(q / 100.0 * (len(xs) - 1))))]


def latency(bus, addr, job, port, rate, rows_per_tx, secs):
    received = []
    ready = threading.Event()
    stop = threading.Event()
    if bus == "nats":
        def run():
            asyncio.run(nats_latency_consumer(addr, job, "lat", received, ready, stop))
        t = threading.Thread(target=run, daemon=True)
    else:
        t = threading.Thread(target=kafka_latency_consumer, args=(addr, job, received, ready, stop), daemon=True)
    t.start()
    if not ready.wait(30):
        raise SystemExit("the consumer did not start")
    time.sleep(0.5)
    stats = {}
    writer(port, rate, rows_per_tx, secs, stats)
    # What is still in flight arrives; wait until nothing new for 2 s (at most 30 s).
    deadline = time.time() + 30
    last = -1
    while time.time() < deadline:
        time.sleep(2)
        if len(received) == last:
            break
        last = len(received)
    stop.set()
    t.join(5)
    got = len(samples(list(received), int(stats["start"] * 1e6)))
    late = samples(list(received), int((stats["start"] + 1) * 1e6))
    lat = [x[1] for x in late]
    print("%d %.0f %d %.1f %.1f %.1f %d" % (stats["rows"], stats["rows"] / stats["secs"], got, pct(lat, 50),
                                            pct(lat, 99), max(lat) if lat else float("nan"), len(lat)))


def main():
    cmd, bus, addr, job = sys.argv[1:5]
    if cmd == "marker":
        n, timeout = int(sys.argv[5]), float(sys.argv[6])
        seen = asyncio.run(nats_marker(addr, job, n, timeout)) if bus == "nats" else kafka_marker(addr, job, n, timeout)
        if seen is None:
            raise SystemExit("the marker did not arrive within %s s" % timeout)
        print("%.6f %d" % seen)
    elif cmd == "latency":
        port, rate, rows_per_tx, secs = int(sys.argv[5]), float(sys.argv[6]), int(sys.argv[7]), float(sys.argv[8])
        latency(bus, addr, job, port, rate, rows_per_tx, secs)
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main()
