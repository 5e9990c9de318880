// Directories of three nodes in one process: each node its own actor system
// with the middleman, connected over 127.0.0.1, so a relayed request crosses
// a real connection and a node's end closes it. A request goes from a through
// b (which gave the shard away) to the entity on c; b then goes before the
// answer comes back to it.

#include "wager/runtime/directory.hpp"

#include "wager/runtime/errors.hpp"
#include "wager/runtime/metrics.hpp"
#include "support/wait.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>
#include <doctest/doctest.h>

#include <atomic>
#include <future>
#include <memory>
#include <mutex>
#include <optional>

using namespace std::chrono_literals;
using wager::entity_id;
using wager::test::wait_until;

namespace {

using count_atom = caf::atom_constant<caf::atom("count")>;

// What the entity on c saw. Its first request is answered only when the
// test releases it (never, if its node's caller is gone): the answer of the
// first try is still on its way when b goes.
struct gate {
  std::mutex mutex;
  int seen = 0;                           // REQUIRES: mutex is held
  std::optional<caf::response_promise> held; // REQUIRES: mutex is held

  int seen_count() {
    std::lock_guard guard{mutex};
    return seen;
  }
};

caf::behavior gated_counter(caf::event_based_actor* self, gate* g) {
  return {
    [=](count_atom, int64_t n) -> caf::result<int64_t> {
      std::lock_guard guard{g->mutex};
      if (++g->seen == 1) {
        g->held = self->make_response_promise();
        return caf::delegated<int64_t>{};
      }
      return n;
    },
    [=](wager::passivate_atom) { self->quit(); },
  };
}

struct node {
  wager::metrics metrics; // outlives the actor system, as directories need
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  wager::directory dir;
  uint16_t port = 0;

  node(wager::placement_fn placement, gate* g) {
    cfg.load<caf::io::middleman>();
    cfg.add_message_type<entity_id>("wager::entity_id");
    sys = std::make_unique<caf::actor_system>(cfg);
    wager::directory_options opts;
    opts.partitions = 1;
    opts.placement = std::move(placement);
    std::vector<wager::entity_kind> kinds{
      {"counter",
       [g](const wager::activation_context& ctx) { return ctx.system.spawn(gated_counter, g); },
       std::chrono::hours{1}, 100}};
    auto spawned = wager::spawn_directory(*sys, std::move(opts), std::move(kinds), metrics);
    REQUIRE(spawned);
    dir = *spawned;
    auto published = sys->middleman().publish(dir.partition_of_shard(0), 0, "127.0.0.1", true);
    REQUIRE(published);
    port = *published;
  }

  // The directory of `other`, as this node's proxy of it.
  caf::actor proxy_of(const node& other) {
    auto handle = sys->middleman().remote_actor("127.0.0.1", other.port);
    REQUIRE(handle);
    return *handle;
  }

  // The directory stops, then the node: its connections close.
  void stop() {
    dir.stop();
    dir = wager::directory{};
    sys.reset();
  }

  ~node() {
    if (sys)
      stop();
  }
};

// A placement that sends every shard to whatever `owner` holds (none: this
// node), switched by the test.
struct switchable_owner {
  std::shared_ptr<std::mutex> mutex = std::make_shared<std::mutex>();
  std::shared_ptr<caf::actor> owner = std::make_shared<caf::actor>();

  wager::placement_fn fn() const {
    return [mutex = mutex, owner = owner](uint32_t) -> wager::shard_route {
      std::lock_guard guard{*mutex};
      return *owner;
    };
  }
  void set(caf::actor to) {
    std::lock_guard guard{*mutex};
    *owner = std::move(to);
  }
};

struct three_nodes {
  gate g;
  switchable_owner a_routes;
  switchable_owner b_routes;
  node c{nullptr, &g}; // serves every shard
  node b{b_routes.fn(), &g};
  node a{a_routes.fn(), &g};
  caf::actor c_seen_from_a = a.proxy_of(c);

  three_nodes() {
    a_routes.set(a.proxy_of(b)); // a still sends the shard to b
    b_routes.set(b.proxy_of(c)); // b gave it to c
  }

  // Proxies and promises belong to the actor system that made them: each
  // goes before its system does.
  ~three_nodes() {
    {
      std::lock_guard guard{g.mutex};
      g.held.reset();
    }
    a_routes.set({});
    b_routes.set({});
    c_seen_from_a = caf::actor{};
  }

  void stop_b() {
    b_routes.set({});
    b.stop();
  }

  // Counts n on counter/k through a's directory from an actor of a's; the
  // answer in the future.
  std::future<caf::expected<int64_t>> ask_through_a(int64_t n) {
    auto out = std::make_shared<std::promise<caf::expected<int64_t>>>();
    auto answer = out->get_future();
    a.sys->spawn([out, n, dir = a.dir](caf::event_based_actor* self) {
      dir.request(self, 10s, entity_id{"counter", "k"}, count_atom::value, n)
        .then([=](int64_t v) { out->set_value(v); self->quit(); },
              [=](caf::error& err) { out->set_value(std::move(err)); self->quit(); });
    });
    return answer;
  }
};

} // namespace

TEST_CASE_FIXTURE(three_nodes, "a request whose shard moved away from a node that goes before "
                               "answering is sent to the new owner: the caller gets an answer, "
                               "not a failure") {
  auto answer = ask_through_a(7);
  REQUIRE(wait_until([&] { return g.seen_count() == 1; }, 10s));
  // a hears that the shard moved (b drained), then b goes with the request
  // it passed on to c unanswered: a sends it to c again.
  a_routes.set(c_seen_from_a);
  a.dir.placement_changed();
  stop_b();
  REQUIRE(answer.wait_for(10s) == std::future_status::ready);
  auto got = answer.get();
  REQUIRE_MESSAGE(got, wager::message_of(got.error()));
  CHECK(*got == 7);
  CHECK(g.seen_count() == 2); // the command came twice: entities make it idempotent
}

TEST_CASE_FIXTURE(three_nodes, "a request in flight to a node that goes while it still owns the "
                               "shard fails at once with unavailable, retry") {
  auto answer = ask_through_a(7);
  REQUIRE(wait_until([&] { return g.seen_count() == 1; }, 10s));
  stop_b(); // a's placement still names b: a crash, as a sees it
  REQUIRE(answer.wait_for(5s) == std::future_status::ready);
  auto got = answer.get();
  REQUIRE_FALSE(got);
  CHECK(wager::code_of(got.error()) == wager::errc::unavailable);
  CHECK(wager::message_of(got.error()) == "the node that owns it was lost, retry");
  CHECK(g.seen_count() == 1);
}
