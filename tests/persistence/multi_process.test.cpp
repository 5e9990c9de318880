// Nodes on one host share one journal file: two processes appending to the
// same entity must never both win a sequence number.

#include "journal_support.hpp"
#include "journal_worker_protocol.hpp"

#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <set>
#include <sstream>

using namespace wager;
using namespace wager::test;

namespace {

struct claims {
  std::set<uint64_t> won;
  uint64_t lost = 0;
};

// Reads a contending worker's lines until it exits.
void collect(child_process& worker, claims& out) {
  while (auto line = worker.read_line(std::chrono::seconds{60})) {
    std::istringstream in{*line};
    std::string word;
    uint64_t seq = 0;
    in >> word >> seq;
    if (word == "won")
      CHECK_MESSAGE(out.won.insert(seq).second, "seq " << seq << " won twice by one writer");
    else if (word == "lost")
      ++out.lost;
    else
      FAIL_CHECK("unexpected worker output: " << *line);
  }
}

} // namespace

TEST_CASE("two processes appending to one entity: exactly one wins each sequence number") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  open_or_fail(options_at(path)).reset(); // created once, before the race
  constexpr uint64_t total = 1500;
  child_process a{binary(journal_worker), {"contend", path, "wallet/shared", "1500", "a"}};
  child_process b{binary(journal_worker), {"contend", path, "wallet/shared", "1500", "b"}};
  REQUIRE_MESSAGE(a.read_line(std::chrono::seconds{20}) == std::optional<std::string>{"ready"},
                  a.drain_stderr());
  REQUIRE_MESSAGE(b.read_line(std::chrono::seconds{20}) == std::optional<std::string>{"ready"},
                  b.drain_stderr());
  claims by_a, by_b;
  // Both pipes are read as the workers go (one thread each), so neither
  // worker ever blocks on a full pipe.
  std::thread reader_b{[&] { collect(b, by_b); }};
  collect(a, by_a);
  reader_b.join();
  REQUIRE_MESSAGE(a.wait(std::chrono::seconds{30}) == 0, a.drain_stderr());
  REQUIRE_MESSAGE(b.wait(std::chrono::seconds{30}) == 0, b.drain_stderr());

  // Every seq 1..total was won by exactly one of them...
  for (uint64_t seq = 1; seq <= total; ++seq) {
    CAPTURE(seq);
    CHECK(by_a.won.count(seq) + by_b.won.count(seq) == 1);
  }
  CHECK(by_a.won.size() + by_b.won.size() == total);
  // ...and the journal holds the winner's event at it.
  auto j = open_or_fail(options_at(path));
  uint64_t seq = 0;
  while (seq < total) {
    auto page = j->read_events("wallet/shared", seq + 1, 1000);
    REQUIRE(page);
    REQUIRE_FALSE(page->empty());
    for (auto& e : *page) {
      auto value = e.data.json();
      auto& o = value.as_object();
      auto writer = std::string{o.at("writer").as_string()};
      CHECK(o.at("seq").to_number<uint64_t>() == e.seq);
      CHECK((writer == "a" ? by_a : by_b).won.count(e.seq) == 1);
      seq = e.seq;
    }
  }
  CHECK(*j->last_seq("wallet/shared") == total);
  // Both really raced: each won some, and someone lost some.
  MESSAGE("a won " << by_a.won.size() << ", b won " << by_b.won.size() << ", conflicts "
                   << by_a.lost + by_b.lost);
  CHECK_FALSE(by_a.won.empty());
  CHECK_FALSE(by_b.won.empty());
  CHECK(by_a.lost + by_b.lost > 0);
}
