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

// The worker, relative to the build tree (test::binary() makes the path).
inline constexpr const char* journal_worker = "tests/persistence/wager_persistence_journal_worker";

} // namespace wager::test
