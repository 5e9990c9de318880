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
  auto code = code_of(err);
  auto message = message_of(err);
  auto detail = detail_of(err);
  switch (code) {
    case errc::journal_failure:
    case errc::restart_intensity_exceeded:
    case errc::sequence_conflict:
      return error_response(errc::unavailable, "the platform cannot write now, retry");
    default: break;
  }
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

std::string format_time(int64_t unix_ms) {
  auto secs = static_cast<time_t>(unix_ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  // Room for any int in every field, so the compiler can prove no truncation.
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(unix_ms % 1000));
  return buf;
}

std::optional<int64_t> parse_time(std::string_view text) {
  // YYYY-MM-DDTHH:MM:SS[.mmm]Z
  if (text.size() != 20 && text.size() != 24)
    return std::nullopt;
  auto num = [&](size_t at, size_t n) -> int {
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (text[i] < '0' || text[i] > '9')
        return -1;
      v = v * 10 + (text[i] - '0');
    }
    return v;
  };
  if (text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':'
      || text[16] != ':' || text.back() != 'Z')
    return std::nullopt;
  std::tm tm{};
  int y = num(0, 4), mo = num(5, 2), d = num(8, 2), h = num(11, 2), mi = num(14, 2),
      s = num(17, 2), ms = 0;
  if (text.size() == 24) {
    if (text[19] != '.')
      return std::nullopt;
    ms = num(20, 3);
  }
  if (y < 1970 || y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23
      || mi < 0 || mi > 59 || s < 0 || s > 59 || ms < 0)
    return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  auto t = timegm(&tm);
  std::tm back{};
  gmtime_r(&t, &back);
  if (back.tm_mday != d) // 31 February and friends
    return std::nullopt;
  return static_cast<int64_t>(t) * 1000 + ms;
}

json::object market_json(const market_view& m) {
  json::array selections;
  for (auto& s : m.definition.selections)
    selections.push_back(json::object{{"selection_id", s.id.value},
                                      {"name", s.name},
                                      {"price", format_price(s.current)}});
  return {{"market_id", m.definition.id.value},
          {"event", m.definition.event},
          {"name", m.definition.name},
          {"status", to_string(m.status)},
          {"selections", std::move(selections)},
          {"limits", json::object{{"max_stake", m.definition.limits.max_stake.minor},
                                  {"max_liability", m.definition.limits.max_liability.minor}}},
          {"in_play_delay_ms", m.definition.in_play_delay_ms},
          {"version", m.version}};
}

json::object bet_json(const bet& b) {
  json::object o{{"bet_id", b.id.value},
                 {"market_id", b.market.value},
                 {"selection_id", b.selection.value},
                 {"stake", b.stake.minor},
                 {"price", format_price(b.accepted)},
                 {"status", to_string(b.status)},
                 {"potential_payout", b.potential().minor},
                 {"placed_at", format_time(b.placed_at_ms)}};
  if (b.status != bet_status::open) {
    o["payout"] = b.payout.minor;
    if (b.settled_at_ms != 0)
      o["settled_at"] = format_time(b.settled_at_ms);
  }
  return o;
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

} // namespace wager::api
