#!/usr/bin/env bash
# Starts one Wager node on the embedded SQLite journal in ./data, serving the
# client API on http://127.0.0.1:8080 and the feed on 127.0.0.1:8090, with a
# demo match day: examples/feed/demo_day.ndjson (four football matches and a
# horse race, open, prices moving) is played into the feed port in a loop.
# WAGER_DEMO_FEED=0 starts the node without it. Extra arguments go to
# wager-node (see `wager-node --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

build_dir=${WAGER_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DWAGER_BUILD_TESTS=OFF -DWAGER_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target wager-node wagerctl

admin_key=${WAGER_ADMIN_KEY:-demo-admin-key}
echo "starting wager-node: data in ./data, admin key '$admin_key', Ctrl-C to stop"
if [[ "${WAGER_DEMO_FEED:-1}" == "0" ]]; then
  exec "$build_dir/apps/wager-node" --data-dir ./data --admin-key "$admin_key" "$@"
fi

ready_fifo=$(mktemp -u)
mkfifo "$ready_fifo"
"$build_dir/apps/wager-node" --data-dir ./data --admin-key "$admin_key" "$@" >"$ready_fifo" &
node=$!
feed_pid=
stop() {
  [[ -n "$feed_pid" ]] && kill "$feed_pid" 2>/dev/null || true
  kill -TERM "$node" 2>/dev/null || true
}
trap stop INT TERM

# The ready line names the feed address the node bound; the node's stdout
# keeps flowing to ours.
exec 3<"$ready_fifo"
rm -f "$ready_fifo"
feed=
while IFS= read -r -u 3 line; do
  echo "$line"
  if [[ "$line" == *'"event":"ready"'* ]]; then
    feed=$(sed -n 's/.*"feed":"\([^"]*\)".*/\1/p' <<<"$line")
    break
  fi
done
cat <&3 &
if [[ -n "$feed" ]]; then
  echo "demo match day: playing examples/feed/demo_day.ndjson into $feed (5 lines/s, looped)"
  "$build_dir/apps/wagerctl" feed-replay examples/feed/demo_day.ndjson --feed "$feed" \
    --rate 5 --loop >/dev/null &
  feed_pid=$!
else
  echo "no feed port: the demo match day is not loaded" >&2
fi
# A signal interrupts `wait`; the trap asks the node to drain, and the loop
# waits for it to finish and reports its own exit status.
set +e
while kill -0 "$node" 2>/dev/null; do
  wait "$node"
  status=$?
done
stop
exit "$status"
