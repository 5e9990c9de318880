#pragma once

// Reading the fields of a JSON object: the first problem wins and becomes a
// field_error. One reader for the client API's bodies (gateway/api_json.cpp
// wraps it) and the feed's messages (feed_message.cpp), so an admin POST and
// a feed `market` message fail with the same words.

#include "wager/actors/feed_message.hpp"

#include <boost/json.hpp>

namespace wager::json_fields {

namespace json = boost::json;

inline std::string_view json_kind_name(const json::value& v) {
  switch (v.kind()) {
    case json::kind::null: return "null";
    case json::kind::bool_: return "a boolean";
    case json::kind::int64:
    case json::kind::uint64: return "an integer";
    case json::kind::double_: return "a number with a fraction";
    case json::kind::string: return "a string";
    case json::kind::array: return "an array";
    case json::kind::object: return "an object";
  }
  return "a value";
}

// Reads fields of one object; the first problem wins. The messages are the
// client API's (gateway/api_json.cpp), word for word, so an admin POST and a
// feed `market` message fail alike.
class reader {
public:
  reader(const json::object& o, field_error& error) : o_(o), error_(error) {}

  void allow(std::initializer_list<std::string_view> allowed,
             std::initializer_list<std::string_view> extra = {}) {
    for (auto& kv : o_) {
      bool known = false;
      for (auto a : allowed)
        known |= kv.key() == a;
      for (auto a : extra)
        known |= kv.key() == a;
      if (!known) {
        fail(errc::unknown_field, kv.key(), "unknown field " + std::string{kv.key()});
        return;
      }
    }
  }

  void fail(errc code, std::string_view field, std::string message) {
    if (error_.code != errc::none)
      return;
    error_.code = code;
    error_.field = std::string{field};
    error_.message = std::move(message);
  }

  bool ok() const { return error_.code == errc::none; }

  const json::value* get(std::string_view key, bool required) {
    auto* v = o_.if_contains(key);
    if (v && v->is_null() && !required)
      return nullptr;
    if (!v && required)
      fail(errc::missing_field, key, std::string{key} + " is required");
    return v;
  }

  std::optional<std::string> id(std::string_view key, bool required = true) {
    auto* v = get(key, required);
    if (!v)
      return std::nullopt;
    if (!v->is_string() || !valid_id(v->as_string())) {
      fail(errc::invalid_field, key,
           std::string{key} + " must be 1 to 64 characters of [A-Za-z0-9_.:-]");
      return std::nullopt;
    }
    return std::string{v->as_string()};
  }

  std::optional<std::string> string(std::string_view key, size_t min, size_t max,
                                    bool required = true) {
    auto* v = get(key, required);
    if (!v)
      return std::nullopt;
    if (!v->is_string()) {
      fail(errc::invalid_field, key,
           std::string{key} + " must be a string, not " + std::string{json_kind_name(*v)});
      return std::nullopt;
    }
    auto& s = v->as_string();
    if (s.size() < min || s.size() > max) {
      fail(errc::invalid_field, key,
           std::string{key} + " must be " + std::to_string(min) + " to " + std::to_string(max)
             + " characters");
      return std::nullopt;
    }
    return std::string{s};
  }

  std::optional<int64_t> integer(std::string_view key, int64_t min, int64_t max,
                                 bool required = true) {
    auto* v = get(key, required);
    if (!v)
      return std::nullopt;
    if (!v->is_int64() || v->as_int64() < min || v->as_int64() > max) {
      fail(errc::invalid_field, key,
           std::string{key} + " must be an integer from " + std::to_string(min) + " to "
             + std::to_string(max));
      return std::nullopt;
    }
    return v->as_int64();
  }

  std::optional<int64_t> amount(std::string_view key, bool required = true) {
    return integer(key, amount_min_minor, amount_max_minor, required);
  }

  std::optional<price> price_of(std::string_view key, bool required = true) {
    auto* v = get(key, required);
    if (!v)
      return std::nullopt;
    std::optional<price> p;
    if (v->is_string())
      p = parse_price(v->as_string());
    if (!p) {
      fail(errc::invalid_field, key,
           std::string{key}
             + " must be a string of decimal odds with at most two decimals, \"1.01\" to "
               "\"1000.00\"");
      return std::nullopt;
    }
    return p;
  }

  std::optional<bool> boolean(std::string_view key, bool required = true) {
    auto* v = get(key, required);
    if (!v)
      return std::nullopt;
    if (!v->is_bool()) {
      fail(errc::invalid_field, key, std::string{key} + " must be true or false");
      return std::nullopt;
    }
    return v->as_bool();
  }

  const json::array* array(std::string_view key, bool required = true) {
    auto* v = get(key, required);
    if (!v)
      return nullptr;
    if (!v->is_array()) {
      fail(errc::invalid_field, key, std::string{key} + " must be an array");
      return nullptr;
    }
    return &v->as_array();
  }

  const json::object* object(std::string_view key, bool required = true) {
    auto* v = get(key, required);
    if (!v)
      return nullptr;
    if (!v->is_object()) {
      fail(errc::invalid_field, key, std::string{key} + " must be an object");
      return nullptr;
    }
    return &v->as_object();
  }

private:
  const json::object& o_;
  field_error& error_;
};

} // namespace wager::json_fields
