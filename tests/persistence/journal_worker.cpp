// A child process for the persistence tests: it appends to a journal and
// reports what the journal acknowledged on stdout, one line per answer,
// written with write(2) as the answer arrives, so a line the parent reads was
// acknowledged before the process died.
//
//   journal_worker load PATH STREAMS DEPTH RUN_MS
//     STREAMS streams "wallet/s<i>", each with DEPTH pipelined appends in
//     flight; each append carries 1 to 3 events and a request result. Prints
//     "ready", then "ack <stream> <last_seq>" per answer. Stops after RUN_MS.
//   journal_worker contend PATH STREAM TOTAL WRITER
//     Reads the stream's last seq and appends one event claiming the next
//     seq for WRITER, again and again, until the stream has TOTAL events.
//     Prints "won <seq>" or "lost <seq>" per attempt.
//
// Event payloads are a function of (stream, seq) (see expected_amount), so
// the parent can check every event it reads back.

#include "journal_worker_protocol.hpp"

#include "wager/persistence/sqlite_journal.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>

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

std::unique_ptr<journal> open_journal(const std::string& path) {
  journal_options options;
  options.path = path;
  options.busy_timeout_ms = 60000;
  auto j = open_sqlite_journal(options);
  if (!j)
    die(message_of(j.error()));
  return std::move(*j);
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
    append_request r;
    r.stream = stream;
    r.expected_seq = seq;
    auto count = 1 + seq % 3;
    for (uint64_t k = 1; k <= count; ++k)
      r.events.push_back(event::make(
        "deposited", 1, boost::json::object{{"amount", test::expected_amount(stream, seq + k)}}));
    seq += count;
    r.request = request_record{"r" + std::to_string(seq), "{\"seq\":" + std::to_string(seq) + "}"};
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

int run_load(const std::string& path, int streams, int depth, int run_ms) {
  auto j = open_journal(path);
  load work{*j, streams, depth};
  say("ready");
  work.start();
  std::this_thread::sleep_for(std::chrono::milliseconds{run_ms});
  std::_Exit(0); // the test kills us long before; never wait for the chain
}

int run_contend(const std::string& path, const std::string& stream, uint64_t total,
                const std::string& writer) {
  auto j = open_journal(path);
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
  if (args.size() == 5 && args[0] == "contend")
    return run_contend(args[1], args[2], std::stoull(args[3]), args[4]);
  die("usage: journal_worker load PATH STREAMS DEPTH RUN_MS | contend PATH STREAM TOTAL WRITER");
}
