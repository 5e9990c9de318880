// Power loss, not only process death. A worker appends under load from
// several threads and loses power at a random write or sync
// (power_loss_vfs.hpp): each file's writes since its last sync are dropped,
// or all kept but the last one torn, and the process exits at once. After
// every loss the journal, opened as a restarting node would, must hold every
// acknowledged append whole, no other append in part, contiguous seqs, and
// pass verify_journal. A kill -9 keeps the page cache, so crash.test.cpp
// would pass with fsync off; this suite must not, and its last case checks
// that it does not.
//
// Losses come in cycles: a fresh journal, then several losses in a row on
// the same files, so that later losses strike during and after the recovery
// of earlier ones. Each check runs on a copy, leaving the files as the loss
// left them for the next worker to recover. A failing cycle prints its seed:
// WAGER_SEED=<seed> runs that cycle alone, with the same loss points and
// modes (thread timing is not replayed).

#include "journal_support.hpp"
#include "journal_worker_protocol.hpp"

#include "wager/persistence/backup.hpp"

#include "support/process.hpp"
#include "support/seed.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <csignal>
#include <filesystem>
#include <map>
#include <sstream>

using namespace wager;
using namespace wager::test;

namespace {

namespace fs = std::filesystem;

constexpr auto line_deadline = std::chrono::seconds{30};

// 25 cycles of 8 losses: the 200 losses of a run.
constexpr int cycles = 25;
constexpr int losses_per_cycle = 8;

// A loss strikes at a write, truncation or sync drawn from [1, ops_max].
// In the row layout a commit writes tens of WAL frames (two writes each) and
// one sync, and the worker checkpoints every 100 pages of WAL, so losses land
// in commits, in checkpoints and in recoveries; 700 keeps a loss to about 150
// acks. A log-layout commit appends one frame, a few pages, so the same 700
// would be about ten times the acks (and the checking time); 250 is still
// more than the writes of the 100 WAL pages that start the worker's
// checkpoint.
uint64_t ops_max() { return test_layout() == journal_layout::log ? 250 : 700; }

// What a check found wrong after a loss.
struct findings {
  std::vector<std::string> lost;    // acknowledged appends not (wholly) there
  std::vector<std::string> partial; // appends there in part
  std::vector<std::string> corrupt; // verify_journal's problems, a journal that will not open
  bool clean() const { return lost.empty() && partial.empty() && corrupt.empty(); }
};

std::ostream& operator<<(std::ostream& out, const findings& f) {
  for (auto* list : {&f.lost, &f.partial, &f.corrupt})
    for (size_t i = 0; i < list->size() && i < 10; ++i)
      out << "\n  " << (*list)[i];
  return out;
}

// Checks every event's payload and notes each stream's last seq.
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

// The appends of one stream with seqs after `from` (the end of an append),
// each there whole (its events and its request result) or not at all,
// ending exactly at `last`.
void check_appends(journal& j, const std::string& stream, uint64_t from, uint64_t last,
                   findings& f) {
  uint64_t seq = 0;
  while (seq < from)
    seq += events_in_append_after(seq);
  for (;;) {
    auto end = seq + events_in_append_after(seq);
    auto name = stream + " " + std::to_string(seq + 1) + ".." + std::to_string(end);
    auto request = j.find_request(stream, request_id_of(end));
    if (!request)
      f.corrupt.push_back(name + ": " + message_of(request.error()));
    else if (end <= last && (!*request || (*request)->result != request_result_of(end)))
      f.partial.push_back(name + ": events there, request result not");
    else if (end > last && *request)
      f.partial.push_back(name + ": request result there, events not");
    if (end > last) {
      if (seq != last)
        f.partial.push_back(name + ": the stream ends at " + std::to_string(last));
      return;
    }
    seq = end;
  }
}

// `checked` holds each stream's last seq at the previous check: appends up
// to there were found whole, and must all still be there. Their request
// results are looked up again only with `whole_history` (once a cycle);
// verify_journal checks every row each time.
findings check_journal(const std::string& path, const std::map<std::string, uint64_t>& acked,
                       std::map<std::string, uint64_t>& checked, bool whole_history) {
  findings f;
  worker_events events;
  auto report = verify_journal(path, &events);
  if (!report) {
    f.corrupt.push_back("verify_journal: " + message_of(report.error()));
    return f;
  }
  for (auto& problem : report->problems)
    f.corrupt.push_back(problem);
  auto options = options_at(path);
  options.reader_threads = 1; // only synchronous reads here
  options.read_connections_max = 1;
  auto j = open_sqlite_journal(options);
  if (!j) {
    f.corrupt.push_back("open: " + message_of(j.error()));
    return f;
  }
  for (auto& [stream, seq] : acked)
    if (events.last_seq[stream] < seq)
      f.lost.push_back(stream + ": acknowledged up to " + std::to_string(seq) +
                       ", the journal ends at " + std::to_string(events.last_seq[stream]));
  for (auto& [stream, last] : events.last_seq) {
    auto before = checked[stream];
    if (last < before)
      f.lost.push_back(stream + ": ended at " + std::to_string(before) +
                       " after an earlier loss, now at " + std::to_string(last));
    check_appends(**j, stream, whole_history ? 0 : std::min(before, last), last, f);
    checked[stream] = last;
  }
  return f;
}

// The journal's files as a loss left them, copied for checking: opening the
// journal recovers and checkpoints it, which the next worker must do itself.
std::string copy_for_check(const fs::path& dir, const std::string& path) {
  auto copy = dir / "check";
  fs::remove_all(copy);
  fs::create_directory(copy);
  for (auto suffix : {"", "-wal"})
    if (fs::exists(path + suffix))
      fs::copy_file(path + suffix, (copy / ("journal.db" + std::string{suffix})).string());
  return (copy / "journal.db").string();
}

struct loss_outcome {
  uint64_t acks = 0;
  std::string armed; // "<op> <mode>", as the worker drew them
};

// Reads the worker's lines up to the end of its next power loss, noting
// what it acknowledged. Lines already in the pipe at the loss were
// acknowledged before it.
loss_outcome read_until_lost(child_process& worker, std::map<std::string, uint64_t>& acked) {
  loss_outcome out;
  for (;;) {
    auto line = worker.read_line(line_deadline);
    REQUIRE_MESSAGE(line, "the worker stopped before its power loss: " << worker.drain_stderr());
    std::istringstream in{*line};
    std::string word, stream;
    uint64_t seq = 0;
    in >> word;
    if (word == "lost")
      return out;
    if (word == "armed") {
      std::getline(in >> std::ws, out.armed);
    } else if (word == "ack") {
      in >> stream >> seq;
      auto& last = acked[stream];
      CHECK_MESSAGE(seq > last, "acks of " << stream << " out of order");
      last = std::max(last, seq);
      ++out.acks;
    } else {
      REQUIRE_MESSAGE(word == "ready", "unexpected worker output: " << *line);
    }
  }
}

struct cycle_outcome {
  int losses = 0;
  uint64_t acks = 0;
  findings found;        // at the first loss after which the check failed
  std::string failed_at; // which loss, and how it was armed
};

// A fresh journal, then losses in a row on it, each checked; stops at the
// first check that fails.
cycle_outcome run_cycle(uint64_t seed, bool sync) {
  cycle_outcome out;
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  open_or_fail(options_at(path)); // created and closed: an empty journal, synced
  std::map<std::string, uint64_t> acked, checked;
  child_process worker{binary(journal_worker),
                       {"power_loss", path, std::to_string(seed), std::to_string(losses_per_cycle),
                        std::to_string(ops_max()), sync ? "on" : "off"}};
  for (int loss = 0; loss < losses_per_cycle; ++loss) {
    if (loss > 0)
      worker.signal(SIGUSR1);
    auto outcome = read_until_lost(worker, acked);
    ++out.losses;
    out.acks += outcome.acks;
    auto found = check_journal(copy_for_check(dir.path(), path), acked, checked,
                               loss == losses_per_cycle - 1);
    if (!found.clean()) {
      out.found = std::move(found);
      out.failed_at = "loss " + std::to_string(loss) + " (armed " + outcome.armed + ", " +
                      std::to_string(outcome.acks) + " acks)";
      return out;
    }
  }
  REQUIRE(worker.wait(line_deadline) == std::optional<int>{0});
  return out;
}

} // namespace

TEST_CASE("every acknowledged append survives power loss at random writes, whole, and "
          "nothing else is there in part") {
  auto replay = seed_from_environment();
  auto first = replay ? *replay : fresh_seed();
  int runs = replay ? 1 : cycles;
  int losses = 0;
  uint64_t acks = 0;
  for (int cycle = 0; cycle < runs; ++cycle) {
    auto seed = replay ? *replay : loss_seed(first, cycle);
    print_seed(seed, "cycle " + std::to_string(cycle));
    INFO("WAGER_SEED=" << seed);
    auto outcome = run_cycle(seed, true);
    losses += outcome.losses;
    acks += outcome.acks;
    if (!outcome.found.clean())
      FAIL_CHECK("WAGER_SEED=" << seed << ": after " << outcome.failed_at << outcome.found);
  }
  MESSAGE(acks << " acknowledged appends over " << losses << " power losses");
  if (!replay)
    CHECK(losses >= 200);
}

TEST_CASE("with syncs ignored the check finds acknowledged appends lost") {
  // The same harness over a disk that ignores fsync: the test above must be
  // able to fail. Each cycle's first drop loss after an ack loses it.
  auto replay = seed_from_environment();
  auto first = replay ? *replay : fresh_seed();
  int losses = 0;
  for (int cycle = 0; cycle < (replay ? 1 : cycles) && losses < 200; ++cycle) {
    auto seed = replay ? *replay : loss_seed(first, cycle);
    print_seed(seed, "cycle " + std::to_string(cycle));
    INFO("WAGER_SEED=" << seed);
    auto outcome = run_cycle(seed, false);
    losses += outcome.losses;
    if (!outcome.found.lost.empty()) {
      MESSAGE("found after " << losses << " losses (WAGER_SEED=" << seed << ", "
                             << outcome.failed_at << ")" << outcome.found);
      return;
    }
  }
  FAIL("no acknowledged append was lost in " << losses << " losses with syncs ignored");
}
