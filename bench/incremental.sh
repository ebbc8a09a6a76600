#!/usr/bin/env bash
# Incremental (binlog) benchmark, MigrateType 3: dts vs a native MariaDB replica
# (slave_parallel_threads=2, optimistic), fed the same sysbench oltp_write_only load.
#
#   bench/incremental.sh [SECONDS] [TABLE_SIZE]     (default 60 100000; sysbench 4 tables, 2 threads)
#
# Both appliers run during the load. When it stops, the script measures how long each
# destination takes to reach the source's CHECKSUM TABLE, prints the ratio, the peak RSS of
# dts serve, and the lag dts reported (Detail.SecondsBehindMaster) sampled every 0.5 s.
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-60}; SIZE=${2:-100000}

source bench/servers.sh
bench_setup dts-ibench sysbench mariadb-server

SRC=$(free_port); DST=$(free_port); REP=$(free_port)
start_mariadb src "$SRC" 21 512M
start_mariadb dst "$DST" 22 512M
start_mariadb rep "$REP" 23 512M --slave-parallel-threads=2 --slave-parallel-mode=optimistic
q "$SRC" "CREATE DATABASE sbtest"
SB=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC" --mysql-user=root --mysql-db=sbtest --tables=4 --table-size="$SIZE")
sysbench oltp_write_only "${SB[@]}" --threads=2 prepare >/dev/null

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

echo "load: sysbench oltp_write_only, 2 threads, ${SECS} s, 4 x $SIZE rows"
( while :; do status | cut -d' ' -f2; sleep 0.5; done ) > "$WORK/lag.txt" 2>/dev/null &
LAGPID=$!; PIDS+=($LAGPID); disown
sysbench oltp_write_only "${SB[@]}" --threads=2 --time="$SECS" --report-interval=0 run > "$WORK/sysbench.txt"
t_end=$(now)
kill $LAGPID 2>/dev/null || true
TPS=$(grep -o 'transactions: *[0-9]* *([0-9.]* per sec' "$WORK/sysbench.txt" | grep -o '([0-9.]*' | tr -d '(')

sums() { q "$1" "CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3, sbtest.sbtest4" | awk '{print $2}' | tr '\n' ' '; }
SRC_SUM=$(sums "$SRC")
t_rep=""; t_dts=""
while [ -z "$t_rep" ] || [ -z "$t_dts" ]; do
  [ -z "$t_rep" ] && [ "$(sums "$REP")" = "$SRC_SUM" ] && t_rep=$(echo "$(now) - $t_end" | bc)
  [ -z "$t_dts" ] && [ "$(sums "$DST")" = "$SRC_SUM" ] && t_dts=$(echo "$(now) - $t_end" | bc)
  [ "$(echo "$(now) - $t_end > 300" | bc)" = 1 ] && { echo "timed out; rep=${t_rep:-never} dts=${t_dts:-never}"; tail -5 "$WORK/dts.log"; exit 1; }
  sleep 0.2
done
rss_kib=$(awk '/VmHWM/ {print $2}' /proc/$DPID/status)
LAG_P99=$(sort -n "$WORK/lag.txt" | awk '{a[NR]=$1} END {i=int(NR*0.99); if (i<1) i=1; print a[i]}')
LAG_MAX=$(sort -n "$WORK/lag.txt" | tail -1)
ROWS_PER_S=$(echo "$TPS * 4" | bc)   # oltp_write_only: 2 updates + 1 delete + 1 insert per transaction

printf '\nsysbench: %s transactions/s (about %s row changes/s)\n' "$TPS" "$ROWS_PER_S"
printf '  native replica (parallel 2, optimistic) equal to source %6.2f s after the load stopped\n' "$t_rep"
printf '  dts MigrateType 3                       equal to source %6.2f s after the load stopped\n' "$t_dts"
printf '  dts lag during the load (SecondsBehindMaster, 0.5 s samples): p99 %s s, max %s s; peak RSS %s MiB\n' \
  "$LAG_P99" "$LAG_MAX" "$((rss_kib / 1024))"
echo "  target: dts equal no later than the native replica; lag p99 < 1 s at 2,000 row changes/s"
