#!/usr/bin/env bash
# Apply capacity on a backlog: dts vs MariaDB's own replica, each draining the same backlog alone.
#
#   bench/backlog.sh [SECONDS] [FLUSH] [WORKLOAD]
#     SECONDS   sysbench time written while every applier is stopped (default 40)
#     FLUSH     innodb_flush_log_at_trx_commit of the destinations: 2 (default) or 1
#     WORKLOAD  write_only (default: oltp_write_only, 4 row changes per transaction) or
#               big (oltp_write_only --delete_inserts=5 --index_updates=5: 16 per transaction)
#   PROFILE=1 also samples dts and the destination server with `perf record` during dts's drain
#   and prints where their time went (dts built with debug symbols: see BENCHMARKS.md).
#   LANES=n sets dts's [replication] apply_lanes (default: dts's default).
#
# Method: a source, a dts destination and three native replicas (slave_parallel_threads 0, 2 and
# 4, optimistic) on this machine, every destination writing its own binlog of what it applies
# (dts's writes are logged as any client's; the replicas get log_slave_updates); a MigrateType 3 job at ReadyComplete and every replica caught up;
# then dts serve is stopped and every replica too (STOP SLAVE); sysbench oltp_write_only
# (4 x 100k rows, 2 threads) writes the backlog, then a marker row. Each applier is then started
# alone and timed until the marker is on its destination and CHECKSUM TABLE equals the source's.
# Printed: row changes/s of each, dts / the fastest native setting, the CPU each destination
# server (and dts) spent per 100,000 row changes, and dts's peak RSS during its drain.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-40}; FLUSH=${2:-2}; WORKLOAD=${3:-write_only}
SIZE=100000

source bench/servers.sh
bench_setup dts-backlog sysbench mariadb-server

SRC=$(free_port); DST=$(free_port)
start_mariadb src "$SRC" 31 512M
start_mariadb dst "$DST" 32 512M --innodb-flush-log-at-trx-commit="$FLUSH"
declare -A REP
for t in 0 2 4; do
  REP[$t]=$(free_port)
  start_mariadb "rep$t" "${REP[$t]}" "$((40 + t))" 512M --innodb-flush-log-at-trx-commit="$FLUSH" \
    --slave-parallel-threads="$t" --slave-parallel-mode=optimistic --skip-slave-start --log-slave-updates
done
q "$SRC" "CREATE DATABASE sbtest"
SB=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC" --mysql-user=root --mysql-db=sbtest --tables=4 --table-size="$SIZE")
sysbench oltp_write_only "${SB[@]}" --threads=2 prepare >/dev/null
q "$SRC" "CREATE TABLE sbtest.marker (id INT PRIMARY KEY)"

# Replicas: CHANGE MASTER names the host first (naming it after loading a --master-data dump
# would reset the position), then the dump sets the position and the data.
mariadb-dump -h127.0.0.1 -P"$SRC" -uroot --single-transaction --master-data=1 --databases sbtest > "$WORK/seed.sql"
for t in 0 2 4; do
  q "${REP[$t]}" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$SRC, MASTER_USER='root', MASTER_PASSWORD=''"
  mariadb -h127.0.0.1 -P"${REP[$t]}" -uroot < "$WORK/seed.sql"
done

start_dts "$WORK/dts.log" --data-dir "$WORK/dts"
JOB=$("$DTS" job create --name backlog --source mysql://root@127.0.0.1:"$SRC" --destination mysql://root@127.0.0.1:"$DST" \
      --objects sbtest --migrate-type 3)
"$DTS" job check "$JOB" >/dev/null
"$DTS" job start "$JOB" >/dev/null
status() { "$DTS" job show "$JOB" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["Status"])'; }
until [ "$(status)" = 8 ]; do sleep 0.5; done
for t in 0 2 4; do q "${REP[$t]}" "START SLAVE"; done
sums() { q "$1" "CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3, sbtest.sbtest4" | awk '{print $2}' | tr '\n' ' '; }
SRC_SUM=$(sums "$SRC")
for p in "$DST" "${REP[0]}" "${REP[2]}" "${REP[4]}"; do
  until [ "$(sums "$p")" = "$SRC_SUM" ]; do sleep 0.2; done
done

# Everything stops; the backlog is written.
kill -TERM "$DPID"; wait "$DPID" 2>/dev/null || true
for t in 0 2 4; do q "${REP[$t]}" "STOP SLAVE"; done
case $WORKLOAD in
  write_only) EXTRA=(); PER_TX=4 ;;
  big) EXTRA=(--delete_inserts=5 --index_updates=5); PER_TX=16 ;;
  *) echo "unknown workload $WORKLOAD"; exit 2 ;;
esac
sysbench oltp_write_only "${SB[@]}" "${EXTRA[@]}" --threads=2 --time="$SECS" --report-interval=0 run > "$WORK/sysbench.txt"
TX=$(grep -o 'transactions: *[0-9]*' "$WORK/sysbench.txt" | grep -o '[0-9]*$')
ROWS=$((TX * PER_TX))
q "$SRC" "INSERT INTO sbtest.marker VALUES (1)"
SRC_SUM=$(sums "$SRC")

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
server_pid() { cat "$WORK/$1/data/"*.pid 2>/dev/null || pgrep -f "datadir=$WORK/$1/data" | head -1; }
HZ=$(getconf CLK_TCK)
# Drains until the marker is there and the checksums match; prints "seconds server_cpu_s".
drain_until_equal() { # port server-name t0
  local port=$1 spid; spid=$(server_pid "$2"); local c0; c0=$(cpu_ticks "$spid")
  until [ "$(q "$port" "SELECT COUNT(*) FROM sbtest.marker" 2>/dev/null)" = 1 ]; do sleep 0.02; done
  local t1; t1=$(now)
  until [ "$(sums "$port")" = "$SRC_SUM" ]; do sleep 0.05; t1=$(now); done
  local c1; c1=$(cpu_ticks "$spid")
  echo "$(echo "$t1 - $3" | bc) $(echo "scale=2; ($c1 - $c0) / $HZ" | bc)"
}

printf '\nbacklog: %s s of sysbench oltp_write_only (%s), %s transactions, %s row changes; destinations innodb_flush_log_at_trx_commit=%s\n' \
  "$SECS" "$WORKLOAD" "$TX" "$ROWS" "$FLUSH"
BEST=0
for t in 0 2 4; do
  t0=$(now); q "${REP[$t]}" "START SLAVE"
  read -r secs cpu < <(drain_until_equal "${REP[$t]}" "rep$t" "$t0")
  rate=$(echo "$ROWS / $secs" | bc)
  [ "$rate" -gt "$BEST" ] && BEST=$rate
  printf '  native replica, slave_parallel_threads=%s: %6.2f s, %6s row changes/s, server CPU %5.2f s per 100k changes\n' \
    "$t" "$secs" "$rate" "$(echo "scale=2; $cpu * 100000 / $ROWS" | bc)"
done

if [ -n "${LANES:-}" ]; then
  printf '[replication]\napply_lanes = %s\n' "$LANES" > "$WORK/dts.toml"; CONF=(--config "$WORK/dts.toml")
else CONF=(); fi
t0=$(now)
start_dts "$WORK/dts2.log" --data-dir "$WORK/dts" "${CONF[@]}"
if [ -n "${PROFILE:-}" ]; then
  perf record -e cpu-clock -F 999 -g -o "$WORK/perf.data" -p "$DPID,$(server_pid dst)" >/dev/null 2>&1 & PERF=$!
fi
read -r secs cpu < <(drain_until_equal "$DST" dst "$t0")
if [ -n "${PROFILE:-}" ]; then
  kill -INT "$PERF"; wait "$PERF" 2>/dev/null || true
  echo "  profile (share of samples by thread, then by function, self time):"
  perf report -i "$WORK/perf.data" --no-children --sort comm --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -8 || true
  perf report -i "$WORK/perf.data" --no-children --sort comm,dso,symbol --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' \
    | sed -E 's/ +- +- *$//; s/  +/ /g' | head -30 || true
fi
dts_cpu=$(echo "scale=2; $(cpu_ticks "$DPID") / $HZ" | bc)
rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
rate=$(echo "$ROWS / $secs" | bc)
printf '  dts (defaults):                           %6.2f s, %6s row changes/s, server CPU %5.2f s + dts %5.2f s per 100k changes, peak RSS %s MiB\n' \
  "$secs" "$rate" "$(echo "scale=2; $cpu * 100000 / $ROWS" | bc)" "$(echo "scale=2; $dts_cpu * 100000 / $ROWS" | bc)" "$((rss_kib / 1024))"
printf '  dts / fastest native: %s\n' "$(echo "scale=2; $rate / $BEST" | bc)"
case "$FLUSH/$WORKLOAD" in
  2/write_only) echo "  target: >= 1.5" ;;
  1/write_only) echo "  target: >= 2.0" ;;
  */big) echo "  target: >= 1.2" ;;
esac
