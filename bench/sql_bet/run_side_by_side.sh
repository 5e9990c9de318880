#!/usr/bin/env bash
# Wager against the same bet in plain SQL, side by side in one run: for each
# client count, `wager-bench --mode inproc` and then `wager_bench_sql_bet`
# (shared/WORKLOAD.md, the same seed), then a line with the ratio of their
# accepted bets per second. Builds nothing.
#
#   bench/sql_bet/run_side_by_side.sh BUILD_DIR [--clients 64[,N...]] [--seconds 10] [--seed 42]
#
# BUILD_DIR is a tree with WAGER_BUILD_BENCH=ON where wager-bench and
# wager_bench_sql_bet are built (BUILD_DIR/bench/...). Each program's JSON
# line goes to stdout as it prints it, then
#   {"mode":"side_by_side","clients":C,"wager_accepted_per_s":W,
#    "sql_accepted_per_s":S,"ratio_wager_to_sql":W/S,"invariants_ok":...}
# Needs jq.
#
# Exit status: 0 every run held its invariants; 1 one did not (or a program
# failed); 2 bad usage.
set -euo pipefail

usage() {
  echo "usage: run_side_by_side.sh BUILD_DIR [--clients 64[,N...]] [--seconds 10] [--seed 42]" >&2
  exit 2
}

[[ $# -ge 1 ]] || usage
build=$1
shift
clients=64
seconds=10
seed=42
while [[ $# -gt 0 ]]; do
  case "$1" in
    --clients) [[ $# -ge 2 ]] || usage; clients=$2; shift 2 ;;
    --seconds) [[ $# -ge 2 ]] || usage; seconds=$2; shift 2 ;;
    --seed) [[ $# -ge 2 ]] || usage; seed=$2; shift 2 ;;
    *) echo "run_side_by_side.sh: unknown option $1" >&2; usage ;;
  esac
done

wager=$build/bench/wager-bench
sql=$build/bench/wager_bench_sql_bet
for program in "$wager" "$sql"; do
  [[ -x $program ]] || { echo "run_side_by_side.sh: $program is not built" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "run_side_by_side.sh: needs jq" >&2; exit 2; }

status=0
IFS=, read -ra counts <<<"$clients"
for c in "${counts[@]}"; do
  w=$("$wager" --mode inproc --clients "$c" --seconds "$seconds" --seed "$seed") || status=1
  echo "$w"
  s=$("$sql" --clients "$c" --seconds "$seconds" --seed "$seed") || status=1
  echo "$s"
  jq -cn --argjson c "$c" --argjson w "${w:-null}" --argjson s "${s:-null}" '{
      mode: "side_by_side",
      clients: $c,
      wager_accepted_per_s: $w.accepted_per_s,
      sql_accepted_per_s: $s.accepted_per_s,
      ratio_wager_to_sql: (if ($w.accepted_per_s != null and ($s.accepted_per_s // 0) > 0)
                           then ($w.accepted_per_s / $s.accepted_per_s * 1000 | round / 1000)
                           else null end),
      invariants_ok: (($w.invariants_ok // false) and ($s.invariants_ok // false))
    }' || status=1
done
exit "$status"
