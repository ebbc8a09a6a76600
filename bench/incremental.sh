#!/usr/bin/env bash
# Incremental (binlog) benchmark, MigrateType 3: dts vs a native MariaDB replica
# (slave_parallel_threads=2, optimistic), fed the same sysbench oltp_write_only load.
#
#   bench/incremental.sh [SECONDS] [TABLE_SIZE] [RATE]   (default 60 100000 0; sysbench 4 tables, 2 threads;
#                                                         RATE: sysbench transactions/s, 0 = as fast as it goes,
#                                                         500 = a steady 2,000 row changes/s)
#
# Both appliers run during the load. When it stops, the script measures (two pollers at once)
# how long each destination takes to reach the source's CHECKSUM TABLE, prints the ratio, the peak RSS of
# dts serve, and the lag dts reported (Detail.SecondsBehindMaster) sampled every 0.5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}; SIZE=${2:-100000}; RATE=${3:-0}

source bench/servers.sh
bench_setup dts-ibench sysbench mariadb-server

SRC=$(free_port); DST=$(free_port); REP=$(free_port)
start_mariadb src "$SRC" 21 512M
start_mariadb dst "$DST" 22 512M
start_mariadb rep "$REP" 23 512M --slave-parallel-threads=2 --slave-parallel-mode=optimistic
q "$SRC" "CREATE DATABASE sbtest"
SB=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC" --mysql-user=root --mysql-db=sbtest --tables=4 --table-size="$SIZE")
sysbench oltp_write_only "${SB[@]}" --threads=2 prepare >/dev/null
# Heartbeat (as pt-heartbeat does): the source stamps NOW(6) every 0.1 s during the load; a
# destination's lag is NOW(6) minus the newest stamp it has (all servers share this clock).
q "$SRC" "CREATE TABLE sbtest.heartbeat (id INT PRIMARY KEY, ts DATETIME(6)); INSERT INTO sbtest.heartbeat VALUES (1, NOW(6))"

# The native replica: a copy of the data, then replication from the current position.
mariadb-dump -h127.0.0.1 -P"$SRC" -uroot --single-transaction --master-data=1 --databases sbtest > "$WORK/seed.sql"
mariadb -h127.0.0.1 -P"$REP" -uroot < "$WORK/seed.sql"
q "$REP" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$SRC, MASTER_USER='root', MASTER_PASSWORD=''; START SLAVE"

# dts: a MigrateType 3 job, ReadyComplete before the load starts.
start_dts "$WORK/dts.log" --data-dir "$WORK/dts"
JOB=$("$DTS" job create --name ibench --source mysql://root@127.0.0.1:"$SRC" --destination mysql://root@127.0.0.1:"$DST" \
      --objects sbtest --migrate-type 3)
"$DTS" job check "$JOB" >/dev/null
"$DTS" job start "$JOB" >/dev/null
status() { "$DTS" job show "$JOB" --json | python3 -c 'import json,sys; j=json.load(sys.stdin); print(j["Status"], j["Detail"]["SecondsBehindMaster"])'; }
until [ "$(status | cut -d' ' -f1)" = 8 ]; do sleep 0.5; done

echo "load: sysbench oltp_write_only, 2 threads, ${SECS} s, 4 x $SIZE rows, rate ${RATE} tx/s (0: unthrottled)"
( while :; do status | cut -d' ' -f2; sleep 0.5; done ) > "$WORK/lag.txt" 2>/dev/null &
LAGPID=$!; PIDS+=($LAGPID); disown
( while :; do q "$SRC" "UPDATE sbtest.heartbeat SET ts = NOW(6) WHERE id = 1"; sleep 0.1; done ) >/dev/null 2>&1 &
HBPID=$!; PIDS+=($HBPID); disown
sleep 1   # the first stamps reach both destinations before lag is sampled
hb_lag() { q "$1" "SELECT TIMESTAMPDIFF(MICROSECOND, ts, NOW(6)) / 1000000 FROM sbtest.heartbeat"; }
( while :; do echo "$(hb_lag "$DST") $(hb_lag "$REP")"; sleep 0.5; done ) > "$WORK/hb.txt" 2>/dev/null &
HBMON=$!; PIDS+=($HBMON); disown
sysbench oltp_write_only "${SB[@]}" --threads=2 --time="$SECS" --rate="$RATE" --report-interval=0 run > "$WORK/sysbench.txt"
t_end=$(now)
kill $LAGPID $HBPID $HBMON 2>/dev/null || true
TPS=$(grep -o 'transactions: *[0-9]* *([0-9.]* per sec' "$WORK/sysbench.txt" | grep -o '([0-9.]*' | tr -d '(')

sums() { q "$1" "CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3, sbtest.sbtest4" | awk '{print $2}' | tr '\n' ' '; }
SRC_SUM=$(sums "$SRC")
# Each destination is polled by its own loop, both at once, so neither is measured later than
# the other by the time one checksum round takes.
catch_up() {   # PORT OUTFILE
  while :; do
    if [ "$(sums "$1")" = "$SRC_SUM" ]; then echo "$(now) - $t_end" | bc > "$2"; return; fi
    if [ "$(echo "$(now) - $t_end > 300" | bc)" = 1 ]; then echo never > "$2"; return; fi
    sleep 0.05
  done
}
catch_up "$REP" "$WORK/t_rep" & C1=$!
catch_up "$DST" "$WORK/t_dts" & C2=$!
wait $C1 $C2
t_rep=$(cat "$WORK/t_rep"); t_dts=$(cat "$WORK/t_dts")
if [ "$t_rep" = never ] || [ "$t_dts" = never ]; then
  echo "timed out; rep=$t_rep dts=$t_dts"; tail -5 "$WORK/dts.log"; exit 1
fi
rss_kib=$(awk '/VmHWM/ {print $2}' /proc/$DPID/status)
LAG_P99=$(sort -n "$WORK/lag.txt" | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; print a[i]}')
LAG_MAX=$(sort -n "$WORK/lag.txt" | tail -1)
p99() { sort -n | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; printf "%.2f", a[i]}'; }
HB_DTS=$(awk '{print $1}' "$WORK/hb.txt" | p99); HB_REP=$(awk '{print $2}' "$WORK/hb.txt" | p99)
HB_DTS_MAX=$(awk '{print $1}' "$WORK/hb.txt" | sort -n | tail -1)
HB_REP_MAX=$(awk '{print $2}' "$WORK/hb.txt" | sort -n | tail -1)
ROWS_PER_S=$(echo "$TPS * 4" | bc)   # oltp_write_only: 2 updates + 1 delete + 1 insert per transaction

printf '\nsysbench: %s transactions/s (about %s row changes/s)\n' "$TPS" "$ROWS_PER_S"
printf '  native replica (parallel 2, optimistic) equal to source %6.2f s after the load stopped\n' "$t_rep"
printf '  dts MigrateType 3                       equal to source %6.2f s after the load stopped\n' "$t_dts"
printf '  dts lag during the load (SecondsBehindMaster, 0.5 s samples): p99 %s s, max %s s; peak RSS %s MiB\n' \
  "$LAG_P99" "$LAG_MAX" "$((rss_kib / 1024))"
printf '  heartbeat lag (0.1 s stamps, 0.5 s samples): dts p99 %s s (max %s s), native replica p99 %s s (max %s s)\n' \
  "$HB_DTS" "$HB_DTS_MAX" "$HB_REP" "$HB_REP_MAX"
echo "  target: dts equal no later than the native replica; lag p99 < 1 s at 2,000 row changes/s"
