#pragma once

// Strong types for the ids that cross actor boundaries, so a market id can
// never be passed where a user id belongs. All are API ids: 1 to 64
// characters of [A-Za-z0-9_.:-].

#include "wager/runtime/message_types.hpp"

#include <compare>
#include <functional>
#include <string>
#include <string_view>

namespace wager {

constexpr bool valid_id(std::string_view text) {
  if (text.empty() || text.size() > 64)
    return false;
  for (char c : text) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == ':' || c == '-';
    if (!ok)
      return false;
  }
  return true;
}

template <class Tag>
struct named_id {
  std::string value;

  auto operator<=>(const named_id&) const = default;
  bool empty() const { return value.empty(); }
  const std::string& str() const { return value; }
};

template <class Inspector, class Tag>
typename Inspector::result_type inspect(Inspector& f, named_id<Tag>& x) {
  return f(x.value);
}

using user_id = named_id<struct user_id_tag>;
using market_id = named_id<struct market_id_tag>;
using selection_id = named_id<struct selection_id_tag>;
using bet_id = named_id<struct bet_id_tag>;
using request_id = named_id<struct request_id_tag>;

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types id_messages{
  message_type<user_id>{"wager::user_id"},
  message_type<market_id>{"wager::market_id"},
  message_type<bet_id>{"wager::bet_id"},
};

} // namespace wager

template <class Tag>
struct std::hash<wager::named_id<Tag>> {
  size_t operator()(const wager::named_id<Tag>& id) const noexcept {
    return std::hash<std::string>{}(id.value);
  }
};
