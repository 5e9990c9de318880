#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, builds,
# runs every test.
#   scripts/test.sh                      in build-test/, with AddressSanitizer,
#     LeakSanitizer and UBSan (what CI runs; third-party findings suppressed
#     in tests/{ubsan,lsan}.supp)
#   WAGER_SANITIZE=OFF scripts/test.sh   a plain build
# Both compile at -O1 -g1 (line tables for stack traces, a small build tree);
# WAGER_TEST_OPT_FLAGS overrides that.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

build_dir=${WAGER_TEST_BUILD_DIR:-build-test}
sanitize=${WAGER_SANITIZE:-ON}
jobs=$(nproc)

start=$(date +%s)
cmake -S . -B "$build_dir" -G Ninja \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="${WAGER_TEST_OPT_FLAGS:--O1 -g1 -DNDEBUG}" \
  -DWAGER_SANITIZE="$sanitize" \
  -DWAGER_BUILD_BENCH=OFF >/dev/null
cmake --build "$build_dir" -j "$jobs"
echo "build: $(( $(date +%s) - start )) s"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1:suppressions=$PWD/tests/ubsan.supp}
# Leaks inside CAF 0.17's middleman teardown and glibc, not ours: see the file.
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/lsan.supp:print_suppressions=0}
start=$(date +%s)
ctest --test-dir "$build_dir" -j "$jobs" --output-on-failure --timeout 600
echo "tests: $(( $(date +%s) - start )) s"
