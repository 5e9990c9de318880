#!/usr/bin/env bash
# One node's journal on PostgreSQL against the same node on SQLite, side by
# side on this machine: wager-bench --mode inproc (shared/WORKLOAD.md), the
# two alternated round by round, one JSON line per run with "journal" added.
#
#   bench/postgres/pg_side_by_side.sh BUILD_DIR [ROUNDS] [SECONDS] [CLIENTS]
#
# It starts a PostgreSQL server of its own (Debian's postgresql package) in a
# temporary directory, on a free loopback port, with fsync and synchronous
# commit on, gives each PostgreSQL run an empty database, and stops the
# server by its pid at the end. As root the server runs as `postgres`.
set -euo pipefail

build=${1:?usage: pg_side_by_side.sh BUILD_DIR [ROUNDS] [SECONDS] [CLIENTS]}
rounds=${2:-3}
seconds=${3:-20}
clients=${4:-64}
bench="$build/bench/wager-bench"
[ -x "$bench" ] || { echo "pg_side_by_side.sh: no $bench (build the wager-bench target)" >&2; exit 2; }
bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
[ -n "$bindir" ] || { echo "pg_side_by_side.sh: no PostgreSQL server (scripts/install-deps.sh)" >&2; exit 2; }

tmp=$(mktemp -d)
chmod 711 "$tmp"
mkdir "$tmp/pg"
as_pg=()
if [ "$(id -u)" = 0 ]; then
  chown postgres: "$tmp/pg"
  as_pg=(setpriv --reuid=postgres --regid=postgres --clear-groups --)
fi
"${as_pg[@]}" "$bindir/initdb" -D "$tmp/pg" -U wager --auth=trust -E UTF8 --no-locale --no-sync >/dev/null
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"${as_pg[@]}" "$bindir/postgres" -D "$tmp/pg" -p "$port" -c listen_addresses=127.0.0.1 \
  -c unix_socket_directories= -c fsync=on -c synchronous_commit=on -c shared_buffers=256MB \
  -c max_wal_size=4GB -c log_min_messages=warning >"$tmp/pg.log" 2>&1 &
pg_pid=$!
stop() {
  kill -INT "$pg_pid" 2>/dev/null || true
  wait "$pg_pid" 2>/dev/null || true
  rm -rf "$tmp"
}
trap stop EXIT
for _ in $(seq 600); do
  "$bindir/pg_isready" -h 127.0.0.1 -p "$port" -q && break
  kill -0 "$pg_pid" 2>/dev/null || { cat "$tmp/pg.log" >&2; exit 2; }
  sleep 0.1
done
"$bindir/pg_isready" -h 127.0.0.1 -p "$port" -q || { echo "pg_side_by_side.sh: PostgreSQL did not start" >&2; exit 2; }

tag() { python3 -c 'import json, sys
for line in sys.stdin:
    d = json.loads(line); d["journal"] = sys.argv[1]; print(json.dumps(d))' "$1"; }

for round in $(seq "$rounds"); do
  "$bench" --mode inproc --clients "$clients" --seconds "$seconds" --data-dir "$tmp/sqlite" | tag sqlite
  db="bench_$round"
  "$bindir/psql" -h 127.0.0.1 -p "$port" -U wager -d postgres -qc "CREATE DATABASE $db"
  "$bench" --mode inproc --clients "$clients" --seconds "$seconds" --data-dir "$tmp/pgdata" \
    --journal "postgresql://wager@127.0.0.1:$port/$db" | tag postgresql
done
