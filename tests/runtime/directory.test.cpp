#include "wager/runtime/directory.hpp"

#include "wager/runtime/errors.hpp"
#include "wager/runtime/metrics.hpp"
#include "support/wait.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <latch>
#include <list>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

using namespace std::chrono_literals;
using wager::entity_id;
using wager::test::wait_until;

namespace {

using load_atom = caf::atom_constant<caf::atom("load")>;
using save_atom = caf::atom_constant<caf::atom("save")>;
using hold_atom = caf::atom_constant<caf::atom("hold")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using count_atom = caf::atom_constant<caf::atom("count")>;
using crash_atom = caf::atom_constant<caf::atom("crash")>;

// What the test entities did, as seen from the test thread.
struct world {
  std::mutex mutex;
  std::map<std::string, int> activations;
  std::vector<std::string> passivating;
  std::vector<std::string> passivated;
  std::atomic<bool> recovery_fails{false};

  void note(std::vector<std::string>& list, const std::string& key) {
    std::lock_guard guard{mutex};
    list.push_back(key);
  }
  void activated(const std::string& key) {
    std::lock_guard guard{mutex};
    ++activations[key];
  }
  int activations_of(const std::string& key) {
    std::lock_guard guard{mutex};
    return activations[key];
  }
  std::vector<std::string> passivated_keys() {
    std::lock_guard guard{mutex};
    return passivated;
  }
  bool is_passivating(const std::string& key) {
    std::lock_guard guard{mutex};
    return std::count(passivating.begin(), passivating.end(), key) > 0;
  }
};

// The journal stand-in: a detached actor (its own thread, as the real
// journal reader) that loads and saves counts. While held, it answers
// nothing, so a test can freeze recoveries and snapshots where it wants.
struct store_state {
  std::map<std::string, int64_t> counts;
  bool holding = false;
  std::vector<std::function<void()>> pending;
};

caf::behavior store(caf::stateful_actor<store_state>* self) {
  return {
    [=](load_atom, const std::string& key) -> caf::result<int64_t> {
      auto rp = self->make_response_promise<int64_t>();
      auto answer = [=]() mutable { rp.deliver(self->state.counts[key]); };
      self->state.holding ? self->state.pending.push_back(answer) : answer();
      return rp;
    },
    [=](save_atom, const std::string& key, int64_t count) -> caf::result<caf::ok_atom> {
      auto rp = self->make_response_promise<caf::ok_atom>();
      auto answer = [=]() mutable {
        self->state.counts[key] = count;
        rp.deliver(caf::ok_atom::value);
      };
      self->state.holding ? self->state.pending.push_back(answer) : answer();
      return rp;
    },
    [=](hold_atom) {
      self->state.holding = true;
      return caf::ok_atom::value;
    },
    [=](release_atom) {
      self->state.holding = false;
      for (auto& answer : self->state.pending)
        answer();
      self->state.pending.clear();
      return caf::ok_atom::value;
    },
  };
}

// A counter entity: recovers its count from the store asynchronously,
// counts, and saves the count when it passivates.
struct counter_state {
  int64_t count = 0;
};

caf::behavior counter_running(caf::stateful_actor<counter_state>* self, std::string key,
                              world* w, caf::actor journal) {
  return {
    [=](count_atom, int64_t n) { return self->state.count += n; },
    [=](caf::get_atom) { return self->state.count; },
    [=](crash_atom) -> int64_t { throw std::runtime_error("crash requested"); },
    [=](wager::passivate_atom) {
      w->note(w->passivating, key);
      self->request(journal, caf::infinite, save_atom::value, key, self->state.count)
        .then([=](caf::ok_atom) {
          w->note(w->passivated, key);
          self->quit();
        });
    },
  };
}

caf::behavior counter(caf::stateful_actor<counter_state>* self, std::string key, world* w,
                      caf::actor journal) {
  w->activated(key);
  wager::begin_recovery(self);
  self->request(journal, caf::infinite, load_atom::value, key).then([=](int64_t count) {
    if (w->recovery_fails)
      throw std::runtime_error("journal unreadable");
    self->state.count = count;
    wager::end_recovery(self, counter_running(self, key, w, journal));
  });
  return {};
}

// Answers (get_atom, key) with the count of counter/key, asked through the
// directory it was activated with, as a wallet asks a market.
caf::behavior proxy(caf::event_based_actor* self, wager::directory dir) {
  return {
    [=](caf::get_atom, const std::string& key) {
      auto rp = self->make_response_promise<int64_t>();
      dir.request(self, 5s, entity_id{"counter", key}, caf::get_atom::value)
        .then([=](int64_t n) mutable { rp.deliver(n); },
              [=](caf::error& err) mutable { rp.deliver(std::move(err)); });
      return rp;
    },
    [=](wager::passivate_atom) { self->quit(); },
  };
}

// Ignores passivate_atom, as an entity stuck on a snapshot would; answers
// get_atom with its incarnation number.
caf::behavior stubborn(caf::event_based_actor*, std::string key, world* w) {
  w->activated(key);
  int incarnation = w->activations_of(key);
  return {
    [=](caf::get_atom) { return int64_t{incarnation}; },
    [=](wager::passivate_atom) { w->note(w->passivating, key); },
  };
}

struct fixture {
  wager::metrics metrics; // outlives the actor system, as directories need
  std::list<wager::metrics> other_nodes_metrics;
  world w;
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  caf::actor journal = sys.spawn<caf::detached>(store);
  std::vector<wager::directory> started;

  ~fixture() {
    for (auto& dir : started)
      dir.stop();
    caf::anon_send_exit(journal, caf::exit_reason::user_shutdown);
  }

  wager::entity_kind counter_kind(std::chrono::milliseconds idle = 1h, size_t bound = 1000) {
    return {"counter",
            [w = &w, journal = journal](const wager::activation_context& ctx) {
              return ctx.system.spawn(counter, ctx.id.key, w, journal);
            },
            idle, bound};
  }

  wager::directory start(wager::directory_options opts, std::vector<wager::entity_kind> kinds,
                         wager::metrics* m = nullptr) {
    auto dir = wager::spawn_directory(sys, std::move(opts), std::move(kinds), m ? *m : metrics);
    REQUIRE(dir);
    started.push_back(*dir);
    return *dir;
  }

  wager::directory start(wager::directory_options opts, wager::entity_kind kind,
                         wager::metrics* m = nullptr) {
    return start(std::move(opts), std::vector<wager::entity_kind>{std::move(kind)}, m);
  }

  wager::metrics& another_node_metrics() { return other_nodes_metrics.emplace_back(); }

  // Stands in for a shard owner that cannot be reached: asking it is a bug,
  // answered with errc::internal.
  caf::actor spawn_unreachable_owner() {
    return sys.spawn([](caf::event_based_actor*) -> caf::behavior {
      return {[](count_atom, int64_t) -> caf::result<int64_t> {
        return wager::make_error(wager::errc::internal, "the unreachable owner was asked");
      }};
    });
  }

  static wager::shard_route unreachable_route(const caf::actor& stand_in) {
    wager::shard_route r{stand_in};
    r.unreachable = true;
    return r;
  }

  void set_journal_holding(bool holding) {
    caf::scoped_actor self{sys};
    if (holding)
      self->request(journal, 5s, hold_atom::value).receive([](caf::ok_atom) {}, [](caf::error&) {});
    else
      self->request(journal, 5s, release_atom::value).receive([](caf::ok_atom) {}, [](caf::error&) {});
  }

  double activations(wager::metrics* m = nullptr) {
    return (m ? *m : metrics).activations().Add({{"kind", "counter"}}).Value();
  }
  double passivations(wager::metrics* m = nullptr) {
    return (m ? *m : metrics).passivations().Add({{"kind", "counter"}}).Value();
  }
  double alive() { return metrics.actors_alive().Add({{"kind", "counter"}}).Value(); }

  // Counts n on `id` through `dir` from an actor of its own; returns once
  // the request is in the directory's mailbox, the answer in the future.
  std::future<caf::expected<int64_t>> ask_later(const wager::directory& dir, entity_id id,
                                                int64_t n) {
    auto out = std::make_shared<std::promise<caf::expected<int64_t>>>();
    auto answer = out->get_future();
    auto asker = sys.spawn([=](caf::event_based_actor* me) -> caf::behavior {
      return {[=](caf::get_atom) {
        dir.request(me, 10s, id, count_atom::value, n)
          .then([=](int64_t v) { out->set_value(v); me->quit(); },
                [=](caf::error& err) { out->set_value(std::move(err)); me->quit(); });
        return caf::ok_atom::value;
      }};
    });
    caf::scoped_actor self{sys};
    self->request(asker, 5s, caf::get_atom::value).receive([](caf::ok_atom) {}, [](caf::error&) {});
    return answer;
  }
};

entity_id counter_id(std::string key) {
  return {"counter", std::move(key)};
}

// A blocking ask through the directory for an int64_t answer.
template <class... Ts>
caf::expected<int64_t> ask(const wager::directory& dir, caf::scoped_actor& self,
                           const entity_id& id, Ts&&... xs) {
  caf::expected<int64_t> result{caf::error{}};
  dir.request(self, 10s, id, std::forward<Ts>(xs)...)
    .receive([&](int64_t n) { result = n; }, [&](caf::error& err) { result = std::move(err); });
  return result;
}

wager::directory_options fast_options() {
  wager::directory_options opts;
  opts.sweep_interval = 5ms;
  return opts;
}

} // namespace

TEST_CASE_FIXTURE(fixture, "concurrent asks for an inactive entity activate it exactly once") {
  auto dir = start(fast_options(), counter_kind());
  set_journal_holding(true); // the recovery waits until every ask is queued
  constexpr int askers = 16;
  std::latch go{askers};
  std::atomic<int> sent{0};
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < askers; ++i)
    threads.emplace_back([&] {
      caf::scoped_actor self{sys};
      go.arrive_and_wait();
      auto answer = dir.request(self, 10s, counter_id("c1"), caf::get_atom::value);
      ++sent;
      answer.receive([&](int64_t n) { answered += n == 0; }, [](caf::error&) {});
    });
  CHECK(wait_until([&] { return sent == askers; }));
  set_journal_holding(false);
  for (auto& t : threads)
    t.join();
  CHECK(answered == askers);
  CHECK(w.activations_of("c1") == 1);
  CHECK(activations() == 1);
  CHECK(alive() == 1);
}

TEST_CASE_FIXTURE(fixture, "asking for a live entity reaches the same incarnation") {
  auto dir = start(fast_options(), counter_kind());
  caf::scoped_actor self{sys};
  CHECK(ask(dir, self, counter_id("c"), count_atom::value, int64_t{1}) == 1);
  CHECK(ask(dir, self, counter_id("c"), count_atom::value, int64_t{2}) == 3);
  CHECK(w.activations_of("c") == 1);
}

TEST_CASE_FIXTURE(fixture, "an idle entity passivates and recovers its state when asked again") {
  auto dir = start(fast_options(), counter_kind(20ms));
  caf::scoped_actor self{sys};
  CHECK(ask(dir, self, counter_id("idle"), count_atom::value, int64_t{5}) == 5);
  REQUIRE(wait_until([&] { return passivations() == 1; }));
  CHECK(alive() == 0);
  CHECK(w.passivated_keys() == std::vector<std::string>{"idle"});
  CHECK(ask(dir, self, counter_id("idle"), caf::get_atom::value) == 5);
  CHECK(w.activations_of("idle") == 2);
}

TEST_CASE_FIXTURE(fixture, "beyond its kind's bound the least recently used entity passivates") {
  auto opts = fast_options();
  opts.partitions = 1; // one LRU order for the whole kind
  auto dir = start(opts, counter_kind(1h, 2));
  caf::scoped_actor self{sys};
  auto touch = [&](const char* key) {
    CHECK(ask(dir, self, counter_id(key), count_atom::value, int64_t{1}));
  };
  touch("a");
  touch("b");
  touch("a"); // b is now the least recently used
  touch("c");
  REQUIRE(wait_until([&] { return w.passivated_keys().size() == 1; }));
  CHECK(w.passivated_keys() == std::vector<std::string>{"b"});
  touch("a"); // c is now the least recently used
  CHECK(ask(dir, self, counter_id("b"), caf::get_atom::value) == 1); // recovered
  REQUIRE(wait_until([&] { return w.passivated_keys().size() == 2; }));
  CHECK(w.passivated_keys() == std::vector<std::string>{"b", "c"});
  CHECK(w.activations_of("a") == 1);
  CHECK(w.activations_of("b") == 2);
}

TEST_CASE_FIXTURE(fixture, "no message is lost while entities passivate under a stream") {
  auto opts = fast_options();
  opts.partitions = 1;
  opts.sweep_interval = 1ms;
  opts.held_max = 100'000;
  // One resident entity and three in use: every switch passivates one, and
  // the idle sweep passivates too.
  auto dir = start(opts, counter_kind(2ms, 1));
  const std::vector<std::string> keys{"s0", "s1", "s2"};
  constexpr int senders = 4;
  constexpr int per_sender = 600;
  std::atomic<int> failed_requests{0};
  std::vector<std::thread> threads;
  // Half the senders fire and forget, half ask and wait: the first pile up
  // messages behind a passivation, the second interleave with it finely.
  for (int t = 0; t < senders; ++t)
    threads.emplace_back([&, t] {
      caf::scoped_actor self{sys};
      for (int i = 0; i < per_sender; ++i) {
        auto id = counter_id(keys[(i + t) % keys.size()]);
        if (t % 2 == 0)
          dir.send(self, id, count_atom::value, int64_t{1});
        else if (!ask(dir, self, id, count_atom::value, int64_t{1}))
          ++failed_requests;
      }
    });
  for (auto& t : threads)
    t.join();
  CHECK(failed_requests == 0);
  const int64_t per_key = senders * per_sender / static_cast<int64_t>(keys.size());
  caf::scoped_actor self{sys};
  auto all_counted = [&] {
    for (auto& key : keys)
      if (ask(dir, self, counter_id(key), caf::get_atom::value) != per_key)
        return false;
    return true;
  };
  CHECK(wait_until(all_counted, 20s));
  CHECK(passivations() > 0);
}

TEST_CASE_FIXTURE(fixture, "a request for an entity with too many held messages is unavailable") {
  auto opts = fast_options();
  opts.partitions = 1;
  opts.held_max = 1;
  auto dir = start(opts, counter_kind(1h, 1));
  caf::scoped_actor self{sys};
  CHECK(ask(dir, self, counter_id("a"), count_atom::value, int64_t{1}) == 1);
  set_journal_holding(true);
  // Activating b passivates a, whose snapshot now waits in the journal.
  auto b = dir.request(self, 10s, counter_id("b"), caf::get_atom::value);
  REQUIRE(wait_until([&] { return w.is_passivating("a"); }));
  auto held = dir.request(self, 10s, counter_id("a"), count_atom::value, int64_t{1});
  auto over = dir.request(self, 10s, counter_id("a"), count_atom::value, int64_t{1});
  over.receive([](int64_t) { FAIL("a request past held_max was answered"); },
               [](caf::error& err) { CHECK(wager::code_of(err) == wager::errc::unavailable); });
  set_journal_holding(false);
  held.receive([](int64_t n) { CHECK(n == 2); }, [](caf::error& err) { FAIL(to_string(err)); });
  b.receive([](int64_t n) { CHECK(n == 0); }, [](caf::error& err) { FAIL(to_string(err)); });
}

TEST_CASE_FIXTURE(fixture, "a crashed entity is activated again by the next message") {
  auto dir = start(fast_options(), counter_kind());
  caf::scoped_actor self{sys};
  CHECK(ask(dir, self, counter_id("x"), count_atom::value, int64_t{3}) == 3);
  CHECK_FALSE(ask(dir, self, counter_id("x"), crash_atom::value));
  // Unsaved state is gone with the crash: it recovers what the journal has.
  CHECK(wait_until([&] { return ask(dir, self, counter_id("x"), caf::get_atom::value) == 0; }));
  CHECK(w.activations_of("x") == 2);
  CHECK(alive() == 1);
}

TEST_CASE_FIXTURE(fixture, "an entity in a crash loop is blocked for a back-off, then retried") {
  auto opts = fast_options();
  opts.crash_restart_max = 2;
  opts.crash_backoff_initial = 1s; // outlasts any scheduling hiccup
  auto dir = start(opts, counter_kind());
  caf::scoped_actor self{sys};
  w.recovery_fails = true;
  bool blocked = false;
  for (int attempt = 0; attempt < 100 && !blocked; ++attempt) {
    auto r = ask(dir, self, counter_id("f"), caf::get_atom::value);
    REQUIRE_FALSE(r);
    blocked = wager::code_of(r.error()) == wager::errc::unavailable;
  }
  CHECK(blocked);
  CHECK(w.activations_of("f") == 3); // crash_restart_max restarts, then the block
  w.recovery_fails = false;
  CHECK(wait_until([&] { return ask(dir, self, counter_id("f"), caf::get_atom::value) == 0; }));
  CHECK(w.activations_of("f") == 4);
}

TEST_CASE_FIXTURE(fixture, "an entity reaches other entities through its directory") {
  wager::entity_kind proxy_kind{"proxy", [](const wager::activation_context& ctx) {
                                  return ctx.system.spawn(proxy, ctx.dir);
                                }};
  auto dir = start(fast_options(), {counter_kind(), proxy_kind});
  caf::scoped_actor self{sys};
  CHECK(ask(dir, self, counter_id("t"), count_atom::value, int64_t{7}) == 7);
  CHECK(ask(dir, self, entity_id{"proxy", "p"}, caf::get_atom::value, std::string{"t"}) == 7);
}

TEST_CASE_FIXTURE(fixture, "an entity that does not passivate in time is killed") {
  auto opts = fast_options();
  opts.passivate_timeout = 50ms;
  wager::entity_kind stubborn_kind{"stubborn",
                                   [w = &w](const wager::activation_context& ctx) {
                                     return ctx.system.spawn(stubborn, ctx.id.key, w);
                                   },
                                   10ms};
  auto dir = start(opts, stubborn_kind);
  caf::scoped_actor self{sys};
  entity_id id{"stubborn", "s"};
  CHECK(ask(dir, self, id, caf::get_atom::value) == 1);
  REQUIRE(wait_until([&] { return w.is_passivating("s"); }));
  // Held until the first incarnation is killed, then served by the second.
  CHECK(ask(dir, self, id, caf::get_atom::value) == 2);
}

TEST_CASE_FIXTURE(fixture, "a message for an unknown kind is not found") {
  auto dir = start(fast_options(), counter_kind());
  caf::scoped_actor self{sys};
  auto r = ask(dir, self, entity_id{"nosuchkind", "k"}, caf::get_atom::value);
  REQUIRE_FALSE(r);
  CHECK(wager::code_of(r.error()) == wager::errc::not_found);
}

TEST_CASE_FIXTURE(fixture, "a shard placed on another node is served by that node's directory") {
  auto& remote_metrics = another_node_metrics();
  auto remote = start(fast_options(), counter_kind(), &remote_metrics);
  auto moved = std::make_shared<std::atomic<bool>>(false);
  auto opts = fast_options();
  opts.placement = [moved, remote](uint32_t shard) {
    return *moved ? remote.partition_of_shard(shard) : caf::actor{};
  };
  auto dir = start(opts, counter_kind());
  caf::scoped_actor self{sys};
  CHECK(ask(dir, self, counter_id("m"), count_atom::value, int64_t{4}) == 4);
  *moved = true;
  dir.placement_changed(); // the local copy passivates, saving its count
  REQUIRE(wait_until([&] { return passivations() == 1; }));
  CHECK(ask(dir, self, counter_id("m"), count_atom::value, int64_t{1}) == 5);
  CHECK(activations() == 1);
  CHECK(activations(&remote_metrics) == 1);
}

TEST_CASE_FIXTURE(fixture, "thousands of entities whose shards moved all passivate, a bounded "
                           "number a turn, and keep their state") {
  auto& remote_metrics = another_node_metrics();
  auto remote = start(fast_options(), counter_kind(1h, 10000), &remote_metrics);
  auto moved = std::make_shared<std::atomic<bool>>(false);
  auto opts = fast_options();
  opts.partitions = 1; // one partition: more than its per-turn bound move
  opts.placement = [moved, remote](uint32_t shard) {
    return *moved ? remote.partition_of_shard(shard) : caf::actor{};
  };
  auto dir = start(opts, counter_kind(1h, 10000));
  caf::scoped_actor self{sys};
  constexpr int entities = 3000;
  for (int i = 0; i < entities; ++i)
    REQUIRE(ask(dir, self, counter_id("n" + std::to_string(i)), count_atom::value, int64_t{i})
            == i);
  *moved = true;
  dir.placement_changed();
  REQUIRE(wait_until([&] { return passivations() == entities; }));
  CHECK(alive() == 0);
  for (int i : {0, 1500, entities - 1})
    CHECK(ask(dir, self, counter_id("n" + std::to_string(i)), count_atom::value, int64_t{1})
          == i + 1);
  CHECK(activations(&remote_metrics) == 3);
}

TEST_CASE_FIXTURE(fixture, "placements that keep disagreeing fail the request, never loop") {
  // Two nodes that each believe the other owns every shard.
  auto other = std::make_shared<wager::directory>();
  auto opts = fast_options();
  opts.disagreement_hold = 50ms;
  opts.placement = [other](uint32_t shard) { return other->partition_of_shard(shard); };
  auto b = start(opts, counter_kind(), &another_node_metrics());
  opts.placement = [b](uint32_t shard) { return b.partition_of_shard(shard); };
  auto a = start(opts, counter_kind());
  *other = a;
  caf::scoped_actor self{sys};
  auto r = ask(a, self, counter_id("loop"), caf::get_atom::value);
  REQUIRE_FALSE(r);
  CHECK(wager::code_of(r.error()) == wager::errc::unavailable);
  CHECK(w.activations_of("loop") == 0);
}

TEST_CASE_FIXTURE(fixture, "a message caught between placements that disagree is served once "
                           "they agree") {
  auto b_owns = std::make_shared<std::atomic<bool>>(false);
  auto other = std::make_shared<wager::directory>();
  auto opts = fast_options();
  opts.disagreement_hold = 1h; // only agreement ends the wait here
  opts.placement = [other, b_owns](uint32_t shard) -> wager::shard_route {
    return *b_owns ? caf::actor{} : other->partition_of_shard(shard);
  };
  auto b = start(opts, counter_kind(), &another_node_metrics());
  opts.placement = [b](uint32_t shard) { return b.partition_of_shard(shard); };
  auto a = start(opts, counter_kind());
  *other = a;
  auto answer = ask_later(a, counter_id("late"), 3);
  *b_owns = true;
  b.placement_changed();
  auto r = answer.get();
  REQUIRE(r);
  CHECK(*r == 3);
  CHECK(activations(&other_nodes_metrics.back()) == 1);
}

TEST_CASE_FIXTURE(fixture, "a message for a shard whose owner is unreachable waits for the "
                           "placement, then is served by the new owner") {
  auto refuser = spawn_unreachable_owner();
  auto moved = std::make_shared<std::atomic<bool>>(false);
  auto opts = fast_options();
  opts.unreachable_hold = 1h; // only the placement ends the wait here
  opts.placement = [moved, refuser](uint32_t) -> wager::shard_route {
    return *moved ? wager::shard_route{} : unreachable_route(refuser);
  };
  auto dir = start(opts, counter_kind());
  auto answer = ask_later(dir, counter_id("held"), 7);
  *moved = true;
  dir.placement_changed();
  auto r = answer.get();
  REQUIRE(r);
  CHECK(*r == 7);
  CHECK(activations() == 1);
  caf::anon_send_exit(refuser, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(fixture, "a message for a shard whose owner stays unreachable fails after "
                           "the hold") {
  auto refuser = spawn_unreachable_owner();
  auto opts = fast_options();
  opts.unreachable_hold = 50ms;
  opts.placement = [refuser](uint32_t) { return unreachable_route(refuser); };
  auto dir = start(opts, counter_kind());
  caf::scoped_actor self{sys};
  auto r = ask(dir, self, counter_id("never"), count_atom::value, int64_t{1});
  REQUIRE_FALSE(r);
  CHECK(wager::code_of(r.error()) == wager::errc::unavailable);
  CHECK(wager::message_of(r.error()) == "the node that owns it cannot be reached, retry");
  CHECK(activations() == 0);
  caf::anon_send_exit(refuser, caf::exit_reason::user_shutdown);
}

TEST_CASE_FIXTURE(fixture, "an entity live from an earlier stay of its shard passivates when "
                           "the shard comes back under a new move") {
  // The shard left and came back before the directory saw it go (a node
  // frozen, called down and rejoined): another node served it meanwhile.
  auto move = std::make_shared<std::atomic<uint64_t>>(1);
  auto opts = fast_options();
  opts.placement = [move](uint32_t) {
    wager::shard_route here;
    here.move = *move;
    return here;
  };
  auto dir = start(opts, counter_kind());
  caf::scoped_actor self{sys};
  dir.placement_changed();
  CHECK(ask(dir, self, counter_id("stale"), count_atom::value, int64_t{4}) == 4);
  dir.placement_changed(); // the same move: the entity stays
  CHECK(ask(dir, self, counter_id("stale"), count_atom::value, int64_t{1}) == 5);
  CHECK(passivations() == 0);
  *move = 2;
  dir.placement_changed();
  REQUIRE(wait_until([&] { return passivations() == 1; }));
  CHECK(ask(dir, self, counter_id("stale"), caf::get_atom::value) == 5); // from the store
  CHECK(w.activations_of("stale") == 2);
}

// Two nodes, one partition each, and a shard that moves from a to b while a
// is alive: a's copy must be gone (its state saved) before b activates one.
struct handoff_fixture : fixture {
  std::shared_ptr<std::atomic<bool>> moved = std::make_shared<std::atomic<bool>>(false);
  std::shared_ptr<wager::directory> a_dir = std::make_shared<wager::directory>();
  std::shared_ptr<wager::directory> b_dir = std::make_shared<wager::directory>();
  wager::metrics& b_metrics = another_node_metrics();
  wager::directory a;
  wager::directory b;

  // old_owner_hangs: b asks an actor that never answers instead of a.
  explicit handoff_fixture(bool old_owner_hangs = false, std::chrono::milliseconds timeout = 5s) {
    caf::actor handoff_from;
    if (old_owner_hangs)
      handoff_from = sys.spawn([](caf::event_based_actor* me) -> caf::behavior {
        me->set_default_handler(caf::drop);
        return {[](int32_t) {}};
      });
    auto opts = fast_options();
    opts.partitions = 1;
    opts.handoff_timeout = timeout;
    opts.placement = [moved = moved, b_dir = b_dir](uint32_t shard) -> wager::shard_route {
      return *moved ? b_dir->partition_of_shard(shard) : caf::actor{};
    };
    a = start(opts, counter_kind());
    opts.placement = [moved = moved, a_dir = a_dir,
                      handoff_from](uint32_t shard) -> wager::shard_route {
      if (!*moved)
        return a_dir->partition_of_shard(shard);
      wager::shard_route here;
      here.handoff_from = handoff_from ? handoff_from : a_dir->partition_of_shard(shard);
      here.move = 1;
      return here;
    };
    b = start(opts, counter_kind(), &b_metrics);
    *a_dir = a;
    *b_dir = b;
  }

  void move() {
    *moved = true;
    a.placement_changed();
    b.placement_changed();
  }
};

TEST_CASE_FIXTURE(handoff_fixture, "a shard moving from a live node waits for it: the new "
                                   "owner starts from the old copy's last state") {
  caf::scoped_actor self{sys};
  CHECK(ask(a, self, counter_id("h"), count_atom::value, int64_t{4}) == 4);
  set_journal_holding(true); // a's copy cannot save: it stays passivating
  move();
  REQUIRE(wait_until([&] { return w.is_passivating("h"); }));
  auto answer = ask_later(b, counter_id("h"), 1);
  // b's only partition has handled the request above once it answers this.
  CHECK(b.await_released(5s));
  CHECK(w.activations_of("h") == 1); // b holds the request, activates nothing
  CHECK(answer.wait_for(0s) == std::future_status::timeout);
  set_journal_holding(false);
  auto r = answer.get();
  REQUIRE(r);
  CHECK(*r == 5);
  CHECK(w.activations_of("h") == 2);
  CHECK(activations(&b_metrics) == 1);
  CHECK(a.await_released(5s));
}

TEST_CASE_FIXTURE(handoff_fixture, "a draining node knows when every shard it served was taken") {
  caf::scoped_actor self{sys};
  CHECK(ask(a, self, counter_id("d"), count_atom::value, int64_t{2}) == 2);
  *moved = true;
  a.placement_changed(); // b does not know yet, so nobody asks a for its shards
  CHECK_FALSE(a.await_released(100ms));
  b.placement_changed();
  CHECK(a.await_released(5s));
  CHECK(passivations() == 1);
  CHECK(ask(b, self, counter_id("d"), caf::get_atom::value) == 2);
}

struct silent_old_owner : handoff_fixture {
  silent_old_owner() : handoff_fixture(true, 50ms) {}
};

TEST_CASE_FIXTURE(handoff_fixture, "a draining node nobody asks knows its shards are released once "
                                   "its last entities passivated") {
  caf::scoped_actor self{sys};
  // Many entities, so that some are still live when the drain begins to wait.
  for (int i = 0; i < 3000; ++i)
    REQUIRE(ask(a, self, counter_id("r" + std::to_string(i)), count_atom::value, int64_t{1}) == 1);
  *moved = true;
  a.placement_changed(); // b never learns of it: only release_grace releases
  CHECK(a.await_released(20s));
  CHECK(alive() == 0);
}

TEST_CASE_FIXTURE(silent_old_owner, "a shard whose old owner never releases it is served after "
                                    "the hand-off timeout") {
  caf::scoped_actor self{sys};
  move();
  CHECK(ask(b, self, counter_id("s"), count_atom::value, int64_t{1}) == 1);
  CHECK(activations(&b_metrics) == 1);
}

TEST_CASE_FIXTURE(fixture, "stopping the directory stops its entities") {
  caf::scoped_actor self{sys};
  auto before = sys.registry().running();
  auto dir = start(fast_options(), counter_kind());
  for (auto key : {"p", "q", "r"})
    CHECK(ask(dir, self, counter_id(key), caf::get_atom::value) == 0);
  CHECK(sys.registry().running() >= before + 3);
  dir.stop();
  CHECK(wait_until([&] { return sys.registry().running() == before; }));
}

TEST_CASE_FIXTURE(fixture, "options out of bounds and malformed kinds are refused") {
  auto refused = [&](wager::directory_options opts, std::vector<wager::entity_kind> kinds) {
    auto dir = wager::spawn_directory(sys, std::move(opts), std::move(kinds), metrics);
    return !dir && wager::code_of(dir.error()) == wager::errc::invalid_field;
  };
  auto slash = counter_kind();
  slash.name = "bad/name";
  CHECK(refused({}, {slash}));
  CHECK(refused({}, {counter_kind(), counter_kind()}));
  CHECK(refused({}, {counter_kind(1h, 0)}));
  CHECK(refused({}, {}));
  wager::directory_options no_shards;
  no_shards.shards = 0;
  CHECK(refused(no_shards, {counter_kind()}));
}

TEST_CASE_FIXTURE(fixture, "a request the entity never answers fails with request_timeout, "
                           "for a blocking and for an event-based requester") {
  // An entity that keeps every request open and never answers it.
  auto open_requests = std::make_shared<std::vector<caf::response_promise>>();
  wager::entity_kind silent{"silent", [open_requests](const wager::activation_context& ctx) {
                              return ctx.system.spawn(
                                [open_requests](caf::event_based_actor* self) -> caf::behavior {
                                  return {[=](count_atom, int64_t) -> caf::response_promise {
                                            auto rp = self->make_response_promise();
                                            open_requests->push_back(rp);
                                            return rp;
                                          },
                                          [](wager::passivate_atom) {}};
                                });
                            }};
  auto dir = start(fast_options(), silent);
  entity_id id{"silent", "a"};

  caf::scoped_actor self{sys};
  caf::error blocking_error;
  dir.request(self, 50ms, id, count_atom::value, int64_t{1})
    .receive([](int64_t) { FAIL("the silent entity answered"); },
             [&](caf::error& err) { blocking_error = std::move(err); });
  CHECK(blocking_error == caf::sec::request_timeout);

  auto out = std::make_shared<std::promise<caf::error>>();
  auto answer = out->get_future();
  sys.spawn([=](caf::event_based_actor* me) {
    dir.request(me, 50ms, id, count_atom::value, int64_t{2})
      .then([=](int64_t) { out->set_value(caf::make_error(caf::sec::unexpected_response)); },
            [=](caf::error& err) { out->set_value(std::move(err)); });
  });
  REQUIRE(answer.wait_for(10s) == std::future_status::ready);
  CHECK(answer.get() == caf::sec::request_timeout);
}

namespace {

// An entity kind whose entities keep every (count_atom, n) request open and
// never answer it; `held` counts the requests they hold.
struct held_requests {
  std::mutex mutex;
  std::vector<caf::response_promise> promises; // REQUIRES: mutex is held
  std::atomic<size_t> count{0};
};

wager::entity_kind silent_kind(std::shared_ptr<held_requests> held) {
  return {"silent", [held](const wager::activation_context& ctx) {
            return ctx.system.spawn([held](caf::event_based_actor* self) -> caf::behavior {
              return {[=](count_atom, int64_t) -> caf::response_promise {
                        auto rp = self->make_response_promise();
                        std::lock_guard lock{held->mutex};
                        held->promises.push_back(rp);
                        ++held->count;
                        return rp;
                      },
                      [](wager::passivate_atom) {}};
            });
          }};
}

// directory::call from this (non-actor) thread; the answer as a future.
template <class T>
std::future<caf::expected<T>> call(const wager::directory& dir, caf::duration timeout,
                                   const entity_id& id, caf::message msg) {
  auto out = std::make_shared<std::promise<caf::expected<T>>>();
  auto answer = out->get_future();
  dir.call<T>(timeout, id, std::move(msg),
              [out](caf::expected<T> x) { out->set_value(std::move(x)); });
  return answer;
}

} // namespace

TEST_CASE_FIXTURE(fixture, "calls from outside actors get the entity's answers, and time out "
                           "when it is silent, without an actor per call") {
  auto held = std::make_shared<held_requests>();
  auto dir = start(fast_options(), {counter_kind(), silent_kind(held)});
  auto running = sys.registry().running();
  std::vector<std::future<caf::expected<int64_t>>> answers;
  for (int i = 0; i < 100; ++i)
    answers.push_back(call<int64_t>(dir, caf::duration{10s}, counter_id("c"),
                                    caf::make_message(count_atom::value, int64_t{1})));
  std::set<int64_t> counts;
  for (auto& a : answers) {
    REQUIRE(a.wait_for(10s) == std::future_status::ready);
    auto x = a.get();
    REQUIRE(x);
    counts.insert(*x);
  }
  CHECK(counts.size() == 100);
  CHECK(*counts.rbegin() == 100);
  // The counter entity was already live after the first answer: no actor
  // came or went per call.
  CHECK(sys.registry().running() == running + 1);

  auto silent = call<int64_t>(dir, caf::duration{50ms}, entity_id{"silent", "a"},
                              caf::make_message(count_atom::value, int64_t{1}));
  REQUIRE(silent.wait_for(10s) == std::future_status::ready);
  auto timed_out = silent.get();
  REQUIRE_FALSE(timed_out);
  CHECK(timed_out.error() == caf::sec::request_timeout);
}

TEST_CASE_FIXTURE(fixture, "a call unanswered when the directory stops hears unavailable, and so "
                           "does one made after") {
  auto held = std::make_shared<held_requests>();
  auto dir = start(fast_options(), silent_kind(held));
  entity_id id{"silent", "a"};
  auto pending = call<int64_t>(dir, caf::duration{3600s}, id,
                               caf::make_message(count_atom::value, int64_t{1}));
  // The request reached the entity before the stop.
  REQUIRE(wait_until([&] { return held->count.load() == 1; }));
  dir.stop();
  REQUIRE(pending.wait_for(10s) == std::future_status::ready);
  auto stopped = pending.get();
  REQUIRE_FALSE(stopped);
  CHECK(wager::code_of(stopped.error()) == wager::errc::unavailable);

  auto after = call<int64_t>(dir, caf::duration{3600s}, id,
                             caf::make_message(count_atom::value, int64_t{1}));
  REQUIRE(after.wait_for(10s) == std::future_status::ready);
  auto refused = after.get();
  REQUIRE_FALSE(refused);
  CHECK(wager::code_of(refused.error()) == wager::errc::unavailable);
}
