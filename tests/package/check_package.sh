#!/usr/bin/env bash
# Installs the build tree into a fresh prefix, then configures, builds and
# runs tests/package/consumer against it with find_package(wager).
# Usage: check_package.sh BUILD_DIR SOURCE_DIR CXX_FLAGS
set -euo pipefail
build_dir=$1
source_dir=$2
cxx_flags=${3:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cmake --install "$build_dir" --prefix "$work/prefix" >/dev/null
cmake -S "$source_dir/tests/package/consumer" -B "$work/build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$work/prefix" -DCMAKE_CXX_FLAGS="$cxx_flags" >/dev/null
cmake --build "$work/build" >/dev/null
"$work/build/consumer"
