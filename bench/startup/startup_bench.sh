#!/usr/bin/env bash
# How long a wager-node takes to be ready on a data dir that holds a big
# journal, with the log index checkpoint (persistence/README.md, "Two
# layouts") and without it (every frame read at open). One JSON line per run.
#
#   bench/startup/startup_bench.sh --bin build/apps --data-dir DIR [--runs 3] [--cold]
#
# DIR holds journal.db in the log layout, e.g. what
#   wager-bench --mode inproc --clients 64 --seconds 120 --data-dir D --keep-data
# left in D/c64. Each run starts the node on a fresh copy of it (the node
# saves a checkpoint when it stops), so DIR itself is never changed. --cold
# drops the page cache before each start (needs root), so the journal is
# read from the disk rather than from memory.
set -euo pipefail

bin=build/apps
data=
runs=3
cold=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --data-dir) data=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --cold) cold=true; shift ;;
    *) echo "startup_bench: unknown option $1" >&2; exit 2 ;;
  esac
done
[[ -n "$data" && -f "$data/journal.db" ]] || { echo "startup_bench: --data-dir DIR with DIR/journal.db" >&2; exit 2; }
command -v sqlite3 >/dev/null || { echo "startup_bench: needs sqlite3" >&2; exit 2; }
command -v jq >/dev/null || { echo "startup_bench: needs jq" >&2; exit 2; }

work=$(mktemp -d)
node_pid=
cleanup() {
  [[ -n "$node_pid" ]] && kill -KILL "$node_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

layout=$(sqlite3 "$data/journal.db" "SELECT name FROM layout")
[[ "$layout" == log ]] || { echo "startup_bench: $data/journal.db has the $layout layout" >&2; exit 2; }
frames=$(sqlite3 "$data/journal.db" "SELECT coalesce(max(position), 0) FROM log")
checkpoint_at=$(sqlite3 "$data/journal.db" "SELECT coalesce(max(position), 0) FROM index_checkpoint")
checkpoint_bytes=$(sqlite3 "$data/journal.db" "SELECT coalesce(sum(length(data)), 0) FROM index_checkpoint")
journal_mb=$(( $(stat -c %s "$data/journal.db") / 1048576 ))

for run in $(seq 1 "$runs"); do
  for index in checkpoint every_frame; do
    rm -rf "$work/data"
    mkdir -p "$work/data"
    sqlite3 "$data/journal.db" ".backup '$work/data/journal.db'"
    if [[ $index == every_frame ]]; then
      sqlite3 "$work/data/journal.db" "DELETE FROM index_checkpoint"
    elif [[ $checkpoint_at == 0 ]]; then
      continue
    fi
    if $cold; then
      sync
      echo 3 > /proc/sys/vm/drop_caches
    fi
    start=$(date +%s%N)
    coproc NODE { exec "$bin/wager-node" --data-dir "$work/data" --http-port 0 --feed-port -1 \
                    --log-level warn 2>"$work/node.err"; }
    node_pid=$NODE_PID
    if ! read -r -t 600 ready <&"${NODE[0]}"; then
      echo "startup_bench: the node was not ready: $(cat "$work/node.err")" >&2
      exit 1
    fi
    end=$(date +%s%N)
    kill -TERM "$node_pid"
    wait "$node_pid" || true
    node_pid=
    jq -nc --arg index "$index" --argjson ms "$(( (end - start) / 1000000 ))" \
      --argjson frames "$frames" --argjson checkpoint_at "$checkpoint_at" \
      --argjson checkpoint_bytes "$checkpoint_bytes" --argjson journal_mb "$journal_mb" \
      --argjson run "$run" --argjson cold "$cold" \
      '{mode:"startup", index:$index, run:$run, cold_cache:$cold, ready_ms:$ms, frames:$frames,
        checkpoint_at:$checkpoint_at, checkpoint_bytes:$checkpoint_bytes, journal_mb:$journal_mb}'
  done
done
