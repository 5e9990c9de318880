#!/usr/bin/env bash
# A local three-node Wager cluster with one command: nodes n1, n2 and n3 on
# 127.0.0.1 share one data dir (one host, one journal), join through n1 with
# a shared cluster secret, and serve the client API on the ports they print.
#
#   examples/cluster/cluster.sh [--bin DIR] [--data-dir DIR] [--postgres] [--check]
#
#   --bin DIR       where wager-node is (default: build/apps)
#   --data-dir DIR  the shared data dir (default: ./data-cluster)
#   --postgres      the journal and the shard leases on a PostgreSQL server
#                   this script starts (initdb in DIR/postgres, on a free
#                   port of 127.0.0.1, as the postgres user when run as
#                   root; Debian's postgresql package), each node with a
#                   data dir of its own (DIR/n1, ...) that nothing shares:
#                   as nodes on hosts of their own would run
#   --check         exit 0 once every node shows all three members up
#                   (exit 1 if that does not happen within 30 s)
#
# Without --check it runs until Ctrl-C (or SIGTERM), which stops every node.
# WAGER_CLUSTER_SECRET sets the secret (default: a random one per run);
# WAGER_ADMIN_KEY the operator key (default: demo-admin-key).
set -euo pipefail

bin=build/apps
data=./data-cluster
check=0
postgres=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --data-dir) data=$2; shift 2 ;;
    --postgres) postgres=1; shift ;;
    --check) check=1; shift ;;
    *) echo "cluster.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
node_bin="$bin/wager-node"
[[ -x "$node_bin" ]] || { echo "cluster.sh: no wager-node in $bin (build it first)" >&2; exit 2; }
mkdir -p "$data"
export WAGER_CLUSTER_SECRET=${WAGER_CLUSTER_SECRET:-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')}
admin_key=${WAGER_ADMIN_KEY:-demo-admin-key}
run=$(mktemp -d)
pids=()
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  # PostgreSQL last, once no node writes: a fast shutdown.
  if ((postgres)); then local_postgres_stop; fi
  rm -rf "$run"
}
trap stop EXIT
trap 'exit 0' INT TERM

# --postgres: a server of this run's own, and the URL the nodes use.
journal=()
if ((postgres)); then
  # shellcheck source=../../scripts/local-postgres.sh
  source "$(dirname "$0")/../../scripts/local-postgres.sh"
  local_postgres_start "$data/postgres" "$run/postgres.log" || exit 1
  journal=(--journal "$LOCAL_PG_URL")
  echo "cluster.sh: PostgreSQL at $LOCAL_PG_URL"
fi

# Starts node $1 with extra args; its ready line goes to $run/$1.ready.
start() {
  local id=$1; shift
  mkfifo "$run/$id.out"
  local dir=$data
  if ((postgres)); then
    dir=$data/$id
    mkdir -p "$dir"
  fi
  "$node_bin" --data-dir "$dir" --node-id "$id" --http-port 0 --feed-port -1 \
    --cluster-port 0 --admin-key "$admin_key" --log-level warn "${journal[@]}" "$@" >"$run/$id.out" &
  pids+=($!)
  exec {fd}<"$run/$id.out"
  local line
  if ! IFS= read -r -t 60 -u "$fd" line; then
    echo "cluster.sh: node $id did not start" >&2
    exit 1
  fi
  echo "$line" | tee "$run/$id.ready"
  # The node's later output keeps draining to ours.
  cat <&"$fd" &
}
field() { sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p" "$run/$1.ready"; }

start n1
seed=$(field n1 cluster)
start n2 --seeds "$seed"
start n3 --seeds "$seed"

# Every node's health lists n1, n2 and n3 as up.
all_up() {
  local id health
  for id in n1 n2 n3; do
    health=$(curl -sf -H "Authorization: Bearer $admin_key" "http://$(field "$id" http)/v1/admin/health") || return 1
    [[ $(grep -o '"status":"up"' <<<"$health" | wc -l) -ge 3 ]] || return 1
    for m in n1 n2 n3; do grep -q "\"node_id\":\"$m\"" <<<"$health" || return 1; done
  done
}
deadline=$((SECONDS + 30))
until all_up; do
  if ((SECONDS >= deadline)); then
    echo "cluster.sh: the three nodes did not all see each other up within 30 s" >&2
    exit 1
  fi
  sleep 0.2
done
echo "cluster.sh: n1, n2 and n3 are up; client API on $(field n1 http), $(field n2 http), $(field n3 http)"
((check)) && exit 0
wait
