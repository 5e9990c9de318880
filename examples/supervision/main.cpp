// Supervision at work: a tally actor under a supervisor crashes, is
// restarted under a new handle, and rebuilds its state from its journal, so
// nothing it acknowledged is lost. The restart shows in the log (stderr) and
// in the metrics. Callers find the tally by name through the supervisor,
// because a restarted actor is a new actor.
//
// Prints its steps to stdout and ends with "supervision example: OK" (exit 0),
// or says what went wrong (exit 1).

#include "wager/runtime/metrics.hpp"
#include "wager/runtime/supervisor.hpp"

#include <caf/all.hpp>

#include <cstdint>
#include <iostream>
#include <memory>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace {

using crash_atom = caf::atom_constant<caf::atom("crash")>;

constexpr auto reply_timeout = std::chrono::seconds{5};
constexpr auto restart_deadline = std::chrono::seconds{10};

// Stands in for Wager's journal: every increment is appended before it is
// acknowledged. Survives the actor, as a file on disk would.
class journal {
public:
  void append(int64_t amount) {
    std::lock_guard guard{mutex_};
    entries_.push_back(amount);
  }

  std::vector<int64_t> entries() const {
    std::lock_guard guard{mutex_};
    return entries_;
  }

private:
  mutable std::mutex mutex_;
  std::vector<int64_t> entries_;
};

struct tally_state {
  int64_t total = 0;
  size_t replayed = 0; // journal entries applied at start
};

// (add_atom, n) -> total; (get_atom) -> (total, replayed); (crash_atom) throws.
caf::behavior tally(caf::stateful_actor<tally_state>* self, std::shared_ptr<journal> log) {
  for (auto amount : log->entries()) {
    self->state.total += amount;
    ++self->state.replayed;
  }
  return {
    [=](caf::add_atom, int64_t amount) {
      log->append(amount); // journal first, then apply and answer
      self->state.total += amount;
      return self->state.total;
    },
    [=](caf::get_atom) { return caf::make_message(self->state.total, self->state.replayed); },
    [](crash_atom) -> int64_t { throw std::runtime_error("tally asked to crash"); },
  };
}

int fail(const std::string& why) {
  std::cout << "FAILED: " << why << std::endl;
  return 1;
}

// The tally's current handle, as any caller finds it: by name.
caf::actor lookup(caf::scoped_actor& self, const caf::actor& sup) {
  caf::actor found;
  self->request(sup, reply_timeout, caf::get_atom::value, std::string{"tally"})
    .receive([&](caf::actor& h) { found = std::move(h); }, [](caf::error&) {});
  return found;
}

// A caller that lost its handle asks again until the restarted child is up.
caf::actor wait_for_restart(caf::scoped_actor& self, const caf::actor& sup,
                            const caf::actor& old) {
  auto until = std::chrono::steady_clock::now() + restart_deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (auto h = lookup(self, sup); h && h != old)
      return h;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  return {};
}

// Owns the top-level supervisor: stops it, children first, on every way out.
struct supervisor {
  caf::scoped_actor& self;
  caf::actor handle;

  ~supervisor() {
    self->monitor(handle);
    caf::anon_send_exit(handle, caf::exit_reason::user_shutdown);
    self->receive([](caf::down_msg&) {}, caf::after(reply_timeout) >> [] {});
  }
};

int run(caf::actor_system& sys, wager::metrics& metrics) {
  auto log = std::make_shared<journal>();
  wager::supervisor_options opts;
  opts.name = "example";
  opts.metrics = &metrics;
  wager::child_spec spec{"tally", [log](caf::local_actor* sup) { return sup->spawn(tally, log); }};
  caf::scoped_actor self{sys};
  supervisor sup{self, wager::spawn_supervisor(sys, opts, {spec})};

  auto first = lookup(self, sup.handle);
  if (!first)
    return fail("no tally");
  for (int64_t amount : {100, 50}) {
    int64_t total = -1;
    self->request(first, reply_timeout, caf::add_atom::value, amount)
      .receive([&](int64_t t) { total = t; }, [](caf::error&) {});
    std::cout << "added " << amount << ": total " << total << std::endl;
  }

  std::cout << "asking the tally to crash" << std::endl;
  self->send(first, crash_atom::value);
  auto second = wait_for_restart(self, sup.handle, first);
  if (!second)
    return fail("the tally was not restarted");

  int64_t total = -1;
  size_t replayed = 0;
  self->request(second, reply_timeout, caf::get_atom::value)
    .receive([&](int64_t t, size_t r) { total = t, replayed = r; }, [](caf::error&) {});
  std::cout << "tally restarted under a new handle; replayed " << replayed
            << " journal entries: total " << total << std::endl;

  std::string restarts_line;
  std::istringstream rendered{metrics.render()};
  for (std::string line; std::getline(rendered, line);)
    if (line.rfind("wager_restarts_total{", 0) == 0)
      restarts_line = line;
  std::cout << "metrics: " << restarts_line << std::endl;

  if (total != 150 || replayed != 2)
    return fail("the restarted tally lost state");
  if (restarts_line.empty())
    return fail("the restart was not counted");
  return 0;
}

} // namespace

int main() {
  caf::actor_system_config cfg;
  cfg.set("scheduler.max-threads", 2);
  wager::metrics metrics; // outlives the supervisor that counts into it
  int rc = 0;
  {
    caf::actor_system sys{cfg};
    rc = run(sys, metrics);
  } // every actor has stopped here
  if (rc == 0)
    std::cout << "supervision example: OK" << std::endl;
  return rc;
}
