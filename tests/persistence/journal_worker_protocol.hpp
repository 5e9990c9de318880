#pragma once

// What the journal worker (journal_worker.cpp) and the tests that drive it
// agree on.

#include <cstdint>
#include <string>
#include <string_view>

namespace wager::test {

// The amount of the event at `seq` of `stream`, so every event the worker
// wrote can be checked without the worker telling which it wrote.
inline int64_t expected_amount(std::string_view stream, uint64_t seq) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : stream)
    h = (h ^ c) * 1099511628211ull;
  h = (h ^ seq) * 1099511628211ull;
  return static_cast<int64_t>(h % 100000);
}

// How many events the worker's append after `seq` carries (1 to 3), so the
// parent knows where each append of a stream ends: an append is whole or
// absent, never cut.
inline uint64_t events_in_append_after(uint64_t seq) {
  return 1 + seq % 3;
}

// The request id of the append that ends at `last_seq`, and its stored result.
inline std::string request_id_of(uint64_t last_seq) {
  return "r" + std::to_string(last_seq);
}
inline std::string request_result_of(uint64_t last_seq) {
  return "{\"seq\":" + std::to_string(last_seq) + "}";
}

// The exit status of a worker's child that simulated a power loss
// (power_loss mode).
inline constexpr int power_loss_exit_code = 86;

// The seed of the `loss`-th power loss of a run seeded with `seed`
// (splitmix64), so one seed replays a whole run of losses.
inline uint64_t loss_seed(uint64_t seed, int loss) {
  uint64_t x = seed + static_cast<uint64_t>(loss) + 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The worker, relative to the build tree (test::binary() makes the path).
inline constexpr const char* journal_worker = "tests/persistence/wager_persistence_journal_worker";

} // namespace wager::test
