#pragma once

// The message types of one header, each with the name CAF knows it by on the
// wire. A header that defines messages which may cross nodes lists them
// once, next to their definitions:
//
//   inline constexpr message_types wallet_messages{
//     message_type<deposit_cmd>{"wager::deposit_cmd"}, ...};
//
// That list is what every node registers (add_message_types, before its
// actor system starts) and what tests/cluster/message_types.test.cpp sends
// through CAF's serializer by name, so a message added to the list is
// registered everywhere, and a name that differs from its inspect()'s
// type_name is caught before it reaches another node. add_message_type<T>
// also registers std::vector<T> as "std::vector<name>".

#include <cstddef>
#include <tuple>
#include <type_traits>
#include <utility>

namespace wager {

template <class T>
struct message_type {
  using type = T;
  const char* name; // as CAF registers it, e.g. "wager::deposit_cmd"
};

template <class... Ts>
struct message_types {
  std::tuple<message_type<Ts>...> entries;

  constexpr explicit message_types(message_type<Ts>... xs) : entries{xs...} {}

  static constexpr size_t size() noexcept { return sizeof...(Ts); }

  // Calls f(message_type<T>) for each entry, in order.
  template <class F>
  constexpr void for_each(F&& f) const {
    std::apply([&f](const auto&... e) { (f(e), ...); }, entries);
  }
};

// Registers every type of `types` with `cfg` (a caf::actor_system_config).
template <class Config, class... Ts>
void add_message_types(Config& cfg, const message_types<Ts...>& types) {
  types.for_each([&cfg](const auto& e) {
    cfg.template add_message_type<typename std::decay_t<decltype(e)>::type>(e.name);
  });
}

} // namespace wager
