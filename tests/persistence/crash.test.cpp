// Kill -9 a process appending under load, again and again, and check after
// every kill that nothing it acknowledged was lost or torn.

#include "journal_support.hpp"
#include "journal_worker_protocol.hpp"

#include "wager/persistence/backup.hpp"

#include "support/process.hpp"
#include "support/seed.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <map>
#include <random>
#include <sstream>

using namespace wager;
using namespace wager::test;

namespace {

constexpr auto line_deadline = std::chrono::seconds{20};

// Checks every event against the worker's payload function and notes each
// stream's last seq.
class worker_events : public journal_visitor {
public:
  std::map<std::string, uint64_t> last_seq;

  void on_events(const std::string& stream, const std::vector<recorded_event>& page,
                 verify_report& report) override {
    for (auto& e : page) {
      auto amount = e.data.json().as_object().at("amount").to_number<int64_t>();
      if (amount != expected_amount(stream, e.seq))
        report.add_problem(stream + ": event " + std::to_string(e.seq) + " has the wrong payload");
      last_seq[stream] = e.seq;
    }
  }
  void finish(verify_report&) override {}
};

void note_ack(const std::string& line, std::map<std::string, uint64_t>& acked, uint64_t& acks) {
  std::istringstream in{line};
  std::string word, stream;
  uint64_t seq = 0;
  in >> word >> stream >> seq;
  REQUIRE_MESSAGE(word == "ack", "unexpected worker output: " << line);
  auto& last = acked[stream];
  CHECK_MESSAGE(seq > last, "acks of " << stream << " out of order");
  last = std::max(last, seq);
  ++acks;
}

void check_nothing_acknowledged_is_lost(const std::string& path,
                                        const std::map<std::string, uint64_t>& acked) {
  worker_events events;
  auto report = verify_journal(path, &events);
  REQUIRE_MESSAGE(report, message_of(report.error()));
  for (auto& problem : report->problems)
    FAIL_CHECK(problem);
  CHECK(report->ok());
  auto j = open_or_fail(options_at(path));
  for (auto& [stream, seq] : acked) {
    CAPTURE(stream);
    CHECK(events.last_seq[stream] >= seq);
    // The request result went in with the events, in the same transaction.
    auto request = j->find_request(stream, "r" + std::to_string(seq));
    REQUIRE(request);
    CHECK(request->has_value());
  }
}

} // namespace

TEST_CASE("every acknowledged append survives SIGKILL at random moments") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto seed = seed_for_run();
  INFO("WAGER_SEED=" << seed);
  std::mt19937_64 random{seed};
  std::map<std::string, uint64_t> acked;
  uint64_t acks = 0;
  constexpr int kills = 24;
  for (int kill = 0; kill < kills; ++kill) {
    CAPTURE(kill);
    // 16 streams with 4 appends in flight each: batches of tens of appends.
    child_process worker{binary(journal_worker), {"load", path, "16", "4", "60000"}};
    auto ready = worker.read_line(line_deadline);
    REQUIRE_MESSAGE(ready == std::optional<std::string>{"ready"}, worker.drain_stderr());
    // Some kills land while the worker is still starting its appends.
    auto acks_before_kill = std::uniform_int_distribution<int>{0, 400}(random);
    for (int i = 0; i < acks_before_kill; ++i) {
      auto line = worker.read_line(line_deadline);
      REQUIRE_MESSAGE(line, worker.drain_stderr());
      note_ack(*line, acked, acks);
    }
    worker.signal(SIGKILL);
    // Lines already in the pipe were acknowledged before the kill too.
    while (auto line = worker.read_line(line_deadline))
      note_ack(*line, acked, acks);
    REQUIRE(worker.wait(line_deadline) == 128 + SIGKILL);
    check_nothing_acknowledged_is_lost(path, acked);
  }
  MESSAGE(acks << " acknowledged appends over " << kills << " kills");
  CHECK(acked.size() == 16);
}
