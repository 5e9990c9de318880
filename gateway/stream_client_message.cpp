#include "wager/gateway/stream_client_message.hpp"

#include "wager/actors/ids.hpp"

#include <boost/json.hpp>

namespace wager {

namespace {

namespace json = boost::json;

stream_client_read failed(std::string_view code, std::string message,
                          std::string_view field = {}) {
  stream_client_read r;
  r.error = {code, std::move(message), field};
  return r;
}

// {"op":..., "markets":[ids]}; the first problem wins.
stream_client_read read_markets(stream_client_op op, const json::object& o) {
  auto* v = o.if_contains("markets");
  if (!v)
    return failed("missing_field", "markets is required", "markets");
  if (!v->is_array())
    return failed("invalid_field", "markets must be an array", "markets");
  stream_client_message m;
  m.op = op;
  for (auto& id : v->get_array()) {
    if (!id.is_string() || !valid_id(id.get_string()))
      return failed("invalid_field", "markets must hold market ids", "markets");
    m.markets.emplace_back(id.get_string());
  }
  stream_client_read r;
  r.message = std::move(m);
  return r;
}

} // namespace

std::string_view to_string(stream_client_op op) {
  switch (op) {
    case stream_client_op::auth: return "auth";
    case stream_client_op::subscribe: return "subscribe";
    case stream_client_op::unsubscribe: return "unsubscribe";
  }
  return "auth";
}

stream_client_read read_stream_client_message(std::string_view text) {
  boost::system::error_code ec;
  auto v = json::parse(text, ec);
  if (ec || !v.is_object())
    return failed("invalid_json", "a message must be a JSON object");
  auto& o = v.get_object();
  auto* op = o.if_contains("op");
  std::string_view name = op && op->is_string() ? std::string_view{op->get_string()} : "";
  if (name == "subscribe")
    return read_markets(stream_client_op::subscribe, o);
  if (name == "unsubscribe")
    return read_markets(stream_client_op::unsubscribe, o);
  if (name != "auth")
    return failed("invalid_field", "op must be subscribe or unsubscribe", "op");
  stream_client_message m;
  auto* token = o.if_contains("token");
  if (token && token->is_string())
    m.token = token->get_string();
  stream_client_read r;
  r.message = std::move(m);
  return r;
}

} // namespace wager
