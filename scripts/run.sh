#!/usr/bin/env bash
# Starts one Wager node on the embedded SQLite journal in ./data, serving the
# client API on http://127.0.0.1:8080 and the feed on 127.0.0.1:8090.
# Extra arguments go to wager-node (see `wager-node --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

build_dir=${WAGER_BUILD_DIR:-build}
cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DWAGER_BUILD_TESTS=OFF -DWAGER_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" -j "$(nproc)" --target wager-node

echo "starting wager-node: data in ./data, Ctrl-C to stop"
exec "$build_dir/apps/wager-node" --data-dir ./data --admin-key "${WAGER_ADMIN_KEY:-demo-admin-key}" "$@"
