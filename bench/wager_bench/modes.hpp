#pragma once

// The modes of wager-bench; each prints its JSON lines to stdout and returns
// the exit status: 0 done and every invariant held, 1 an invariant failed,
// 2 the run could not be made.

#include "workload.hpp"

namespace wager::bench {

int run_inproc(const bench_options& o);  // inproc_mode.cpp
int run_wallets(const bench_options& o); // inproc_mode.cpp
int run_http(const bench_options& o);    // http_mode.cpp

// bench/cluster/cluster_bench.sh's steps (cluster_mode.cpp): users with
// sessions and funded wallets written into a data dir before the nodes start;
// every wallet made live through the nodes; a node killed or drained while
// its wallets are polled through the others.
int run_cluster_seed(const bench_options& o);
int run_cluster_live(const bench_options& o);
int run_cluster_probe(const bench_options& o);

} // namespace wager::bench
