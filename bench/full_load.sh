#!/usr/bin/env bash
# Full-load benchmark (MigrateType 2): dts vs mydumper+myloader vs mariadb-dump|mariadb, in the
# same run, on two throwaway MariaDB servers (binlog ROW on both), sysbench data set.
#
#   bench/full_load.sh [TABLES] [TABLE_SIZE] [ROUNDS]     (default 4 500000 1)
#   DTS_BENCH_CONFIG="a.toml b.toml" bench/full_load.sh   (dts once per config file, e.g. [full_load] tuning)
#   DTS_BENCH_LOGS=DIR bench/full_load.sh                  (keeps dts serve's log of every run in DIR)
#
# Prints wall times, the ratios, dts's peak RSS and whether every copy's CHECKSUM TABLE equals
# the source's. All tools write the destination binlog (myloader -e), like dts by default.
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${1:-4}; SIZE=${2:-500000}; ROUNDS=${3:-1}

source bench/servers.sh
bench_setup dts-bench mydumper sysbench mariadb-server

SRC=$(free_port); DST=$(free_port)
start_mariadb src "$SRC" 11 1G; SRC_PID=${PIDS[-1]}
start_mariadb dst "$DST" 12 1G; DST_PID=${PIDS[-1]}
# CPU seconds (user + system) of a process so far; the servers' CPU spent by each tool is printed.
cpu() { awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat"; }
servers_cpu() { echo "$(cpu $SRC_PID) $(cpu $DST_PID)"; }
spent() { read -r a b <<< "$1"; read -r c d <<< "$(servers_cpu)"; printf 'source %.1f s, destination %.1f s' "$(echo "$c - $a" | bc)" "$(echo "$d - $b" | bc)"; }

echo "preparing sysbench data: $TABLES x $SIZE rows"
q "$SRC" "CREATE DATABASE sbtest"
sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC" --mysql-user=root \
  --mysql-db=sbtest --tables="$TABLES" --table-size="$SIZE" --threads=2 prepare >/dev/null

checksums() { q "$1" "CHECKSUM TABLE $(seq -s, -f 'sbtest.sbtest%g' 1 "$TABLES")" | awk '{print $2}' | tr '\n' ' '; }
SRC_SUM=$(checksums "$SRC")
reset_dst() { q "$DST" "DROP DATABASE IF EXISTS sbtest; RESET MASTER"; }
verdict() { [ "$(checksums "$DST")" = "$SRC_SUM" ] && echo equal || echo DIFFERENT; }

for round in $(seq 1 "$ROUNDS"); do
  reset_dst; rm -rf "$WORK/dump"
  c0=$(servers_cpu); t0=$(now)
  mydumper -h 127.0.0.1 -P "$SRC" -u root -t 2 -r 100000 -B sbtest -o "$WORK/dump" >/dev/null 2>&1
  myloader -h 127.0.0.1 -P "$DST" -u root -t 2 -o -e -d "$WORK/dump" >/dev/null 2>&1
  t_my=$(echo "$(now) - $t0" | bc); cpu_my=$(spent "$c0"); v_my=$(verdict)

  reset_dst; q "$DST" "CREATE DATABASE sbtest"
  c0=$(servers_cpu); t0=$(now)
  mariadb-dump -h127.0.0.1 -P"$SRC" -uroot --single-transaction sbtest | mariadb -h127.0.0.1 -P"$DST" -uroot sbtest
  t_dump=$(echo "$(now) - $t0" | bc); cpu_dump=$(spent "$c0"); v_dump=$(verdict)

  DTS_LINES=()
  for cfg in ${DTS_BENCH_CONFIG:-default}; do
  reset_dst
  DDIR=$WORK/dts-$round-$(basename "$cfg" .toml)
  CONFIG_ARGS=(); [ "$cfg" != default ] && CONFIG_ARGS=(--config "$cfg")
  LOG=$DDIR.log
  start_dts "$LOG" --data-dir "$DDIR" "${CONFIG_ARGS[@]}"
  c0=$(servers_cpu); t0=$(now)
  JOB=$("$DTS" job create --name bench --source mysql://root@127.0.0.1:"$SRC" --destination mysql://root@127.0.0.1:"$DST" \
        --objects sbtest --migrate-type 2)
  "$DTS" job check "$JOB" >/dev/null
  "$DTS" job start "$JOB" >/dev/null
  while :; do
    st=$("$DTS" job show "$JOB" --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["Status"])')
    [ "$st" = 9 ] && break
    [ "$st" = 10 ] && { echo "dts job failed"; "$DTS" job show "$JOB"; tail -20 "$LOG"; exit 1; }
    sleep 0.1
  done
  t_dts=$(echo "$(now) - $t0" | bc); cpu_dts=$(spent "$c0"); v_dts=$(verdict)
  rss_kib=$(awk '/VmHWM/ {print $2}' /proc/$DPID/status)
  cpu_s=$(awk -v hz="$(getconf CLK_TCK)" '{printf "%.1f", ($14 + $15) / hz}' /proc/$DPID/stat)
  lock_us=$(grep -o 'lock_held_micros=[0-9]*' "$LOG" | head -1 | cut -d= -f2)
  idx_ms=$(grep -o 'millis=[0-9]*' "$LOG" | cut -d= -f2 | paste -sd+ | bc 2>/dev/null || echo 0)
  kill $DPID
  [ -n "${DTS_BENCH_LOGS:-}" ] && mkdir -p "$DTS_BENCH_LOGS" && cp "$LOG" "$DTS_BENCH_LOGS/"
  DTS_LINES+=("$(printf '  dts MigrateType 2, config %-12s: %6.1f s  (%s), peak RSS %s MiB, CPU %s s, read lock held %s us, key builds %s ms; ratio vs mydumper+myloader %.2f, vs mariadb-dump %.2f; servers CPU: %s' \
    "$(basename "$cfg")" "$t_dts" "$v_dts" "$((rss_kib / 1024))" "$cpu_s" "${lock_us:-?}" "${idx_ms:-0}" "$(echo "$t_dts / $t_my" | bc -l)" "$(echo "$t_dts / $t_dump" | bc -l)" "$cpu_dts")")
  done
  printf '\nround %s (%s x %s rows)\n' "$round" "$TABLES" "$SIZE"
  printf '  mydumper -t 2 -r 100000 + myloader -t 2 -e : %6.1f s  (%s); servers CPU: %s\n' "$t_my" "$v_my" "$cpu_my"
  printf '  mariadb-dump --single-transaction | mariadb : %6.1f s  (%s); servers CPU: %s\n' "$t_dump" "$v_dump" "$cpu_dump"
  printf '%s\n' "${DTS_LINES[@]}"
  echo "  targets: dts / mydumper+myloader <= 0.9, dts / mariadb-dump|mariadb <= 0.6"
done
