// Every message a node registers for other nodes (the lists of
// runtime/message_types.hpp that cluster/entity_messages.hpp gathers, and
// the cluster protocol's own) crosses CAF's serializer by its name and comes
// back the same, alone, in a vector and inside a message: what a request
// routed to another node and its answer go through. A type missing from the
// registry fails here instead of arriving at the other node as an empty
// message (CAF-0.17.md, "Remote use needs registration").

#include "wager/cluster/entity_messages.hpp"
#include "wager/cluster/protocol.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <tuple>
#include <typeinfo>
#include <vector>

using namespace wager;

namespace {

// Reads the name an inspect() overload gives its type with
// caf::meta::type_name, if it gives one; nothing else.
struct type_name_reader {
  using result_type = void;
  static constexpr bool reads_state = true;
  static constexpr bool writes_state = false;

  std::string name;

  template <class... Ts>
  void operator()(Ts&&... xs) {
    (take(xs), ...);
  }

  void take(const caf::meta::type_name_t& x) { name = x.value; }

  template <class T>
  void take(const T&) {}
};

template <class T>
std::string name_from_inspect() {
  T x{};
  type_name_reader reader;
  inspect(reader, x);
  return reader.name;
}

template <class T>
std::vector<char> bytes_of(caf::actor_system& sys, const T& x) {
  std::vector<char> buf;
  caf::binary_serializer sink{sys, buf};
  auto err = sink(const_cast<T&>(x));
  REQUIRE_MESSAGE(!err, sys.render(err));
  return buf;
}

// x, its vector and a message holding both, through the registry by name.
template <class T>
void round_trip(caf::actor_system& sys, const message_type<T>& entry) {
  CAPTURE(entry.name);
  auto& types = sys.types();
  T x{};
  auto buf = bytes_of(sys, x);

  // By name, as the receiving node finds it.
  auto value = types.make_value(entry.name);
  REQUIRE_MESSAGE(value, entry.name << " is not registered");
  REQUIRE(value->type().second != nullptr);
  CHECK(*value->type().second == typeid(T));
  CHECK(types.portable_name(0, &typeid(T)) == entry.name);
  caf::binary_deserializer source{sys, buf};
  REQUIRE_FALSE(value->load(source));
  std::vector<char> again;
  caf::binary_serializer sink{sys, again};
  REQUIRE_FALSE(value->save(sink));
  CHECK(again == buf);
  CHECK(value->stringify() == caf::deep_to_string(x));

  // The vector CAF registers beside it.
  auto vector_name = std::string{"std::vector<"} + entry.name + ">";
  CHECK(types.portable_name(0, &typeid(std::vector<T>)) == vector_name);

  // Inside a message, the way a request crosses nodes.
  auto original = caf::make_message(x, std::vector<T>{x, x});
  auto wire = bytes_of(sys, original);
  caf::message copy;
  caf::binary_deserializer message_source{sys, wire};
  REQUIRE_FALSE(message_source(copy));
  REQUIRE(copy.match_elements<T, std::vector<T>>());
  CHECK(bytes_of(sys, copy) == wire);

  // The name in the list is the name inspect() gives, where it gives one.
  auto inspected = name_from_inspect<T>();
  if (!inspected.empty())
    CHECK(inspected == std::string{entry.name});
}

template <class... Ts>
void round_trip_all(caf::actor_system& sys, const message_types<Ts...>& list,
                    std::set<std::string>& names) {
  list.for_each([&](const auto& entry) {
    CHECK_MESSAGE(names.insert(entry.name).second, entry.name << " is listed twice");
    round_trip(sys, entry);
  });
}

} // namespace

TEST_CASE("every registered message crosses the serializer by its name and comes back the same") {
  caf::actor_system_config cfg;
  add_cluster_message_types(cfg);
  add_entity_command_types(cfg);
  caf::actor_system sys{cfg};
  std::set<std::string> names;
  std::apply([&](const auto&... lists) { (round_trip_all(sys, lists, names), ...); },
             entity_message_lists);
  round_trip_all(sys, cluster_protocol_messages, names);
  // The commands of every entity kind are there, not only a few.
  CHECK(names.size() >= 50);
  for (auto name : {"wager::entity_id", "wager::deposit_cmd", "wager::place_bet_cmd",
                    "wager::accept_bet_cmd", "wager::bet_decision", "wager::session_request_cmd",
                    "wager::create_user_cmd", "wager::event_position", "wager::heartbeat"})
    CHECK_MESSAGE(names.count(name) == 1, name);
}

TEST_CASE("a node that did not register the lists cannot read these messages by name") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  for (auto name : {"wager::deposit_cmd", "wager::bet_decision", "wager::entity_id"})
    CHECK_FALSE(sys.types().make_value(name));
}

TEST_CASE("the name an inspect() overload gives is read, and none where it gives none") {
  CHECK(name_from_inspect<deposit_cmd>() == "wager::deposit_cmd");
  CHECK(name_from_inspect<heartbeat>() == "wager::heartbeat");
  CHECK(name_from_inspect<money>().empty());
}
