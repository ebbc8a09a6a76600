#!/usr/bin/env bash
# Redis: dts against a native replica (`REPLICAOF`) on the same data and the same master.
#
#   bench/redis.sh [SECONDS] [SCALE]      (NATIVE_LOAD=on-empty-db: the native replica loads diskless;
#                                          FULL_RUNS=N: N full-sync rounds, the ratio of their means;
#                                          BACKLOG_RUNS=N: N backlog rounds, ops/s over all of them)
#     SECONDS  redis-benchmark load written while both appliers are stopped (default 30)
#     SCALE    dataset size in percent of the issue's (default 100: 2,000,000 strings of 100
#              bytes, 200,000 hashes of 10 fields, one sorted set of 1,000,000 members, 10% of
#              the strings with a TTL)
#
# Full: the native replica's full sync (`REPLICAOF`, timed until `master_link_status:up` and its
# key count equals the source's) against a MigrateType 2 job of dts (timed from StartMigrateJob
# until Success; whole instance, so dts uses its snapshot relay, the destination loading the RDB
# itself, and says so: "path"); then `DEBUG DIGEST` of all three servers must agree. The master runs
# `repl-diskless-sync-delay 0` for both (Redis 7's default diskless sync would otherwise wait
# 5 s before sending anything).
# Incremental capacity: a MigrateType 3 job of dts at ReadyComplete and the native replica
# linked; both are stopped (SIGSTOP: the master keeps their connections and buffers what it
# sends them; `client-output-buffer-limit replica 0 0 0`, `repl-timeout 3600`) while four
# `redis-benchmark -t <test> -P 16 -r 100000` (set, lpush, hset, zadd) write for SECONDS, then a sentinel
# key. Each is resumed alone (SIGCONT) and timed until the sentinel is on its destination.
# Live lag: with both replicating, bench/redis_lag.py writes LAG_RATE (50,000) commands/s with a
# probe key every 10 ms and reads each probe's arrival from the destination's keyspace
# notifications (once for the native replica, once for dts).
# Printed: seconds and ops/s of each, the ratios, lag percentiles, dts's peak RSS over the run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-30}; SCALE=${2:-100}

source bench/servers.sh
bench_setup dts-redis redis-server redis-tools python3

start_redis() { # name port [args...]
  mkdir -p "$WORK/$1"
  redis-server --port "$2" --bind 127.0.0.1 --save '' --appendonly no --dir "$WORK/$1" --logfile redis.log \
    --enable-debug-command yes "${@:3}" >/dev/null 2>&1 &
  PIDS+=($!); disown
  for _ in $(seq 1 100); do redis-cli -p "$2" PING >/dev/null 2>&1 && return 0; sleep 0.05; done
  echo "redis-server $1 did not start"; exit 1
}
pid_of() { pgrep -f "redis-server 127.0.0.1:$1" | head -1; }
r() { redis-cli -p "$@"; }

SRC=$(free_port); DST=$(free_port); NAT=$(free_port)
start_redis src "$SRC" --repl-diskless-sync-delay 0 --repl-backlog-size 1gb
start_redis dst "$DST"
# NATIVE_LOAD: the native replica's `repl-diskless-load` (its default `disabled` loads the RDB
# from its disk after the transfer; `on-empty-db` parses it as it arrives, as dts's relay
# has its destination do).
start_redis native "$NAT" --repl-diskless-load "${NATIVE_LOAD:-disabled}"

echo "loading the dataset (scale ${SCALE}%) ..."
python3 - "$SCALE" <<'EOF' | redis-cli -p "$SRC" --pipe >/dev/null
import sys
scale = int(sys.argv[1])
out = sys.stdout.buffer
def cmd(*args):
    parts = [b"*%d\r\n" % len(args)]
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(a), a))
    return b"".join(parts)
value = b"v" * 100
buf = []
for i in range(2_000_000 * scale // 100):
    if i % 10 == 0:
        buf.append(cmd(b"SET", b"key:%d" % i, value, b"EX", b"86400"))
    else:
        buf.append(cmd(b"SET", b"key:%d" % i, value))
    if len(buf) >= 10000:
        out.write(b"".join(buf)); buf = []
for i in range(200_000 * scale // 100):
    args = [b"HSET", b"hash:%d" % i]
    for f in range(10):
        args += [b"field%d" % f, b"value-%d-%d" % (i, f)]
    buf.append(cmd(*args))
    if len(buf) >= 5000:
        out.write(b"".join(buf)); buf = []
members = 1_000_000 * scale // 100
for start in range(0, members, 1000):
    args = [b"ZADD", b"bigzset"]
    for m in range(start, min(start + 1000, members)):
        args += [b"%d" % m, b"member-%d" % m]
    buf.append(cmd(*args))
out.write(b"".join(buf))
EOF
KEYS=$(r "$SRC" DBSIZE)
echo "source: $KEYS keys, used_memory $(r "$SRC" INFO memory | awk -F: '/^used_memory_human/ {print $2}' | tr -d '\r')"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)
cpu_s() { echo "scale=2; ($2 - $1) / $HZ" | bc; }

# --- full sync: FULL_RUNS rounds (default 1), each the native replica then dts ---------------
start_dts "$WORK/dts.log" --data-dir "$WORK/dts"
request() { # name migrate_type destination_port
  cat <<JSON
{"JobName": "$1", "MigrateOption": {"RunMode": 1, "MigrateType": $2, "MigrateObject": 1, "IsOverrideRoot": 0},
 "SrcDatabaseType": "redis", "SrcAccessType": "extranet", "SrcInfo": {"Ip": "127.0.0.1", "Port": $SRC},
 "DstDatabaseType": "redis", "DstAccessType": "extranet", "DstInfo": {"Ip": "127.0.0.1", "Port": $3, "Region": "ap-guangzhou"}}
JSON
}
# The job's top-level Status (pretty JSON: its own fields are indented two spaces). Read without
# starting a Python per poll: that took ~0.1 s of CPU each time, a third of a core at this loop's
# rate, from the very servers being timed (the native replica's loop runs only redis-cli).
status() { "$DTS" job show "$1" --json | sed -n 's/^  "Status": \([0-9]*\).*/\1/p'; }
digest() { r "$1" DEBUG DIGEST; }
FULL_RUNS=${FULL_RUNS:-1}
printf '\nfull sync of %s keys (%s%% of the issue dataset), equal by DEBUG DIGEST, %s round(s):\n' "$KEYS" "$SCALE" "$FULL_RUNS"
NATIVE_SUM=0; DTS_SUM=0
for round in $(seq 1 "$FULL_RUNS"); do
  if [ "$round" -gt 1 ]; then
    r "$NAT" REPLICAOF NO ONE >/dev/null; r "$NAT" FLUSHALL >/dev/null; r "$DST" FLUSHALL >/dev/null
  fi
  # native replica
  n0=$(cpu_ticks "$(pid_of "$NAT")")
  t0=$(now)
  r "$NAT" REPLICAOF 127.0.0.1 "$SRC" >/dev/null
  until r "$NAT" INFO replication | grep -q 'master_link_status:up' && [ "$(r "$NAT" DBSIZE)" = "$KEYS" ]; do sleep 0.05; done
  NATIVE_FULL=$(echo "$(now) - $t0" | bc)
  NATIVE_FULL_CPU=$(cpu_s "$n0" "$(cpu_ticks "$(pid_of "$NAT")")")
  # dts, MigrateType 2
  JOB=$(request "bench-full-$round" 2 "$DST" | "$DTS" job create --request -)
  "$DTS" job check "$JOB" >/dev/null
  d0=$(cpu_ticks "$(pid_of "$DST")"); p0=$(cpu_ticks "$DPID")
  t0=$(now)
  "$DTS" job start "$JOB" >/dev/null
  until [ "$(status "$JOB")" = 9 ]; do sleep 0.05; done
  DTS_FULL=$(echo "$(now) - $t0" | bc)
  FULL_CPU="destination $(cpu_s "$d0" "$(cpu_ticks "$(pid_of "$DST")")") s, dts $(cpu_s "$p0" "$(cpu_ticks "$DPID")") s"
  cp "$WORK/dts.log" /tmp/redis-bench-dts.log
  if grep -q "snapshot relayed.*job_id=$JOB" "$WORK/dts.log"; then FULL_PATH="snapshot relay"; else FULL_PATH="commands"; fi
  for _ in $(seq 1 50); do [ "$(digest "$DST")" = "$(digest "$SRC")" ] && break; sleep 0.1; done
  [ "$(digest "$DST")" = "$(digest "$SRC")" ] || { echo "dts destination differs from the source after the full sync"; exit 1; }
  [ "$(digest "$NAT")" = "$(digest "$SRC")" ] || { echo "native replica differs from the source"; exit 1; }
  printf '  round %s: native replica %6.2f s (CPU: replica %s s); dts %6.2f s (CPU: %s; path: %s); dts / native %s\n' \
    "$round" "$NATIVE_FULL" "$NATIVE_FULL_CPU" "$DTS_FULL" "$FULL_CPU" "$FULL_PATH" "$(echo "scale=2; $DTS_FULL / $NATIVE_FULL" | bc)"
  NATIVE_SUM=$(echo "$NATIVE_SUM + $NATIVE_FULL" | bc); DTS_SUM=$(echo "$DTS_SUM + $DTS_FULL" | bc)
done
printf '  native replica: %6.2f s\n  dts:            %6.2f s   (mean of %s)\n  dts / native time: %s (target <= 1.25)\n' \
  "$(echo "scale=2; $NATIVE_SUM / $FULL_RUNS" | bc)" "$(echo "scale=2; $DTS_SUM / $FULL_RUNS" | bc)" "$FULL_RUNS" "$(echo "scale=2; $DTS_SUM / $NATIVE_SUM" | bc)"

[ -z "${FULL_ONLY:-}" ] || exit 0   # FULL_ONLY=1: the full sync only

# --- incremental: a backlog drained by each alone --------------------------------------------
r "$DST" FLUSHALL >/dev/null
r "$SRC" CONFIG SET client-output-buffer-limit "replica 0 0 0" >/dev/null
r "$SRC" CONFIG SET repl-timeout 3600 >/dev/null
JOB2=$(request bench-sync 3 "$DST" | "$DTS" job create --request -)
"$DTS" job check "$JOB2" >/dev/null
"$DTS" job start "$JOB2" >/dev/null
until [ "$(status "$JOB2")" = 8 ]; do sleep 0.2; done
sleep 1
calls() { r "$SRC" INFO commandstats | awk -F'[=,:]' '/^cmdstat_(set|lpush|hset|zadd):/ {n += $3} END {print n}'; }
BACKLOG_RUNS=${BACKLOG_RUNS:-1}
printf '\nbacklog: %s s of redis-benchmark -t set / lpush / hset / zadd -P 16 -r 100000 (four at once), each drained alone, %s round(s):\n' "$SECS" "$BACKLOG_RUNS"
OPS_SUM=0; NATIVE_DRAIN_SUM=0; DTS_DRAIN_SUM=0
for round in $(seq 1 "$BACKLOG_RUNS"); do
  kill -STOP "$DPID"; kill -STOP "$(pid_of "$NAT")"
  c0=$(calls)
  # One redis-benchmark per test, all four at once (one process runs its tests one after
  # another, so a single `-t set,lpush,hset,zadd` run would write only SETs within SECONDS).
  for t in set lpush hset zadd; do
    timeout "$SECS" redis-benchmark -p "$SRC" -t "$t" -P 16 -r 100000 -n 100000000 -q >/dev/null 2>&1 &
  done
  wait
  r "$SRC" SET "bench:end:$round" 1 >/dev/null
  OPS=$(( $(calls) - c0 ))
  n0=$(cpu_ticks "$(pid_of "$NAT")"); s0=$(cpu_ticks "$(pid_of "$SRC")")
  t0=$(now); kill -CONT "$(pid_of "$NAT")"
  until [ "$(r "$NAT" EXISTS "bench:end:$round")" = 1 ]; do sleep 0.02; done
  NATIVE_DRAIN=$(echo "$(now) - $t0" | bc)
  NATIVE_CPU="replica $(cpu_s "$n0" "$(cpu_ticks "$(pid_of "$NAT")")") s, source $(cpu_s "$s0" "$(cpu_ticks "$(pid_of "$SRC")")") s"
  d0=$(cpu_ticks "$(pid_of "$DST")"); p0=$(cpu_ticks "$DPID"); s0=$(cpu_ticks "$(pid_of "$SRC")")
  t0=$(now); kill -CONT "$DPID"
  until [ "$(r "$DST" EXISTS "bench:end:$round")" = 1 ]; do sleep 0.02; done
  DTS_DRAIN=$(echo "$(now) - $t0" | bc)
  DTS_CPU="destination $(cpu_s "$d0" "$(cpu_ticks "$(pid_of "$DST")")") s, dts $(cpu_s "$p0" "$(cpu_ticks "$DPID")") s, source $(cpu_s "$s0" "$(cpu_ticks "$(pid_of "$SRC")")") s"
  NR=$(echo "$OPS / $NATIVE_DRAIN" | bc); DR=$(echo "$OPS / $DTS_DRAIN" | bc)
  printf '  round %s: %s commands; native replica %6.2f s, %8s ops/s (CPU: %s); dts %6.2f s, %8s ops/s (CPU: %s); dts / native %s\n' \
    "$round" "$OPS" "$NATIVE_DRAIN" "$NR" "$NATIVE_CPU" "$DTS_DRAIN" "$DR" "$DTS_CPU" "$(echo "scale=2; $DR / $NR" | bc)"
  OPS_SUM=$((OPS_SUM + OPS))
  NATIVE_DRAIN_SUM=$(echo "$NATIVE_DRAIN_SUM + $NATIVE_DRAIN" | bc); DTS_DRAIN_SUM=$(echo "$DTS_DRAIN_SUM + $DTS_DRAIN" | bc)
done
NR=$(echo "$OPS_SUM / $NATIVE_DRAIN_SUM" | bc); DR=$(echo "$OPS_SUM / $DTS_DRAIN_SUM" | bc)
printf '  native replica: %8s ops/s\n  dts:            %8s ops/s   (all rounds)\n  dts / native ops/s: %s (target >= 1.0)\n' \
  "$NR" "$DR" "$(echo "scale=2; $DR / $NR" | bc)"
LAG_RATE=${LAG_RATE:-50000}
[ -n "${NO_LAG:-}" ] || {
printf '\nlive lag at %s commands/s (bench/redis_lag.py, 20 s each; target p99 < 50 ms):\n' "$LAG_RATE"
printf '  native replica: '; python3 bench/redis_lag.py "$SRC" "$NAT" "$LAG_RATE" 20
printf '  dts:            '; python3 bench/redis_lag.py "$SRC" "$DST" "$LAG_RATE" 20
}
"$DTS" job complete "$JOB2" >/dev/null
until [ "$(status "$JOB2")" = 9 ]; do sleep 0.1; done
for _ in $(seq 1 50); do [ "$(digest "$DST")" = "$(digest "$SRC")" ] && break; sleep 0.1; done
[ "$(digest "$DST")" = "$(digest "$SRC")" ] || { echo "dts destination differs from the source after the backlog"; exit 1; }
printf '\ndts peak RSS over the run: %s MiB (target < 256)\n' "$(( $(awk '/VmHWM/ {print $2}' "/proc/$DPID/status") / 1024 ))"
