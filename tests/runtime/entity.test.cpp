#include "wager/runtime/entity.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <vector>

using namespace std::chrono_literals;
using wager::entity_id;

namespace {

using state_atom = caf::atom_constant<caf::atom("state")>;

} // namespace

TEST_CASE("an entity id prints as kind/key and parses back") {
  entity_id id{"wallet", "u42"};
  CHECK(to_string(id) == "wallet/u42");
  CHECK(wager::parse_entity_id("wallet/u42") == id);
  // The kind ends at the first '/': keys may contain more.
  auto nested = wager::parse_entity_id("session/abc/def");
  REQUIRE(nested);
  CHECK(nested->kind == "session");
  CHECK(nested->key == "abc/def");
}

TEST_CASE("parsing refuses text without a kind or a key") {
  CHECK_FALSE(wager::parse_entity_id("wallet"));
  CHECK_FALSE(wager::parse_entity_id("/u42"));
  CHECK_FALSE(wager::parse_entity_id("wallet/"));
  CHECK_FALSE(wager::parse_entity_id(""));
}

TEST_CASE("the shard of an entity is a stable FNV-1a hash of kind/key") {
  // Values from an independent FNV-1a 64 implementation. Every node of a
  // cluster, of every build, must agree on them: never change these.
  CHECK(wager::entity_hash({"wallet", "u42"}) == 1903674942423227846ull);
  CHECK(wager::entity_hash({"market", "m-1001"}) == 7097953584493412742ull);
  CHECK(wager::entity_hash({"session", "abc/def"}) == 2335772533085872252ull);
  CHECK(wager::entity_hash({"a", "b"}) == 16582468340193742689ull);
  CHECK(wager::shard_of({"wallet", "u42"}, 256) == 198);
  CHECK(wager::shard_of({"market", "m-1001"}, 256) == 134);
  CHECK(wager::shard_of({"session", "abc/def"}, 256) == 124);
  CHECK(wager::shard_of({"wallet", "u42"}, 7) == 5);
  CHECK(wager::shard_of({"a", "b"}, 1) == 0);
}

TEST_CASE("a routed message with an entity id survives serialization between nodes") {
  caf::actor_system_config cfg;
  wager::add_entity_message_types(cfg);
  caf::actor_system sys{cfg};
  auto original = caf::make_message(wager::route_atom::value, entity_id{"wallet", "u42"},
                                    caf::make_message(int64_t{7}, std::string{"deposit"}));
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  REQUIRE_FALSE(sink(original));
  caf::message copy;
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(source(copy));
  REQUIRE(copy.match_elements<wager::route_atom, entity_id, caf::message>());
  CHECK(copy.get_as<entity_id>(1) == entity_id{"wallet", "u42"});
  auto inner = copy.get_as<caf::message>(2);
  REQUIRE(inner.match_elements<int64_t, std::string>());
  CHECK(inner.get_as<int64_t>(0) == 7);
  CHECK(inner.get_as<std::string>(1) == "deposit");
}

TEST_CASE("a recovering entity handles held messages in order once its state is in place") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  // The entity appends every int to its recovered state and answers with
  // the result, so the answers show the order in which it handled them.
  auto entity = sys.spawn([](caf::event_based_actor* self) -> caf::behavior {
    wager::begin_recovery(self);
    return {
      [=](state_atom, std::string recovered) {
        auto state = std::make_shared<std::string>(std::move(recovered));
        wager::end_recovery(self, {[=](int x) {
                              *state += std::to_string(x);
                              return *state;
                            }});
      },
    };
  });
  caf::scoped_actor self{sys};
  for (int i = 1; i <= 3; ++i)
    self->send(entity, i);
  self->send(entity, state_atom::value, std::string{"r"});
  std::vector<std::string> got;
  for (int i = 0; i < 3; ++i)
    self->receive([&](const std::string& s) { got.push_back(s); },
                  caf::after(5s) >> [&] { FAIL("no answer from the entity"); });
  CHECK(got == std::vector<std::string>{"r1", "r12", "r123"});
  caf::anon_send_exit(entity, caf::exit_reason::user_shutdown);
}
