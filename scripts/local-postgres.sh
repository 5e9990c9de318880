# A PostgreSQL server of a script's own, for examples: source
# this file, then
#
#   local_postgres_start DIR LOG   # initdb in DIR (once), start on a free port
#                                  # of 127.0.0.1, create database wager;
#                                  # sets LOCAL_PG_URL and LOCAL_PG_PID
#   local_postgres_stop            # fast shutdown, waits for it
#
# Debian's postgresql package provides the server. As root the server runs
# as the postgres user (initdb refuses root). Trust authentication on
# 127.0.0.1 only: for a machine's own tests and demos, not for production.

LOCAL_PG_URL=
LOCAL_PG_PID=

local_postgres_start() {
  local dir=$1 log=$2 bin
  bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
  if [[ ! -x "$bin/initdb" ]]; then
    echo "no PostgreSQL server (install the postgresql package: scripts/install-deps.sh)" >&2
    return 2
  fi
  local as_pg=()
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  if [[ $(id -u) -eq 0 ]]; then
    as_pg=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
    # The postgres user must reach the directory through its parents; where
    # it cannot (a private home or temporary dir), the server's files go to
    # a directory of /tmp named after DIR, the same at every run.
    if ! "${as_pg[@]}" test -x "$(dirname "$dir")"; then
      local alt
      alt=/tmp/wager-postgres-$(printf %s "$dir" | sha256sum | cut -c1-16)
      echo "the postgres user cannot reach $dir; PostgreSQL's files go to $alt" >&2
      dir=$alt
      mkdir -p "$dir"
    fi
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
  fi
  if [[ ! -s "$dir/PG_VERSION" ]]; then
    "${as_pg[@]}" "$bin/initdb" -D "$dir" -U wager --auth=trust -E UTF8 --no-locale >>"$log" 2>&1 \
      || { cat "$log" >&2; return 1; }
  fi
  local port
  for _ in $(seq 100); do
    port=$((20000 + RANDOM % 20000))
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null || break
  done
  "${as_pg[@]}" "$bin/postgres" -D "$dir" -p "$port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories= -c log_min_messages=warning -c max_connections=200 >>"$log" 2>&1 &
  LOCAL_PG_PID=$!
  local deadline=$((SECONDS + 30))
  until "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; do
    if ((SECONDS >= deadline)) || ! kill -0 "$LOCAL_PG_PID" 2>/dev/null; then
      echo "PostgreSQL did not start:" >&2
      cat "$log" >&2
      return 1
    fi
    sleep 0.1
  done
  if ! "$bin/psql" -qtA -h 127.0.0.1 -p "$port" -U wager -d postgres \
       -c "SELECT 1 FROM pg_database WHERE datname = 'wager'" | grep -q 1; then
    "$bin/psql" -q -h 127.0.0.1 -p "$port" -U wager -d postgres -c "CREATE DATABASE wager" >>"$log"
  fi
  LOCAL_PG_URL="postgresql://wager@127.0.0.1:$port/wager"
}


local_postgres_stop() {
  if [[ -n $LOCAL_PG_PID ]]; then
    kill -INT "$LOCAL_PG_PID" 2>/dev/null || true
    wait "$LOCAL_PG_PID" 2>/dev/null || true
    LOCAL_PG_PID=
  fi
}
