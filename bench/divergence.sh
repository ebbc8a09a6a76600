#!/usr/bin/env bash
# Divergence benchmark of the consistency check: 1,000 random divergences (updated columns,
# deleted rows, extra rows, across all tables) injected on a destination that a dts job keeps in
# sync, found by `dts verify` -- once with the source idle, once while replication runs at about
# 1,000 row changes/s (sysbench oltp_write_only --rate) -- and counted: found, missed, false
# positives. The idle run's repair SQL is applied and must leave the tables equal.
#
#   bench/divergence.sh [TABLES] [TABLE_SIZE] [DIVERGENCES]     (default 4 500000 1000)
#
# The load writes ids 1..SIZE/2 only (sysbench's --table-size bounds its random ids); the
# divergences go to ids above SIZE/2 and to new ids above SIZE, so the truth is known exactly
# while the load runs: anything else reported is a false positive.
set -euo pipefail
cd "$(dirname "$0")/.."
TABLES=${1:-4}; SIZE=${2:-500000}; N=${3:-1000}
source bench/servers.sh
bench_setup dts-dbench sysbench mariadb-server

SRC=$(free_port); DST=$(free_port)
start_mariadb src "$SRC" 41 1G
start_mariadb dst "$DST" 42 1G
q "$SRC" "CREATE DATABASE sbtest"
sb() { sysbench "$1" --db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC" --mysql-user=root \
  --mysql-db=sbtest --tables="$TABLES" "${@:2}"; }
sb oltp_read_write --table-size="$SIZE" --threads=2 prepare >/dev/null
start_dts "$WORK/dts.log" --data-dir "$WORK/dts"
JOB=$("$DTS" job create --name divergence --migrate-type 3 --source mysql://root@127.0.0.1:"$SRC" \
  --destination mysql://root@127.0.0.1:"$DST" --objects sbtest)
"$DTS" job check "$JOB" >/dev/null
"$DTS" job start "$JOB" >/dev/null
until "$DTS" job show "$JOB" --json | grep -q '"Status": 8'; do sleep 1; done

# inject ROUND: N divergences spread over the tables; writes the expected "table kind key" lines.
inject() {
  local round=$1 per=$(( (N + TABLES - 1) / TABLES )) left=$N
  : > "$WORK/expected.$round"
  for t in $(seq 1 "$TABLES"); do
    local n=$(( left < per ? left : per )); left=$(( left - n ))
    local nu=$(( n / 3 )) nd=$(( n / 3 )); local ne=$(( n - nu - nd ))
    mapfile -t ids < <(shuf -i $(( SIZE / 2 + 1 ))-"$SIZE" -n $(( nu + nd )))
    local up=("${ids[@]:0:nu}") del=("${ids[@]:nu:nd}")
    local sql="SET sql_log_bin = 0;"
    [ "$nu" -gt 0 ] && sql+="UPDATE sbtest.sbtest$t SET c = CONCAT('diverged-$round-', id) WHERE id IN ($(IFS=,; echo "${up[*]}"));"
    [ "$nd" -gt 0 ] && sql+="DELETE FROM sbtest.sbtest$t WHERE id IN ($(IFS=,; echo "${del[*]}"));"
    for e in $(seq 1 "$ne"); do
      local id=$(( SIZE * (round + 1) + e ))
      sql+="INSERT INTO sbtest.sbtest$t VALUES ($id, 1, 'extra', 'extra');"
      echo "sbtest$t extra id=$id" >> "$WORK/expected.$round"
    done
    q "$DST" "$sql"
    for id in "${up[@]}"; do echo "sbtest$t different id=$id" >> "$WORK/expected.$round"; done
    for id in "${del[@]}"; do echo "sbtest$t missing id=$id" >> "$WORK/expected.$round"; done
  done
  sort -o "$WORK/expected.$round" "$WORK/expected.$round"
}

# found ROUND LOG: the "table kind key" lines dts verify printed.
found() {
  awk '/^`sbtest`\.`/ { split($1, a, "`"); t = a[4] }
       / missing on the destination: / { k = "missing" } / extra on the destination: / { k = "extra" }
       / different: / { k = "different" }
       /^  [0-9]+ / && !/still changing/ { n = split($0, parts, /; |: /); for (i = 2; i <= n; i++) { split(parts[i], w, " "); print t, k, w[1] } }' \
    "$2" | sort > "$WORK/found.$1"
}

report() { # ROUND LABEL SECONDS
  local expected found missed extra
  expected=$(wc -l < "$WORK/expected.$1"); found=$(comm -12 "$WORK/expected.$1" "$WORK/found.$1" | wc -l)
  missed=$(comm -23 "$WORK/expected.$1" "$WORK/found.$1" | wc -l); extra=$(comm -13 "$WORK/expected.$1" "$WORK/found.$1" | wc -l)
  printf '  %-36s: %4d injected, %4d found (%5.1f%%), %d missed, %d false positives, %.1f s\n' \
    "$2" "$expected" "$found" "$(echo "100 * $found / $expected" | bc -l)" "$missed" "$extra" "$3"
}

verify() { "$DTS" verify --source mysql://root@127.0.0.1:"$SRC" --destination mysql://root@127.0.0.1:"$DST" \
  --tables sbtest --show 1000000 "$@"; }

printf '\n%s x %s rows, %s divergences per round\n' "$TABLES" "$SIZE" "$N"
inject 0
t0=$(now); verify --repair-sql "$WORK/repair.sql" > "$WORK/verify.0" 2>"$WORK/verify.0.err" || true
t_idle=$(echo "$(now) - $t0" | bc)
found 0 "$WORK/verify.0"; report 0 "source idle" "$t_idle"
mariadb -h127.0.0.1 -P"$DST" -uroot < "$WORK/repair.sql"
if verify >/dev/null 2>&1; then echo "  repair SQL ($(wc -l < "$WORK/repair.sql") statements): tables equal again"
else echo "  repair SQL left differences"; exit 1; fi

sb oltp_write_only --table-size=$(( SIZE / 2 )) --threads=2 --rate=250 --time=600 run >/dev/null 2>&1 &
LOAD=$!; PIDS+=($LOAD); sleep 5
inject 1
t0=$(now); verify --settle-secs 3 > "$WORK/verify.1" 2>"$WORK/verify.1.err" || true
t_live=$(echo "$(now) - $t0" | bc)
found 1 "$WORK/verify.1"; report 1 "replicating ~1,000 row changes/s" "$t_live"
kill "$LOAD" 2>/dev/null || true
grep -h "still changing" "$WORK/verify.1" | sed 's/^/  /' || true
