#!/usr/bin/env bash
# Starts one Wager node on the embedded SQLite journal in data/ of this
# checkout, serving the client API on http://127.0.0.1:8080 and the feed on
# 127.0.0.1:8090, with a demo match day: examples/feed/demo_day.ndjson (four
# football matches and a horse race, open, prices moving) is played into the
# feed port in a loop.
#
# Arguments go to wager-node (see `wager-node --help`) and win over the
# script's own defaults (--data-dir, --admin-key), whether given as flags,
# as WAGER_* variables or in a --config file.
#   WAGER_DEMO_FEED=0        start the node without the demo match day
#   WAGER_RUN_BUILD_DIR=DIR  the build tree (default build-run/, its own, so
#                            a tree built by hand keeps its cache)
#   WAGER_RUN_SKIP_BUILD=1   run DIR as it is: no install, configure or build
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)

build_dir=${WAGER_RUN_BUILD_DIR:-$root/build-run}
if [[ "${WAGER_RUN_SKIP_BUILD:-0}" != 1 ]]; then
  bash "$root/scripts/install-deps.sh"
  cmake -S "$root" -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DWAGER_BUILD_TESTS=OFF -DWAGER_BUILD_BENCH=OFF >/dev/null
  cmake --build "$build_dir" -j "$(nproc)" --target wager-node wagerctl
fi
node_bin=$build_dir/apps/wager-node
ctl_bin=$build_dir/apps/wagerctl
for bin in "$node_bin" "$ctl_bin"; do
  if [[ ! -x "$bin" ]]; then
    echo "run.sh: no $bin (build the tree first, or unset WAGER_RUN_SKIP_BUILD)" >&2
    exit 1
  fi
done

# Whether the user gave wager-node option NAME: as --NAME V or --NAME=V, as
# its WAGER_ variable, or as a key of the --config (or WAGER_CONFIG) file.
user_gave() {
  local name=$1 config=${WAGER_CONFIG:-} previous= arg
  shift
  local variable=WAGER_${name//-/_}
  variable=${variable^^}
  [[ -n "${!variable+set}" ]] && return 0
  for arg in "$@"; do
    [[ "$arg" == "--$name" || "$arg" == "--$name="* ]] && return 0
    [[ "$previous" == --config ]] && config=$arg
    [[ "$arg" == --config=* ]] && config=${arg#--config=}
    previous=$arg
  done
  [[ -n "$config" && -r "$config" ]] &&
    grep -Eq "\"($name|${name//-/_})\"[[:space:]]*:" "$config"
}

# The defaults go to the node as WAGER_ variables, which any flag beats.
defaults=()
said="starting wager-node"
if ! user_gave data-dir "$@"; then
  defaults+=("WAGER_DATA_DIR=$root/data")
  said+=", data in $root/data"
fi
if ! user_gave admin-key "$@"; then
  defaults+=("WAGER_ADMIN_KEY=demo-admin-key")
  said+=", admin key 'demo-admin-key'"
fi
echo "$said; Ctrl-C to stop"
if [[ "${WAGER_DEMO_FEED:-1}" == "0" ]]; then
  exec env "${defaults[@]}" "$node_bin" "$@"
fi

fifo_dir=$(mktemp -d)
mkfifo "$fifo_dir/ready"
env "${defaults[@]}" "$node_bin" "$@" >"$fifo_dir/ready" &
node=$!
feed_pid=
signalled=
stop() {
  if [[ -n "$feed_pid" ]]; then kill "$feed_pid" 2>/dev/null || true; fi
  kill -TERM "$node" 2>/dev/null || true
}
trap 'signalled=1; stop' INT TERM

# The node's exit status. A trapped signal interrupts `wait` while the node
# drains; bash keeps a finished child's status, so waiting again returns it.
node_status=0
wait_for_node() {
  while :; do
    signalled=
    node_status=0
    wait "$node" || node_status=$?
    if [[ -z "$signalled" ]]; then return 0; fi
  done
}

# The ready line names the feed address the node bound; the node's stdout
# keeps flowing to ours. A node that cannot start closes its stdout without
# one, having said why on its stderr (which is ours): its status is ours.
exec 3<"$fifo_dir/ready"
rm -rf "$fifo_dir"
ready=
while IFS= read -r -u 3 line; do
  printf '%s\n' "$line"
  if [[ "$line" == *'"event":"ready"'* ]]; then
    ready=$line
    break
  fi
done
if [[ -z "$ready" ]]; then
  wait_for_node
  exit "$node_status"
fi
cat <&3 &

feed=$(sed -n 's/.*"feed":"\([^"]*\)".*/\1/p' <<<"$ready")
if [[ -n "$feed" ]]; then
  echo "demo match day: playing examples/feed/demo_day.ndjson into $feed (5 lines/s, looped)"
  "$ctl_bin" feed-replay "$root/examples/feed/demo_day.ndjson" --feed "$feed" \
    --rate 5 --loop >/dev/null &
  feed_pid=$!
else
  echo "no feed port: the demo match day is not loaded" >&2
fi
wait_for_node
stop
exit "$node_status"
