#!/usr/bin/env bash
# Cluster benchmarks on the local machine: failover after kill -9, drain
# migration on SIGTERM, and bets/s through three nodes against one. Nodes
# share one --data-dir (one host, one journal), as examples/cluster does.
# One JSON line per measurement on stdout (shared/WORKLOAD.md); progress on
# stderr. Figures are reported, never asserted.
#
#   bench/cluster/cluster_bench.sh [options]
#
#   --bin DIR          wager-node and wagerctl (default build/apps)
#   --bench-bin DIR    wager-bench (default build/bench)
#   --work DIR         data dirs, tokens and node logs (default a fresh /tmp dir)
#   --only LIST        failover,drain,throughput (default all three)
#   --failover-users N users (sessions, funded wallets) for failover (5000)
#   --drain-users N    users for drain (100000)
#   --sample K         the victim's wallets polled until served (500)
#   --load C           closed-loop balance reads during failover and drain (16)
#   --clients LIST     throughput: connections per configuration (16,64)
#   --seconds S        throughput: seconds per configuration (10)
#   --wallets N        throughput: users over HTTP, two PBKDF2 hashes each (128)
#   --quick            small everything (a smoke run: the lines appear, verify passes)
#   --keep             leave the work dir behind
#   --log-level L      the nodes' log level, into WORK/NAME.log (default warn)
#
# Exit status: 0 every line was produced and every verify passed; 1 a
# measurement failed or an invariant did not hold; 2 bad usage.
set -euo pipefail

bin=build/apps
bench_bin=build/bench
work=
only=failover,drain,throughput
failover_users=5000
drain_users=100000
sample=500
load=16
clients=16,64
seconds=10
wallets=128
keep=0
probe_seconds=120
log_level=warn
while [[ $# -gt 0 ]]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --bench-bin) bench_bin=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --only) only=$2; shift 2 ;;
    --failover-users) failover_users=$2; shift 2 ;;
    --drain-users) drain_users=$2; shift 2 ;;
    --sample) sample=$2; shift 2 ;;
    --load) load=$2; shift 2 ;;
    --clients) clients=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    --wallets) wallets=$2; shift 2 ;;
    --quick) failover_users=300; drain_users=600; sample=50; load=4; clients=4; seconds=2
             wallets=4; probe_seconds=30; shift ;;
    --keep) keep=1; shift ;;
    --log-level) log_level=$2; shift 2 ;;
    *) echo "cluster_bench.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
node_bin=$bin/wager-node
ctl_bin=$bin/wagerctl
wb=$bench_bin/wager-bench
for b in "$node_bin" "$ctl_bin" "$wb"; do
  [[ -x $b ]] || { echo "cluster_bench.sh: no $b (build wager-node wagerctl wager-bench)" >&2; exit 2; }
done
command -v jq >/dev/null || { echo "cluster_bench.sh: needs jq" >&2; exit 2; }
command -v curl >/dev/null || { echo "cluster_bench.sh: needs curl" >&2; exit 2; }
[[ -n $work ]] || work=$(mktemp -d /tmp/wager-cluster-bench.XXXXXX)
mkdir -p "$work"
admin_key=cluster-bench-key
export WAGER_CLUSTER_SECRET=$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')
status=0

declare -A pid http
declare -A running # pids of the nodes started here and not yet waited for
log() { echo "cluster_bench: $*" >&2; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg | jq -R -c 'split(" ") | map(tonumber)'; }

# reap PID: its exit code in $reaped.
reap() {
  reaped=0
  wait "$1" || reaped=$?
  unset "running[$1]"
}

cleanup() {
  local p
  for p in "${!running[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${!running[@]}"; do wait "$p" 2>/dev/null || true; done
  ((keep)) || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start NAME DATA [ARGS...]: a node whose ready line sets http[NAME]; its
# stderr and later stdout go to $work/NAME.log.
start() {
  local name=$1 data=$2; shift 2
  local fifo=$work/$name.out
  rm -f "$fifo"; mkfifo "$fifo"
  "$node_bin" --data-dir "$data" --node-id "$name" --http-port 0 --feed-port -1 \
    --admin-key "$admin_key" --log-level "$log_level" "$@" >"$fifo" 2>>"$work/$name.log" &
  pid[$name]=$!
  running[$!]=1
  local fd line
  exec {fd}<"$fifo"
  if ! IFS= read -r -t 120 -u "$fd" line; then
    log "node $name did not start (see $work/$name.log)"
    return 1
  fi
  http[$name]=$(jq -r .http <<<"$line")
  cluster_addr=$(jq -r .cluster <<<"$line")
  cat <&"$fd" >>"$work/$name.log" &
  exec {fd}<&-
  log "$name pid ${pid[$name]} http ${http[$name]}"
}

# start_cluster DATA: n1, n2, n3 on one data dir, until each sees all three up.
start_cluster() {
  local data=$1
  start n1 "$data" --cluster-port 0
  local seed=$cluster_addr
  start n2 "$data" --cluster-port 0 --seeds "$seed"
  start n3 "$data" --cluster-port 0 --seeds "$seed"
  local deadline=$((SECONDS + 60)) id
  while :; do
    local ok=1
    for id in n1 n2 n3; do
      local up
      up=$(curl -sf -H "Authorization: Bearer $admin_key" "http://${http[$id]}/v1/admin/health" \
           | jq '[.members[] | select(.status == "up")] | length' 2>/dev/null) || up=0
      [[ $up == 3 ]] || ok=0
    done
    ((ok)) && break
    ((SECONDS < deadline)) || { log "the three nodes did not see each other up in 60 s"; return 1; }
    sleep 0.2
  done
}

# stop_nodes NAME...: SIGTERM, wait, and the exit codes as {"NAME":code} in
# $exits (not in a subshell: only this shell can wait for its children).
stop_nodes() {
  local name
  exits='{}'
  for name in "$@"; do kill -TERM "${pid[$name]}" 2>/dev/null || true; done
  for name in "$@"; do
    reap "${pid[$name]}"
    exits=$(jq -c --arg n "$name" --argjson rc "$reaped" '. + {($n): $rc}' <<<"$exits")
  done
}

# verify DATA: wagerctl verify's verdict and its first line.
verify() {
  local out rc=0
  out=$("$ctl_bin" --data-dir "$1" verify 2>&1) || rc=$?
  jq -c -n --argjson ok "$([[ $rc == 0 ]] && echo true || echo false)" --arg out "$out" \
    '{wagerctl_verify_ok: $ok, wagerctl_verify: ($out | split("\n") | map(select(length > 0)) | .[0:3])}'
}

# failover or drain: seed, start, make live, signal n3, report.
probe() {
  local kind=$1 users=$2 signal
  [[ $kind == failover ]] && signal=kill || signal=term
  local data=$work/$kind/data tokens=$work/$kind/tokens
  mkdir -p "$data"
  log "$kind: seeding $users users"
  local seed_line live_line probe_line
  seed_line=$("$wb" --mode cluster-seed --data-dir "$data" --wallets "$users" --tokens-file "$tokens")
  log "$kind: seeded: $seed_line"
  start_cluster "$data"
  local all="http://${http[n1]},http://${http[n2]},http://${http[n3]}"
  log "$kind: making $users sessions and wallets live"
  live_line=$("$wb" --mode cluster-live --url "$all" --admin-key "$admin_key" \
              --tokens-file "$tokens" --setup-connections 32 \
              --node-pid "${pid[n1]},${pid[n2]},${pid[n3]}") || { log "$kind: live step failed: $live_line"; status=1; }
  log "$kind: live: $live_line"
  local load_before
  load_before=$(loadavg)
  log "$kind: SIG${signal^^} to n3"
  local prc=0
  probe_line=$("$wb" --mode cluster-probe --signal "$signal" \
               --url "http://${http[n1]},http://${http[n2]}" --admin-key "$admin_key" \
               --tokens-file "$tokens" --members n1,n2,n3 --victim n3 \
               --victim-url "http://${http[n3]}" --victim-pid "${pid[n3]}" \
               --sample "$sample" --load-connections "$load" --seconds "$probe_seconds" \
               --node-pid "${pid[n1]},${pid[n2]}" --data-dir "$data") || prc=$?
  local vrc
  reap "${pid[n3]}"; vrc=$reaped
  log "$kind: n3 exited $vrc"
  local load_after ver
  load_after=$(loadavg)
  stop_nodes n1 n2
  ver=$(verify "$data")
  if [[ -z $probe_line ]] || ((prc == 2)); then
    log "$kind: the probe could not run"
    status=1
    return
  fi
  ((prc == 0)) || status=1
  jq -c --argjson seed "$seed_line" --argjson live "${live_line:-null}" --argjson ver "$ver" \
     --argjson vrc "$vrc" --argjson exits "$exits" --argjson lb "$load_before" \
     --argjson la "$load_after" --arg sig "$signal" '
    . + {victim_exit_code: $vrc, survivors_exit_codes: $exits,
         setup: {seed_seconds: $seed.seconds, live_seconds: $live.seconds,
                 live_failed: $live.failed, entities_live: $live.entities,
                 nodes_rss_mb_live: $live.rss_mb},
         config: {users: $seed.users, nodes: 3, data_dir: "shared", kill: $sig}}
      + $ver + {invariants_ok: $ver.wagerctl_verify_ok, load_before: $lb, load_after: $la}' \
     <<<"$probe_line"
  [[ $(jq -r .wagerctl_verify_ok <<<"$ver") == true ]] || status=1
}

# throughput NODES: the match-day workload over HTTP through 1 or 3 nodes.
throughput() {
  local n=$1 data=$work/throughput-$1/data
  mkdir -p "$data"
  local urls pids
  if ((n == 1)); then
    start n1 "$data"
    urls="http://${http[n1]}"; pids=${pid[n1]}
  else
    start_cluster "$data"
    urls="http://${http[n1]},http://${http[n2]},http://${http[n3]}"
    pids="${pid[n1]},${pid[n2]},${pid[n3]}"
  fi
  log "throughput: $n node(s), clients $clients, $seconds s each"
  local lb lines brc=0
  lb=$(loadavg)
  lines=$("$wb" --mode http --url "$urls" --admin-key "$admin_key" --data-dir "$data" \
          --node-pid "$pids" --clients "$clients" --seconds "$seconds" --wallets "$wallets") || brc=$?
  local la ver names=n1
  la=$(loadavg)
  ((n == 1)) || names="n1 n2 n3"
  # shellcheck disable=SC2086
  stop_nodes $names
  ver=$(verify "$data")
  if [[ -z $lines ]]; then
    log "throughput: wager-bench produced nothing (exit $brc)"
    status=1
    return
  fi
  ((brc == 0)) || status=1
  [[ $(jq -r .wagerctl_verify_ok <<<"$ver") == true ]] || status=1
  while IFS= read -r line; do
    jq -c --argjson ver "$ver" --argjson exits "$exits" --argjson lb "$lb" --argjson la "$la" \
       --argjson n "$n" '
      . + {mode: "cluster-throughput", wager_bench_mode: .mode, config: {nodes: $n, data_dir: (if $n > 1 then "shared" else "own" end),
                                            cluster_port: ($n > 1)},
        nodes_exit_codes: $exits}
        + $ver + {invariants_ok: (.invariants_ok and $ver.wagerctl_verify_ok),
                  load_before: $lb, load_after: $la}' <<<"$line"
  done <<<"$lines"
}

IFS=, read -ra steps <<<"$only"
for step in "${steps[@]}"; do
  case $step in
    failover) probe failover "$failover_users" ;;
    drain) probe drain "$drain_users" ;;
    throughput) throughput 1; throughput 3 ;;
    *) log "unknown step $step"; exit 2 ;;
  esac
done
exit $status
