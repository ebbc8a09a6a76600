# Shared by the benchmarks (sourced): package installs, throwaway MariaDB servers, helpers.
# The caller sets WORK (a temp dir) and PIDS (an array); everything started is killed on exit.

ensure_packages() { # packages...
  local need=()
  for p in "$@"; do
    case $p in
      mariadb-server) command -v mariadb-install-db >/dev/null || need+=("$p") ;;
      *) command -v "$p" >/dev/null || need+=("$p") ;;
    esac
  done
  if [ ${#need[@]} -gt 0 ]; then
    local sudo=""; [ "$(id -u)" -ne 0 ] && sudo=sudo
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}" >/dev/null
  fi
}

cleanup() { for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null || true; done; rm -rf "$WORK"; }

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

start_mariadb() { # name port server_id buffer_pool [extra mariadbd args...]
  local d=$WORK/$1 name=$1 port=$2 id=$3 pool=$4; shift 4
  mkdir -p "$d/tmp"
  mariadb-install-db --no-defaults --user=root --auth-root-authentication-method=normal --skip-test-db \
    --datadir="$d/data" --tmpdir="$d/tmp" >/dev/null 2>&1
  printf "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1' IDENTIFIED BY '';\nGRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;\n" > "$d/init.sql"
  mariadbd --no-defaults --user=root --datadir="$d/data" --tmpdir="$d/tmp" --socket="$d/sock" --port="$port" \
    --bind-address=127.0.0.1 --skip-name-resolve --server-id="$id" --log-bin="$d/data/binlog" --binlog-format=ROW \
    --binlog-row-image=FULL --innodb-buffer-pool-size="$pool" --innodb-log-file-size=256M --max-connections=200 \
    --init-file="$d/init.sql" --log-error="$d/error.log" "$@" >/dev/null 2>&1 &
  PIDS+=($!); disown
  for _ in $(seq 1 200); do mariadb -h127.0.0.1 -P"$port" -uroot -e 'SELECT 1' >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "mariadbd $name did not start"; cat "$d/error.log"; exit 1
}

q() { mariadb -h127.0.0.1 -P"$1" -uroot -N -e "$2"; }
now() { date +%s.%N; }

start_dts() { # log_file [dts serve args...]; sets DPID and exports DTS_ENDPOINT/DTS_SECRET_*
  local log=$1; shift
  local port; port=$(free_port)
  DTS_SECRET_ID=AKIDbench DTS_SECRET_KEY=benchkey "$DTS" serve --listen 127.0.0.1:"$port" "$@" 2>"$log" &
  DPID=$!; PIDS+=($DPID); disown
  export DTS_ENDPOINT=http://127.0.0.1:$port DTS_SECRET_ID=AKIDbench DTS_SECRET_KEY=benchkey
  for _ in $(seq 1 100); do curl -sf "$DTS_ENDPOINT/healthz" >/dev/null && return 0; sleep 0.1; done
  echo "dts serve did not start"; cat "$log"; exit 1
}

bench_setup() { # work-dir-prefix packages...; builds dts, sets DTS, WORK, PIDS and the exit trap
  local prefix=$1; shift
  ensure_packages "$@"
  flock -o /tmp/dts-cargo.lock cargo build --release --bin dts -q
  DTS=${DTS_BIN:-$PWD/target/release/dts}
  WORK=$(mktemp -d "/tmp/$prefix-XXXX")
  PIDS=()
  trap cleanup EXIT
}
