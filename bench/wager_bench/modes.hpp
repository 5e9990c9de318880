#pragma once

// The modes of wager-bench; each prints its JSON lines to stdout and returns
// the exit status: 0 done and every invariant held, 1 an invariant failed,
// 2 the run could not be made.

#include "workload.hpp"

namespace wager::bench {

int run_inproc(const bench_options& o);  // inproc_mode.cpp
int run_wallets(const bench_options& o); // inproc_mode.cpp
int run_http(const bench_options& o);    // http_mode.cpp

} // namespace wager::bench
