#include "wager/runtime/supervisor.hpp"

#include "support/wait.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/metrics.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

using namespace std::chrono_literals;
using wager::child_spec;
using wager::errc;
using wager::restart_policy;
using wager::restart_strategy;
using wager::supervisor_options;

namespace {

using crash_atom = caf::atom_constant<caf::atom("crash")>;
using finish_atom = caf::atom_constant<caf::atom("finish")>;
using fail_atom = caf::atom_constant<caf::atom("fail")>;

constexpr auto reply_timeout = std::chrono::seconds{5};

// What the workers did, in order, with when: "start a", "crash a", "stop a".
class event_log {
public:
  struct event {
    std::string what;
    std::chrono::steady_clock::time_point at;
  };

  void add(std::string what) {
    std::lock_guard guard{mutex_};
    events_.push_back({std::move(what), std::chrono::steady_clock::now()});
  }

  std::vector<event> events() const {
    std::lock_guard guard{mutex_};
    return events_;
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& e : events())
      out.push_back(e.what);
    return out;
  }

  size_t count(const std::string& what) const {
    auto all = names();
    return static_cast<size_t>(std::count(all.begin(), all.end(), what));
  }

private:
  mutable std::mutex mutex_;
  std::vector<event> events_;
};

// A worker that answers ping, throws on crash, quits normally on finish and
// with an error on fail. It records its crash and its stop, the stop from
// inside its exit handler so it is logged before the supervisor hears of it.
caf::behavior worker(caf::event_based_actor* self, std::string name,
                     std::shared_ptr<event_log> log, bool ignore_shutdown) {
  self->set_exit_handler([=](caf::exit_msg& msg) {
    if (ignore_shutdown)
      return;
    log->add("stop " + name);
    self->quit(std::move(msg.reason));
  });
  return {
    [](caf::ping_atom) { return caf::pong_atom::value; },
    [=](crash_atom) {
      log->add("crash " + name);
      throw std::runtime_error("crash requested");
    },
    [=](finish_atom) { self->quit(); },
    [=](fail_atom) { self->quit(wager::make_error(errc::internal, "failing on request")); },
  };
}

// The start is logged by the start function, which runs inside the
// supervisor: a spawned actor initializes on some worker thread later, so
// logging there would not show the order the supervisor started children in.
child_spec worker_spec(std::string name, std::shared_ptr<event_log> log,
                       restart_policy restart = restart_policy::permanent,
                       bool ignore_shutdown = false) {
  return child_spec{name,
                    [=](caf::local_actor* sup) {
                      log->add("start " + name);
                      return sup->spawn(worker, name, log, ignore_shutdown);
                    },
                    restart};
}

// Options for fast tests: immediate restarts unless a test wants back-off.
supervisor_options fast_options(std::string name) {
  supervisor_options opts;
  opts.name = std::move(name);
  opts.backoff_initial = 0ms;
  opts.backoff_max = 0ms;
  return opts;
}

caf::actor_system_config& small_config(caf::actor_system_config& cfg) {
  cfg.set("scheduler.max-threads", 2);
  return cfg;
}

// One actor system per test. Roots still alive at the end are killed, so a
// failed check cannot leave ~actor_system waiting forever.
struct fixture {
  caf::actor_system_config cfg;
  caf::actor_system sys{small_config(cfg)};
  caf::scoped_actor self{sys};
  std::vector<caf::actor> roots;
  std::shared_ptr<event_log> log = std::make_shared<event_log>();

  ~fixture() {
    for (auto& root : roots)
      caf::anon_send_exit(root, caf::exit_reason::kill);
  }

  caf::actor supervise(supervisor_options opts, std::vector<child_spec> children) {
    auto sup = wager::spawn_supervisor(sys, std::move(opts), std::move(children));
    roots.push_back(sup);
    return sup;
  }

  caf::expected<caf::actor> child(const caf::actor& sup, const std::string& name) {
    caf::expected<caf::actor> result{caf::actor{}};
    self->request(sup, reply_timeout, caf::get_atom::value, name)
      .receive([&](caf::actor& h) { result = std::move(h); },
               [&](caf::error& err) { result = std::move(err); });
    return result;
  }

  // Waits until `name` runs under a handle other than `old`.
  caf::actor restarted(const caf::actor& sup, const std::string& name, const caf::actor& old) {
    caf::actor fresh;
    wager::test::wait_until([&] {
      auto h = child(sup, name);
      if (h && *h && *h != old)
        fresh = *h;
      return static_cast<bool>(fresh);
    });
    return fresh;
  }

  errc lookup_error(const caf::actor& sup, const std::string& name) {
    auto h = child(sup, name);
    return h ? errc::none : wager::code_of(h.error());
  }

  bool gone(const caf::actor& sup, const std::string& name) {
    return wager::test::wait_until([&] { return lookup_error(sup, name) == errc::not_found; });
  }

  std::vector<wager::child_status> children(const caf::actor& sup) {
    std::vector<wager::child_status> out;
    self->request(sup, reply_timeout, wager::children_atom::value)
      .receive([&](std::vector<wager::child_status>& v) { out = std::move(v); },
               [&](caf::error&) {});
    return out;
  }

  bool answers(const caf::actor& h) {
    bool ok = false;
    self->request(h, reply_timeout, caf::ping_atom::value)
      .receive([&](caf::pong_atom) { ok = true; }, [&](caf::error&) {});
    return ok;
  }

  // The reason `h` ended with; monitoring a dead actor reports it at once.
  caf::error exit_reason_of(const caf::actor& h) {
    caf::error reason = caf::make_error(caf::sec::request_timeout);
    self->monitor(h);
    bool seen = false;
    while (!seen) {
      self->receive(
        [&](caf::down_msg& down) {
          if (down.source == h.address()) {
            reason = std::move(down.reason);
            seen = true;
          }
        },
        caf::after(reply_timeout) >> [&] { seen = true; });
    }
    return reason;
  }

  void stop(const caf::actor& sup) {
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    CHECK(exit_reason_of(sup) == caf::make_error(caf::exit_reason::user_shutdown));
  }
};

} // namespace

TEST_CASE_FIXTURE(fixture, "a child that throws is restarted and serves again") {
  auto sup = supervise(fast_options("sup"), {worker_spec("w", log)});
  auto first = child(sup, "w");
  REQUIRE(first);
  REQUIRE(answers(*first));
  self->send(*first, crash_atom::value);
  auto second = restarted(sup, "w", *first);
  REQUIRE(second);
  CHECK(answers(second));
  CHECK(log->count("start w") == 2);
  auto status = children(sup);
  REQUIRE(status.size() == 1);
  CHECK(status[0].restarts == 1);
  stop(sup);
}

TEST_CASE_FIXTURE(fixture, "restarts are counted in the metrics") {
  wager::metrics metrics;
  auto opts = fast_options("counting");
  opts.metrics = &metrics;
  auto sup = supervise(opts, {worker_spec("w", log)});
  auto first = child(sup, "w");
  REQUIRE(first);
  self->send(*first, crash_atom::value);
  auto second = restarted(sup, "w", *first);
  REQUIRE(second);
  self->send(second, fail_atom::value);
  restarted(sup, "w", second);
  CHECK(wager::test::wait_until([&] {
    return metrics.render().find(
             R"(wager_restarts_total{child="w",supervisor="counting"} 2)")
           != std::string::npos;
  }));
  stop(sup);
}

TEST_CASE_FIXTURE(fixture, "a transient child is restarted after a failure but not after a normal exit") {
  auto sup = supervise(fast_options("sup"), {worker_spec("t", log, restart_policy::transient)});
  auto first = child(sup, "t");
  REQUIRE(first);
  self->send(*first, fail_atom::value);
  auto second = restarted(sup, "t", *first);
  REQUIRE(second);
  self->send(second, finish_atom::value);
  CHECK(gone(sup, "t"));
  CHECK(log->count("start t") == 2);
  CHECK(children(sup).empty());
  stop(sup);
}

TEST_CASE_FIXTURE(fixture, "a temporary child is never restarted") {
  auto sup = supervise(fast_options("sup"), {worker_spec("once", log, restart_policy::temporary),
                                             worker_spec("stays", log)});
  auto once = child(sup, "once");
  REQUIRE(once);
  self->send(*once, crash_atom::value);
  CHECK(gone(sup, "once"));
  CHECK(log->count("start once") == 1);
  auto stays = child(sup, "stays");
  REQUIRE(stays);
  CHECK(answers(*stays));
  stop(sup);
}

TEST_CASE_FIXTURE(fixture, "one-for-all stops the siblings in reverse order and restarts all in start order") {
  auto opts = fast_options("group");
  opts.strategy = restart_strategy::one_for_all;
  auto sup = supervise(opts, {worker_spec("a", log), worker_spec("b", log), worker_spec("c", log)});
  auto a = child(sup, "a");
  auto b = child(sup, "b");
  auto c = child(sup, "c");
  REQUIRE((a && b && c));
  self->send(*b, crash_atom::value);
  CHECK(restarted(sup, "a", *a));
  CHECK(restarted(sup, "b", *b));
  auto c2 = restarted(sup, "c", *c);
  REQUIRE(c2);
  CHECK(answers(c2));
  auto expected = std::vector<std::string>{"start a", "start b", "start c", "crash b", "stop c",
                                           "stop a",  "start a", "start b", "start c"};
  CHECK(log->names() == expected);
  for (auto& status : children(sup))
    CHECK(status.restarts == 1);
  stop(sup);
}

TEST_CASE_FIXTURE(fixture, "a stopped supervisor stops its children in reverse start order") {
  auto sup = supervise(fast_options("sup"), {worker_spec("a", log), worker_spec("b", log),
                                             worker_spec("c", log)});
  REQUIRE(child(sup, "c"));
  stop(sup);
  auto expected =
    std::vector<std::string>{"start a", "start b", "start c", "stop c", "stop b", "stop a"};
  CHECK(log->names() == expected);
}

TEST_CASE_FIXTURE(fixture, "a child that ignores shutdown is killed after the shutdown timeout") {
  auto opts = fast_options("sup");
  opts.shutdown_timeout = 20ms;
  auto sup = supervise(opts, {worker_spec("stubborn", log, restart_policy::permanent, true)});
  auto stubborn = child(sup, "stubborn");
  REQUIRE(stubborn);
  stop(sup);
  CHECK(exit_reason_of(*stubborn) == caf::make_error(caf::exit_reason::kill));
}

TEST_CASE_FIXTURE(fixture, "exceeding the restart intensity escalates to the parent, which restarts the child supervisor") {
  wager::metrics metrics;
  auto inner_opts = fast_options("inner");
  inner_opts.intensity_max = 1;
  inner_opts.intensity_period = 60s;
  auto parent_opts = fast_options("parent");
  parent_opts.metrics = &metrics;
  auto parent =
    supervise(parent_opts, {wager::supervisor_child(inner_opts, {worker_spec("w", log)})});
  auto inner = child(parent, "inner");
  REQUIRE(inner);
  auto w1 = child(*inner, "w");
  REQUIRE(w1);
  self->send(*w1, crash_atom::value);
  auto w2 = restarted(*inner, "w", *w1);
  REQUIRE(w2);
  self->send(w2, crash_atom::value); // the second restart within the period: too many
  CHECK(wager::code_of(exit_reason_of(*inner)) == errc::restart_intensity_exceeded);
  auto inner2 = restarted(parent, "inner", *inner);
  REQUIRE(inner2);
  auto w3 = child(inner2, "w");
  REQUIRE(w3);
  CHECK(answers(*w3));
  CHECK(log->count("start w") == 3);
  CHECK(metrics.render().find(R"(wager_restarts_total{child="inner",supervisor="parent"} 1)")
        != std::string::npos);
  stop(parent);
  CHECK(exit_reason_of(inner2) == caf::make_error(caf::exit_reason::user_shutdown));
}

TEST_CASE_FIXTURE(fixture, "a parent whose own intensity is exceeded gives up too") {
  auto inner_opts = fast_options("inner");
  inner_opts.intensity_max = 0;
  auto parent_opts = fast_options("parent");
  parent_opts.intensity_max = 0;
  auto parent = supervise(parent_opts, {worker_spec("sibling", log),
                                        wager::supervisor_child(inner_opts, {worker_spec("w", log)})});
  auto inner = child(parent, "inner");
  REQUIRE(inner);
  auto w = child(*inner, "w");
  REQUIRE(w);
  self->send(*w, crash_atom::value);
  CHECK(wager::code_of(exit_reason_of(parent)) == errc::restart_intensity_exceeded);
  // The parent stopped its remaining child before it quit.
  CHECK(log->count("stop sibling") == 1);
  CHECK(log->count("start w") == 1);
}

TEST_CASE_FIXTURE(fixture, "a child that cannot start makes its supervisor give up") {
  auto opts = fast_options("sup");
  opts.intensity_max = 2;
  auto broken = child_spec{"broken", [](caf::local_actor*) { return caf::actor{}; }};
  auto throwing = child_spec{"throwing", [](caf::local_actor*) -> caf::actor {
                               throw std::runtime_error("no disk");
                             }};
  auto sup = supervise(opts, {broken});
  CHECK(wager::code_of(exit_reason_of(sup)) == errc::restart_intensity_exceeded);
  auto sup2 = supervise(opts, {throwing});
  CHECK(wager::code_of(exit_reason_of(sup2)) == errc::restart_intensity_exceeded);
}

TEST_CASE_FIXTURE(fixture, "consecutive restarts back off, doubling up to the maximum") {
  auto opts = fast_options("slow");
  opts.backoff_initial = 40ms;
  opts.backoff_max = 100ms;
  opts.backoff_reset_after = 60s; // no run in this test counts as stable
  auto sup = supervise(opts, {worker_spec("w", log)});
  auto current = child(sup, "w");
  REQUIRE(current);
  auto h = *current;
  for (int i = 0; i < 3; ++i) {
    self->send(h, crash_atom::value);
    h = restarted(sup, "w", h);
    REQUIRE(h);
  }
  // Each restart came no earlier than its back-off after the crash before it.
  auto events = log->events();
  REQUIRE(events.size() == 7);
  auto waited = [&](size_t crash) { return events[crash + 1].at - events[crash].at; };
  CHECK(waited(1) >= 40ms);
  CHECK(waited(3) >= 80ms);
  CHECK(waited(5) >= 100ms);
  stop(sup);
}

TEST_CASE_FIXTURE(fixture, "children can be added, listed and deleted at run time") {
  auto sup = supervise(fast_options("sup"), {worker_spec("a", log)});
  caf::actor added;
  self->request(sup, reply_timeout, caf::add_atom::value, worker_spec("b", log))
    .receive([&](caf::actor& h) { added = h; }, [&](caf::error&) {});
  REQUIRE(added);
  CHECK(answers(added));
  auto status = children(sup);
  REQUIRE(status.size() == 2);
  CHECK(status[0].name == "a");
  CHECK(status[1].name == "b");
  CHECK(status[1].handle == added);

  caf::error taken;
  self->request(sup, reply_timeout, caf::add_atom::value, worker_spec("b", log))
    .receive([&](caf::actor&) {}, [&](caf::error& err) { taken = err; });
  CHECK(wager::code_of(taken) == errc::invalid_field);

  bool deleted = false;
  self->request(sup, reply_timeout, caf::delete_atom::value, std::string{"b"})
    .receive([&](caf::ok_atom) { deleted = true; }, [&](caf::error&) {});
  CHECK(deleted);
  CHECK(log->count("stop b") == 1);
  CHECK(lookup_error(sup, "b") == errc::not_found);
  CHECK(log->count("start b") == 1);
  CHECK(children(sup).size() == 1);
  stop(sup);
}
