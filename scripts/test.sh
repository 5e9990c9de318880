#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what is missing, builds,
# runs every test.
#   scripts/test.sh                      in build-test/, with AddressSanitizer,
#     LeakSanitizer and UBSan (what CI runs; third-party findings suppressed
#     in tests/{ubsan,lsan}.supp)
#   WAGER_SANITIZE=OFF scripts/test.sh   a plain build
# Both compile at -O1 -g1 (line tables for stack traces, a small build tree);
# WAGER_TEST_OPT_FLAGS overrides that. To keep the build short on 2 cores:
#   - the template-heavy translation units that do little at run time (the
#     suites, Beast's streams: WAGER_TEMPLATE_HEAVY_OPTIONS in CMakeLists.txt)
#     compile at -O0, in about 60% of the time (WAGER_TEMPLATE_HEAVY_OPTIONS
#     overrides it; empty: none);
#   - each library is a unity build, eight sources a translation unit, so the
#     templates they share compile once a batch (WAGER_TEST_UNITY_BUILD=OFF:
#     one per source);
#   - executables link with lld, a quarter of ld.bfd's time here
#     (WAGER_TEST_LINK_FLAGS overrides -fuse-ld=lld).
# After the suite, the four libFuzzer targets (fuzz/) run for
# WAGER_FUZZ_SECONDS in all (default 60, a quarter each, one per core at a
# time; 0 skips them), built with clang in build-fuzz/.
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
  -DWAGER_TEMPLATE_HEAVY_OPTIONS="${WAGER_TEMPLATE_HEAVY_OPTIONS--O0}" \
  -DCMAKE_EXE_LINKER_FLAGS="${WAGER_TEST_LINK_FLAGS--fuse-ld=lld}" \
  -DCMAKE_UNITY_BUILD="${WAGER_TEST_UNITY_BUILD:-ON}" -DCMAKE_UNITY_BUILD_BATCH_SIZE=8 \
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

# The libFuzzer targets (fuzz/CMakeLists.txt), built with clang in their own
# tree; each runs from its committed seeds (fuzz/corpus/<target>/) for its
# share of WAGER_FUZZ_SECONDS, so adding a target does not make CI slower.
# New inputs go to the build tree, never into fuzz/corpus; a crash, a leak,
# a sanitizer finding or a broken property stops that target and fails the
# script, leaving the input in $fuzz_dir/<target>-crash-* (or -leak-,
# -timeout-, -oom-).
fuzz_seconds=${WAGER_FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
  start=$(date +%s)
  fuzz_dir=${WAGER_FUZZ_BUILD_DIR:-build-fuzz}
  fuzz_targets=(api_request feed_line ws_message router)
  CXX=clang++-14 cmake -S . -B "$fuzz_dir" -G Ninja \
    -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" \
    -DWAGER_FUZZ=ON -DWAGER_BUILD_TESTS=OFF -DWAGER_BUILD_EXAMPLES=OFF \
    -DWAGER_BUILD_BENCH=OFF >/dev/null
  ninja -C "$fuzz_dir" "${fuzz_targets[@]/#/wager_fuzz_}"
  # At least a second each: libFuzzer takes 0 as "no limit".
  per_target=$(( fuzz_seconds / ${#fuzz_targets[@]} ))
  [ "$per_target" -gt 0 ] || per_target=1
  # One target per core at a time, each writing to its own log, shown
  # whole when it fails and as its final stats when it passes.
  fuzz_one() {
    mkdir -p "$fuzz_dir/corpus/$1"
    "$fuzz_dir/fuzz/wager_fuzz_$1" -max_total_time="$per_target" \
      -timeout=30 -print_final_stats=1 -artifact_prefix="$fuzz_dir/$1-" \
      "$fuzz_dir/corpus/$1" "fuzz/corpus/$1" >"$fuzz_dir/$1.log" 2>&1
  }
  fuzz_failed=0
  for (( i = 0; i < ${#fuzz_targets[@]}; i += jobs )); do
    batch=("${fuzz_targets[@]:i:jobs}")
    pids=()
    for target in "${batch[@]}"; do
      fuzz_one "$target" &
      pids+=($!)
    done
    for k in "${!batch[@]}"; do
      target=${batch[$k]}
      if wait "${pids[$k]}"; then
        echo "fuzz $target: passed"
        grep -E '^(Done|stat::)' "$fuzz_dir/$target.log" || true
      else
        echo "fuzz $target: FAILED, its log ($fuzz_dir/$target.log):"
        cat "$fuzz_dir/$target.log"
        fuzz_failed=1
      fi
    done
  done
  [ "$fuzz_failed" -eq 0 ] || exit 1
  echo "fuzz: $(( $(date +%s) - start )) s"
fi
