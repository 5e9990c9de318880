// A child process for the persistence tests: it appends to a journal and
// reports what the journal acknowledged on stdout, one line per answer,
// written with write(2) as the answer arrives, so a line the parent reads was
// acknowledged before the process died.
//
//   journal_worker load PATH STREAMS DEPTH RUN_MS
//     STREAMS streams "wallet/s<i>", each with DEPTH pipelined appends in
//     flight; each append carries 1 to 3 events and a request result. Prints
//     "ready", then "ack <stream> <last_seq>" per answer. Stops after RUN_MS.
//   journal_worker power_loss PATH SEED LOSSES OPS_MAX SYNC
//     LOSSES power losses in a row, each in a forked child that makes the
//     power-loss VFS (power_loss_vfs.hpp) the default and arms it to strike
//     at a write, truncation or sync drawn (from loss_seed(SEED, i)) in
//     [1, OPS_MAX], dropping or tearing the unsynced writes (drawn too);
//     SYNC "off" makes xSync a no-op. The child prints "armed <op>
//     <drop|tear>", opens the journal (recovering what the loss before left),
//     prints "ready", and appends from several client threads, printing
//     "ack <stream> <last_seq>" per answer, until the loss ends it at once.
//     Then the worker prints "lost" and, before the next loss, waits for
//     SIGUSR1.
//   journal_worker contend PATH STREAM TOTAL WRITER
//     Reads the stream's last seq and appends one event claiming the next
//     seq for WRITER, again and again, until the stream has TOTAL events.
//     Prints "won <seq>" or "lost <seq>" per attempt.
//
// Event payloads are a function of (stream, seq) (see expected_amount), so
// the parent can check every event it reads back.

#include "journal_worker_protocol.hpp"
#include "power_loss_vfs.hpp"

#include "wager/persistence/sqlite_journal.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

using namespace wager;

namespace {

void say(const std::string& line) {
  auto text = line + "\n";
  // One write per line: atomic on a pipe, and unbuffered, so nothing
  // acknowledged is lost in a stdio buffer when the process is killed.
  if (::write(STDOUT_FILENO, text.data(), text.size()) < 0)
    std::_Exit(3);
}

[[noreturn]] void die(const std::string& why) {
  std::fprintf(stderr, "journal_worker: %s\n", why.c_str());
  std::_Exit(2);
}

std::unique_ptr<journal> open_journal(journal_options options) {
  options.busy_timeout_ms = 60000;
  // The layout of a journal the worker creates: as the suite that started
  // it runs (journal_support.hpp).
  auto* layout = std::getenv("WAGER_TEST_JOURNAL_LAYOUT");
  options.layout = layout != nullptr && std::string_view{layout} == "log" ? journal_layout::log
                                                                          : journal_layout::rows;
  // Index checkpoints every few frames, so crashes and power losses strike
  // while one is written, and recoveries open from one.
  options.index_checkpoint_frames = 20;
  auto j = open_sqlite_journal(options);
  if (!j)
    die(message_of(j.error()));
  return std::move(*j);
}

// The append that continues `stream` after `seq`: 1 to 3 deposits and the
// request result, keyed by the seq it ends at.
append_request next_append(const std::string& stream, uint64_t seq) {
  append_request r;
  r.stream = stream;
  r.expected_seq = seq;
  auto count = test::events_in_append_after(seq);
  for (uint64_t k = 1; k <= count; ++k)
    r.events.push_back(event::make(
      "deposited", 1, boost::json::object{{"amount", test::expected_amount(stream, seq + k)}}));
  auto last = seq + count;
  r.request = request_record{test::request_id_of(last), test::request_result_of(last)};
  return r;
}

class load {
public:
  load(journal& j, int streams, int depth) : j_(j), depth_(depth) {
    for (int i = 0; i < streams; ++i) {
      auto name = "wallet/s" + std::to_string(i);
      auto last = j_.last_seq(name);
      if (!last)
        die(message_of(last.error()));
      next_[name] = *last;
    }
  }

  void start() {
    for (auto& [name, _] : next_)
      for (int d = 0; d < depth_; ++d)
        submit(name);
  }

private:
  void submit(const std::string& stream) {
    // Held across append(): the main thread's first appends and the writer
    // thread's follow-ups must reach the queue in the order their seqs were
    // chosen. append() never calls back before it returns, so this cannot
    // deadlock with the callback below.
    std::lock_guard lock{mutex_};
    auto& seq = next_[stream];
    auto r = next_append(stream, seq);
    seq = r.expected_seq + r.events.size();
    auto err = j_.append(std::move(r), [this, stream](caf::expected<append_ack> ack) {
      if (!ack)
        die("append to " + stream + " failed: " + message_of(ack.error()));
      say("ack " + stream + " " + std::to_string(ack->last_seq));
      submit(stream);
    });
    if (err)
      die("append refused: " + message_of(err));
  }

  journal& j_;
  int depth_;
  std::mutex mutex_;
  std::map<std::string, uint64_t> next_;
};

// Appends from several client threads, as wallets do: each thread owns some
// streams and keeps `depth` appends of each in flight, submitting the next
// one when an answer comes back (answers arrive on the writer thread).
class client_threads {
public:
  client_threads(journal& j, int threads, int streams_per_thread, int depth)
      : j_(j), depth_(depth) {
    for (int t = 0; t < threads; ++t) {
      auto& c = *clients_.emplace_back(std::make_unique<client>());
      for (int i = 0; i < streams_per_thread; ++i) {
        auto name = "wallet/s" + std::to_string(t * streams_per_thread + i);
        auto last = j_.last_seq(name);
        if (!last)
          die(message_of(last.error()));
        c.next[name] = *last;
      }
    }
  }

  // Runs the clients, this thread being the first, until something ends the
  // process; dies if nothing has within `deadline`.
  [[noreturn]] void run(std::chrono::milliseconds deadline) {
    auto until = std::chrono::steady_clock::now() + deadline;
    std::vector<std::thread> threads;
    for (size_t t = 1; t < clients_.size(); ++t)
      threads.emplace_back([this, t, until] { serve(*clients_[t], until); });
    serve(*clients_[0], until);
  }

private:
  struct client {
    std::map<std::string, uint64_t> next; // owned by the client's thread
    std::mutex mutex;
    std::condition_variable answered;
    std::deque<std::string> acked; // streams answered, waiting for their next append
  };

  [[noreturn]] void serve(client& c, std::chrono::steady_clock::time_point until) {
    for (auto& [stream, _] : c.next)
      for (int d = 0; d < depth_; ++d)
        submit(c, stream);
    for (;;) {
      std::unique_lock lock{c.mutex};
      if (!c.answered.wait_until(lock, until, [&] { return !c.acked.empty(); }))
        die("still running at the deadline");
      auto stream = std::move(c.acked.front());
      c.acked.pop_front();
      lock.unlock();
      submit(c, stream);
    }
  }

  void submit(client& c, const std::string& stream) {
    auto& seq = c.next[stream];
    auto r = next_append(stream, seq);
    seq = r.expected_seq + r.events.size();
    auto err = j_.append(std::move(r), [&c, stream](caf::expected<append_ack> ack) {
      if (!ack)
        die("append to " + stream + " failed: " + message_of(ack.error()));
      say("ack " + stream + " " + std::to_string(ack->last_seq));
      std::lock_guard lock{c.mutex};
      c.acked.push_back(stream);
      c.answered.notify_one();
    });
    if (err)
      die("append refused: " + message_of(err));
  }

  journal& j_;
  int depth_;
  std::vector<std::unique_ptr<client>> clients_;
};

// One power loss, in a process of its own (forked): opens the journal
// through the power-loss VFS, armed from `seed`, and appends until the loss
// ends the process.
[[noreturn]] void lose_power(const std::string& path, uint64_t seed, uint64_t ops_max, bool sync) {
  std::mt19937_64 random{seed};
  auto op = std::uniform_int_distribution<uint64_t>{1, ops_max}(random);
  auto mode = random() % 2 == 0 ? test::loss_mode::drop : test::loss_mode::tear;
  auto& vfs = test::power_loss_vfs::install(true);
  vfs.set_sync_mode(sync ? test::sync_mode::honoured : test::sync_mode::ignored);
  vfs.arm(op, mode, random(), [](const test::loss_report& report) {
    if (!report.error.empty())
      die("applying the power loss: " + report.error);
    std::_Exit(test::power_loss_exit_code);
  });
  say("armed " + std::to_string(op) + (mode == test::loss_mode::drop ? " drop" : " tear"));
  // The smallest checkpoint interval, so that short runs write and sync the
  // database file too, not only the WAL.
  journal_options options;
  options.path = path;
  options.wal_autocheckpoint_pages = 100;
  options.reader_threads = 1; // it reads only at start, synchronously
  auto j = open_journal(options);
  // 16 wallets over 4 threads, 2 appends in flight each: batches of up to 32.
  client_threads clients{*j, 4, 4, 2};
  say("ready");
  clients.run(std::chrono::seconds{30});
}

// LOSSES power losses in a row, each in a child forked from this process
// (single-threaded, so forking is safe, and far cheaper than starting the
// program again). Between two, it says "lost" and waits for SIGUSR1: the
// parent checks the files first.
int run_power_losses(const std::string& path, uint64_t seed, int losses, uint64_t ops_max,
                     bool sync) {
  sigset_t go_on;
  sigemptyset(&go_on);
  sigaddset(&go_on, SIGUSR1);
  // Blocked from the start, so a SIGUSR1 sent early waits instead of killing.
  ::sigprocmask(SIG_BLOCK, &go_on, nullptr);
  for (int loss = 0; loss < losses; ++loss) {
    if (loss > 0) {
      int signo = 0;
      if (::sigwait(&go_on, &signo) != 0)
        die("sigwait failed");
    }
    auto child = ::fork();
    if (child < 0)
      die("fork failed");
    if (child == 0)
      lose_power(path, test::loss_seed(seed, loss), ops_max, sync);
    int status = 0;
    if (::waitpid(child, &status, 0) != child)
      die("waitpid failed");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != test::power_loss_exit_code)
      die("loss " + std::to_string(loss) + ": the child ended with status " +
          std::to_string(status) + ", not by its power loss");
    say("lost");
  }
  return 0;
}

int run_load(const std::string& path, int streams, int depth, int run_ms) {
  auto j = open_journal(journal_options{.path = path});
  load work{*j, streams, depth};
  say("ready");
  work.start();
  std::this_thread::sleep_for(std::chrono::milliseconds{run_ms});
  std::_Exit(0); // the test kills us long before; never wait for the chain
}

int run_contend(const std::string& path, const std::string& stream, uint64_t total,
                const std::string& writer) {
  auto j = open_journal(journal_options{.path = path});
  say("ready");
  for (;;) {
    auto last = j->last_seq(stream);
    if (!last)
      die(message_of(last.error()));
    if (*last >= total)
      return 0;
    auto seq = *last + 1;
    auto promise = std::make_shared<std::promise<caf::expected<append_ack>>>();
    auto answer = promise->get_future();
    auto payload = boost::json::object{{"writer", writer}, {"seq", seq}};
    append_request request{stream, *last, {event::make("claimed", 1, payload)}, std::nullopt};
    request.from_read = true;
    auto err = j->append(std::move(request),
                         [promise](caf::expected<append_ack> r) { promise->set_value(r); });
    if (err)
      die(message_of(err));
    auto r = answer.get();
    if (r)
      say("won " + std::to_string(seq));
    else if (code_of(r.error()) == errc::sequence_conflict)
      say("lost " + std::to_string(seq));
    else
      die(message_of(r.error()));
  }
}

} // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.size() == 5 && args[0] == "load")
    return run_load(args[1], std::stoi(args[2]), std::stoi(args[3]), std::stoi(args[4]));
  if (args.size() == 6 && args[0] == "power_loss" && (args[5] == "on" || args[5] == "off"))
    return run_power_losses(args[1], std::stoull(args[2]), std::stoi(args[3]),
                            std::stoull(args[4]), args[5] == "on");
  if (args.size() == 5 && args[0] == "contend")
    return run_contend(args[1], args[2], std::stoull(args[3]), args[4]);
  die("usage: journal_worker load PATH STREAMS DEPTH RUN_MS | "
      "power_loss PATH SEED LOSSES OPS_MAX on|off | contend PATH STREAM TOTAL WRITER");
}
