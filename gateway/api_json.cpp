// Responses, formatting and input validation for the client API.

#include "wager/gateway/api_internal.hpp"

#include "wager/actors/ids.hpp"
#include "wager/actors/market_status.hpp"

#include <ctime>

namespace wager::api {

namespace {

// Seconds a client waits before retrying a 503.
constexpr int retry_after_unavailable_s = 1;

std::optional<std::string> percent_decode(std::string_view in) {
  std::string out;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '+') {
      out.push_back(' ');
    } else if (c == '%') {
      if (i + 2 >= in.size())
        return std::nullopt;
      auto hex = [](char h) -> int {
        if (h >= '0' && h <= '9')
          return h - '0';
        if (h >= 'a' && h <= 'f')
          return h - 'a' + 10;
        if (h >= 'A' && h <= 'F')
          return h - 'A' + 10;
        return -1;
      };
      int hi = hex(in[i + 1]), lo = hex(in[i + 2]);
      if (hi < 0 || lo < 0)
        return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

} // namespace

void call::respond(http_response res) {
  if (answered.exchange(true))
    return;
  if (auto check = std::move(before_first_answer)) {
    before_first_answer = nullptr;
    return check(std::move(res));
  }
  finish(std::move(res));
}

void call::finish(http_response res) {
  if (metrics)
    metrics->observe(route, req.method, res.status,
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - started)
                       .count());
  respond_fn(std::move(res));
}

http_response json_response(int status, const json::value& body) {
  http_response res;
  res.status = status;
  res.body = json::serialize(body);
  return res;
}

http_response error_response(errc code, std::string_view message, std::string_view field) {
  json::object error{{"code", to_code(code)}, {"message", message}};
  if (!field.empty())
    error["field"] = field;
  auto res = json_response(http_status(code), json::object{{"error", std::move(error)}});
  if (code == errc::unavailable)
    res.headers.emplace_back("Retry-After", std::to_string(retry_after_unavailable_s));
  return res;
}

http_response error_response(const caf::error& err) {
  if (err.category() != error_category)
    return error_response(errc::unavailable, "the platform did not answer in time, retry");
  auto code = api_code(err);
  if (code != code_of(err))
    return error_response(code, "the platform cannot write now, retry");
  auto message = message_of(err);
  auto detail = detail_of(err);
  if (message.empty())
    message = std::string{to_code(code)};
  json::object error{{"code", to_code(code)}, {"message", message}};
  if (code == errc::price_changed && !detail.empty())
    error["current_price"] = detail;
  else if (!detail.empty() && code != errc::rate_limited)
    error["field"] = detail;
  auto res = json_response(http_status(code), json::object{{"error", std::move(error)}});
  // A session's budget says when it has a request again.
  if (code == errc::rate_limited)
    res.headers.emplace_back("Retry-After", detail.empty() ? std::string{"1"} : detail);
  if (code == errc::unavailable)
    res.headers.emplace_back("Retry-After", std::to_string(retry_after_unavailable_s));
  return res;
}

http_response no_content() {
  http_response res;
  res.status = 204;
  res.content_type.clear();
  return res;
}

std::optional<json::object> parse_body(const call_ptr& c, bool empty_ok) {
  auto& body = c->req.body;
  if (empty_ok && body.find_first_not_of(" \t\r\n") == std::string::npos)
    return json::object{};
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;
  auto v = json::parse(body, ec, {}, opts);
  if (ec) {
    c->respond(error_response(errc::invalid_json, "the body is not valid JSON"));
    return std::nullopt;
  }
  if (!v.is_object()) {
    c->respond(error_response(errc::invalid_json, "the body must be a JSON object"));
    return std::nullopt;
  }
  return std::move(v.as_object());
}

bool empty_body(const call_ptr& c) {
  auto body = parse_body(c, true);
  if (!body)
    return false;
  fields f{*body};
  if (f.allow({}).ok())
    return true;
  c->respond(f.error());
  return false;
}

std::optional<std::map<std::string, std::string>>
parse_query(const call_ptr& c, std::initializer_list<std::string_view> allowed) {
  std::map<std::string, std::string> out;
  std::string_view q = c->req.query;
  while (!q.empty()) {
    auto amp = q.find('&');
    auto pair = q.substr(0, amp);
    q = amp == std::string_view::npos ? std::string_view{} : q.substr(amp + 1);
    if (pair.empty())
      continue;
    auto eq = pair.find('=');
    auto name = percent_decode(pair.substr(0, eq));
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{}
                                                             : pair.substr(eq + 1));
    if (!name || !value) {
      c->respond(error_response(errc::invalid_field, "malformed query string"));
      return std::nullopt;
    }
    bool known = false;
    for (auto a : allowed)
      known |= *name == a;
    if (!known) {
      c->respond(error_response(errc::unknown_field, "unknown query parameter " + *name,
                                *name));
      return std::nullopt;
    }
    if (out.count(*name) > 0) {
      c->respond(error_response(errc::invalid_field, "repeated query parameter", *name));
      return std::nullopt;
    }
    out[*name] = *value;
  }
  return out;
}

std::optional<uint32_t> parse_limit(const call_ptr& c,
                                    const std::map<std::string, std::string>& query,
                                    uint32_t fallback, uint32_t max) {
  auto i = query.find("limit");
  if (i == query.end())
    return fallback;
  auto& s = i->second;
  uint32_t v = 0;
  bool ok = !s.empty() && s.size() <= 9;
  for (char ch : s) {
    ok = ok && ch >= '0' && ch <= '9';
    v = v * 10 + static_cast<uint32_t>(ch - '0');
  }
  if (!ok || v < 1 || v > max) {
    c->respond(error_response(errc::invalid_field, "limit must be 1 to " + std::to_string(max),
                              "limit"));
    return std::nullopt;
  }
  return v;
}

std::optional<odds_format> parse_odds(const call_ptr& c,
                                      const std::map<std::string, std::string>& query) {
  auto i = query.find("odds");
  if (i == query.end())
    return odds_format::decimal;
  auto odds = parse_odds_format(i->second);
  if (!odds)
    c->respond(error_response(errc::invalid_field,
                              "odds must be decimal, fractional or american", "odds"));
  return odds;
}

} // namespace wager::api
