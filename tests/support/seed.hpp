#pragma once

// Seeds for randomised tests, replayable. A suite that draws its choices
// from a seed takes it from here: WAGER_SEED=<n> in the environment replays
// run <n>; without it each run draws a fresh seed. Either way the seed goes
// to stderr before the test uses it, so a run that aborts or times out has
// named it too.

#include <cstdint>
#include <optional>
#include <string_view>

namespace wager::test {

// The seed WAGER_SEED asks for, or nullopt when it is unset or empty.
// Throws std::invalid_argument, naming the variable and its value, when it is
// not a decimal number that fits in 64 bits: a test run with a mistyped seed
// fails instead of running with another one.
std::optional<uint64_t> seed_from_environment();

// 64 bits from std::random_device.
uint64_t fresh_seed();

// "seed: <n> (replay with WAGER_SEED=<n>)" on stderr; `what` (a cycle, a
// part of the test) goes in front when not empty.
void print_seed(uint64_t seed, std::string_view what = {});

// WAGER_SEED when set, else a fresh seed; printed.
uint64_t seed_for_run();

} // namespace wager::test
