#!/usr/bin/env bash
# Consistency-check benchmark: `dts verify` of a sysbench data set vs CHECKSUM TABLE on both
# servers one after the other, and vs one full scan of the source computing a per-row CRC.
#
#   bench/verify.sh [TABLES] [TABLE_SIZE]      (default 4 500000)
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${1:-4}; SIZE=${2:-500000}
source bench/servers.sh
bench_setup dts-vbench mydumper sysbench mariadb-server

SRC=$(free_port); DST=$(free_port)
start_mariadb src "$SRC" 31 1G
start_mariadb dst "$DST" 32 1G
q "$SRC" "CREATE DATABASE sbtest"
sysbench oltp_read_write --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC" --mysql-user=root \
  --mysql-db=sbtest --tables="$TABLES" --table-size="$SIZE" --threads=2 prepare >/dev/null
mydumper -h 127.0.0.1 -P "$SRC" -u root -t 2 -B sbtest -o "$WORK/dump" >/dev/null 2>&1
myloader -h 127.0.0.1 -P "$DST" -u root -t 2 -o -d "$WORK/dump" >/dev/null 2>&1
LIST=$(seq -s, -f 'sbtest.sbtest%g' 1 "$TABLES")

t0=$(now); q "$SRC" "CHECKSUM TABLE $LIST" >/dev/null; q "$DST" "CHECKSUM TABLE $LIST" >/dev/null
t_checksum=$(echo "$(now) - $t0" | bc)
t0=$(now)
for i in $(seq 1 "$TABLES"); do q "$SRC" "SELECT COUNT(*), BIT_XOR(CRC32(CONCAT_WS('#', id, k, c, pad))) FROM sbtest.sbtest$i" >/dev/null; done
t_scan=$(echo "$(now) - $t0" | bc)
t0=$(now)
"$DTS" verify --source mysql://root@127.0.0.1:"$SRC" --destination mysql://root@127.0.0.1:"$DST" --tables sbtest ${DTS_VERIFY_ARGS:-} 2>"$WORK/verify.log" \
  || { cat "$WORK/verify.log"; echo "dts verify reported differences"; exit 1; }
t_verify=$(echo "$(now) - $t0" | bc)

printf '\n%s x %s rows\n' "$TABLES" "$SIZE"
printf '  CHECKSUM TABLE, source then destination : %6.2f s\n' "$t_checksum"
printf '  one scan of the source (count + CRC32)   : %6.2f s\n' "$t_scan"
printf '  dts verify (all tables equal)            : %6.2f s\n' "$t_verify"
printf '  ratio vs CHECKSUM TABLE x2 = %.2f (target <= 2), vs one scan = %.2f (target <= 1.5)\n' \
  "$(echo "$t_verify / $t_checksum" | bc -l)" "$(echo "$t_verify / $t_scan" | bc -l)"
