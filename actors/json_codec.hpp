#pragma once

// Small helpers for the JSON payloads of events and snapshots: reading a
// field of a known type, or failing the whole decode. Payloads are written
// by this program, so a field of the wrong type means corruption or a
// missing upcaster, never user input (the gateway validates that).

#include "wager/actors/ids.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/slip.hpp"

#include <boost/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace wager::json_codec {

namespace json = boost::json;

struct decode_error {};

inline const json::value& field(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  if (v == nullptr)
    throw decode_error{};
  return *v;
}

inline int64_t get_int(const json::object& o, std::string_view key) {
  auto& v = field(o, key);
  if (v.is_int64())
    return v.get_int64();
  if (v.is_uint64() && v.get_uint64() <= static_cast<uint64_t>(INT64_MAX))
    return static_cast<int64_t>(v.get_uint64());
  throw decode_error{};
}

inline std::string get_string(const json::object& o, std::string_view key) {
  auto& v = field(o, key);
  if (!v.is_string())
    throw decode_error{};
  return std::string{v.get_string()};
}

// A 64-bit unsigned number stored as decimal text (JSON numbers stop being
// exact past 2^53 in many readers).
inline uint64_t get_u64_text(const json::object& o, std::string_view key) {
  auto text = get_string(o, key);
  if (text.empty() || text.size() > 20)
    throw decode_error{};
  uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      throw decode_error{};
    auto next = value * 10 + static_cast<uint64_t>(c - '0');
    if (next / 10 != value)
      throw decode_error{};
    value = next;
  }
  return value;
}

inline bool get_bool(const json::object& o, std::string_view key) {
  auto& v = field(o, key);
  if (!v.is_bool())
    throw decode_error{};
  return v.get_bool();
}

inline const json::object& get_object(const json::value& v) {
  if (!v.is_object())
    throw decode_error{};
  return v.get_object();
}

inline const json::array& get_array(const json::object& o, std::string_view key) {
  auto& v = field(o, key);
  if (!v.is_array())
    throw decode_error{};
  return v.get_array();
}

inline money get_money(const json::object& o, std::string_view key) {
  return money{get_int(o, key)};
}

inline price get_price(const json::object& o, std::string_view key) {
  return price{static_cast<int32_t>(get_int(o, key))};
}

// A fraction as slip.hpp writes it ("1/4"), or the decode fails.
inline ratio get_ratio(const json::object& o, std::string_view key) {
  auto r = parse_ratio(get_string(o, key));
  if (!r)
    throw decode_error{};
  return *r;
}

inline json::array string_array(const std::vector<std::string>& items) {
  json::array out;
  for (auto& item : items)
    out.push_back(json::string{item});
  return out;
}

// A list of strings; empty when the key is absent.
inline std::vector<std::string> strings_of(const json::object& o, std::string_view key) {
  std::vector<std::string> out;
  if (!o.contains(key))
    return out;
  for (auto& v : get_array(o, key)) {
    if (!v.is_string())
      throw decode_error{};
    out.emplace_back(v.get_string());
  }
  return out;
}

template <class Id>
Id get_id(const json::object& o, std::string_view key) {
  return Id{get_string(o, key)};
}

// Runs `decode`, turning a decode_error into nullopt.
template <class F>
auto try_decode(F&& decode) -> std::optional<decltype(decode())> {
  try {
    return decode();
  } catch (const decode_error&) {
    return std::nullopt;
  }
}

} // namespace wager::json_codec
