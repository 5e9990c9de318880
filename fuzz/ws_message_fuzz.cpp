// libFuzzer target over a client's WebSocket messages (shared/API.md
// "Stream"), as gateway/stream_client_message.hpp reads them: the input is
// one text frame. Besides not crashing, hanging or leaking, it checks:
//   - an error: its code is invalid_json (no field, and only for a frame
//     that is not a JSON object), missing_field (markets) or invalid_field
//     (op or markets), with a message;
//   - what is read agrees with the contract: auth carries its token (or ""),
//     subscribe and unsubscribe carry exactly the frame's markets, each a
//     valid id, in order; anything else is an error about `op`;
//   - a message read, written back as JSON, reads the same;
//   - the same JSON, however spelled, reads the same.

#include "wager/actors/ids.hpp"
#include "wager/gateway/stream_client_message.hpp"
#include "wager/runtime/assert.hpp"

#include <boost/json.hpp>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

using namespace wager;
namespace json = boost::json;

namespace {

std::string write_message(const stream_client_message& m) {
  json::object o{{"op", to_string(m.op)}};
  if (m.op == stream_client_op::auth) {
    o["token"] = m.token;
  } else {
    json::array markets;
    for (auto& id : m.markets)
      markets.push_back(json::string{id});
    o["markets"] = std::move(markets);
  }
  return json::serialize(o);
}

bool same(const stream_client_read& a, const stream_client_read& b) {
  if (a.ok() != b.ok())
    return false;
  if (a.ok())
    return write_message(*a.message) == write_message(*b.message);
  return a.error.code == b.error.code && a.error.field == b.error.field
         && a.error.message == b.error.message;
}

// Boost.JSON reads a number too large for a double as infinity, and writes
// infinity as `Infinity`, which is not JSON: such a document has no other
// spelling to compare with.
bool has_infinity(const json::value& v) {
  if (v.is_double())
    return !std::isfinite(v.get_double());
  if (v.is_array()) {
    for (auto& e : v.get_array())
      if (has_infinity(e))
        return true;
  } else if (v.is_object()) {
    for (auto& kv : v.get_object())
      if (has_infinity(kv.value()))
        return true;
  }
  return false;
}

void check_error(const stream_client_error& e) {
  WAGER_ASSERT(!e.message.empty(), "an error without a message");
  if (e.code == "invalid_json")
    WAGER_ASSERT(e.field.empty(), "invalid_json names a field");
  else if (e.code == "missing_field")
    WAGER_ASSERT(e.field == "markets", "missing_field names another field than markets");
  else
    WAGER_ASSERT(e.code == "invalid_field" && (e.field == "op" || e.field == "markets"),
                 "an error code or field outside the documented set");
}

// The contract (shared/API.md "Stream"), read off the parsed frame.
void check_contract(const json::value& doc, const stream_client_read& r) {
  if (!doc.is_object()) {
    WAGER_ASSERT(!r.ok() && r.error.code == "invalid_json", "a frame that is no object was read");
    return;
  }
  auto& o = doc.get_object();
  WAGER_ASSERT(r.ok() || r.error.code != "invalid_json", "a JSON object called invalid_json");
  auto* op = o.if_contains("op");
  std::string_view name = op && op->is_string() ? std::string_view{op->get_string()} : "";
  if (name == "auth") {
    auto* token = o.if_contains("token");
    WAGER_ASSERT(r.ok() && r.message->op == stream_client_op::auth, "auth not read as auth");
    WAGER_ASSERT(r.message->token
                   == (token && token->is_string() ? std::string_view{token->get_string()} : ""),
                 "auth read with another token");
    WAGER_ASSERT(r.message->markets.empty(), "auth read with markets");
    return;
  }
  if (name != "subscribe" && name != "unsubscribe") {
    WAGER_ASSERT(!r.ok() && r.error.field == "op", "an unknown op was not refused for op");
    return;
  }
  auto* markets = o.if_contains("markets");
  if (!markets || !markets->is_array()) {
    WAGER_ASSERT(!r.ok() && r.error.field == "markets", "markets missing or not an array read");
    return;
  }
  auto& ids = markets->get_array();
  bool all_ids = true;
  for (auto& id : ids)
    all_ids = all_ids && id.is_string() && valid_id(id.get_string());
  if (!all_ids) {
    WAGER_ASSERT(!r.ok() && r.error.field == "markets", "an invalid market id was read");
    return;
  }
  WAGER_ASSERT(r.ok(), "a valid subscribe or unsubscribe was refused");
  WAGER_ASSERT((r.message->op == stream_client_op::subscribe) == (name == "subscribe"),
               "subscribe and unsubscribe confused");
  WAGER_ASSERT(r.message->token.empty(), "a token read outside auth");
  WAGER_ASSERT(r.message->markets.size() == ids.size(), "markets lost or added");
  for (size_t i = 0; i < ids.size(); ++i)
    WAGER_ASSERT(r.message->markets[i] == ids[i].get_string(), "markets changed or reordered");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text{reinterpret_cast<const char*>(data), size};
  auto r = read_stream_client_message(text);
  if (!r.ok()) {
    check_error(r.error);
  } else {
    auto written = write_message(*r.message);
    auto again = read_stream_client_message(written);
    WAGER_ASSERT(same(r, again), "a message read and written back reads otherwise");
  }
  boost::system::error_code ec;
  auto doc = json::parse(text, ec);
  if (ec) {
    WAGER_ASSERT(!r.ok() && r.error.code == "invalid_json", "a frame that is not JSON was read");
    return 0;
  }
  check_contract(doc, r);
  if (has_infinity(doc))
    return 0;
  auto respelled = read_stream_client_message(json::serialize(doc));
  WAGER_ASSERT(same(r, respelled), "the same JSON spelled otherwise reads otherwise");
  return 0;
}
