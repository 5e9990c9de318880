#include "wager/actors/feed_message.hpp"

#include "wager/actors/json_fields.hpp"
#include "wager/runtime/rfc3339.hpp"

#include <boost/json.hpp>

#include <exception>

namespace wager {

namespace json = boost::json;

namespace {

using json_fields::reader;

void read_selections(reader& f, const json::array& sels, std::vector<selection>& out) {
  // Not one entry more is read: the check for repeated ids is quadratic, and
  // a line within the listener's bound holds some 20,000 selections.
  if (sels.empty() || sels.size() > feed_selections_max) {
    f.fail(errc::invalid_field, "selections", "selections must have 1 to 100 entries");
    return;
  }
  for (auto& s : sels) {
    if (!s.is_object()) {
      f.fail(errc::invalid_field, "selections", "each selection must be an object");
      return;
    }
    field_error inner;
    reader sf{s.as_object(), inner};
    sf.allow({"selection_id", "name", "price"});
    auto sid = sf.id("selection_id");
    auto name = sf.string("name", 1, feed_text_max);
    auto p = sf.price_of("price");
    if (!sf.ok()) {
      f.fail(errc::invalid_field, "selections", "a selection is invalid");
      return;
    }
    for (auto& prev : out)
      if (prev.id.value == *sid)
        f.fail(errc::invalid_field, "selections", "selection ids must be unique");
    out.push_back({selection_id{*sid}, *name, *p});
  }
}

// -- feed messages -------------------------------------------------------------

feed_reject reason_of(errc code) {
  switch (code) {
    case errc::missing_field: return feed_reject::missing_field;
    case errc::unknown_field: return feed_reject::unknown_field;
    default: return feed_reject::invalid_field;
  }
}

// A status a producer may set: open, suspended or closed.
std::optional<market_status> read_status(reader& f) {
  auto* v = f.get("status", false);
  if (!v)
    return std::nullopt;
  std::optional<market_status> s;
  if (v->is_string())
    s = parse_market_status(v->as_string());
  if (!s || (*s != market_status::open && *s != market_status::suspended
             && *s != market_status::closed)) {
    f.fail(errc::invalid_field, "status", "status must be open, suspended or closed");
    return std::nullopt;
  }
  return s;
}

// Prices map selection ids to price strings. A bad price is its own reason
// (invalid_price), so an operator sees at once that the odds were wrong.
bool read_prices(reader& f, const json::object& ps, std::map<std::string, price>& out,
                 feed_invalid& bad) {
  if (ps.size() > feed_selections_max) {
    f.fail(errc::invalid_field, "prices", "prices must name at most 100 selections");
    return false;
  }
  for (auto& kv : ps) {
    if (!valid_id(kv.key())) {
      f.fail(errc::invalid_field, "prices", "prices maps selection ids to prices");
      return false;
    }
    std::optional<price> p;
    if (kv.value().is_string())
      p = parse_price(kv.value().as_string());
    if (!p) {
      bad = {feed_reject::invalid_price, "prices",
             "the price of " + std::string{kv.key()}
               + " must be a string of decimal odds with at most two decimals, \"1.01\" to "
                 "\"1000.00\"",
             {}};
      return false;
    }
    out.emplace(std::string{kv.key()}, *p);
  }
  return true;
}

std::optional<feed_body> read_body(feed_message_type type, const json::object& o, reader& f,
                                   feed_invalid& bad) {
  switch (type) {
    case feed_message_type::market: {
      field_error inner;
      auto def = market_definition_from_json(o, {"type", "producer", "seq", "ts", "status"},
                                             inner);
      if (!def) {
        f.fail(inner.code, inner.field, inner.message);
        return std::nullopt;
      }
      auto status = read_status(f);
      if (!f.ok())
        return std::nullopt;
      return feed_market{std::move(*def), status};
    }
    case feed_message_type::odds_change: {
      f.allow({"type", "producer", "seq", "ts"}, {"market_id", "prices", "status"});
      feed_odds_change m;
      if (auto id = f.id("market_id"))
        m.market = market_id{*id};
      auto* ps = f.object("prices");
      m.status = read_status(f);
      if (!f.ok() || !read_prices(f, *ps, m.prices, bad))
        return std::nullopt;
      if (m.prices.empty() && !m.status) {
        f.fail(errc::invalid_field, "prices", "prices may be empty only with a status");
        return std::nullopt;
      }
      return m;
    }
    case feed_message_type::bet_stop: {
      f.allow({"type", "producer", "seq", "ts"}, {"market_ids"});
      feed_bet_stop m;
      auto* ids = f.array("market_ids");
      if (!f.ok())
        return std::nullopt;
      if (ids->empty() || ids->size() > feed_bet_stop_markets_max)
        f.fail(errc::invalid_field, "market_ids", "market_ids must have 1 to 1000 entries");
      for (auto& v : *ids) {
        if (!v.is_string() || !valid_id(v.as_string())) {
          f.fail(errc::invalid_field, "market_ids", "market_ids must be market ids");
          break;
        }
        m.markets.push_back(market_id{std::string{v.as_string()}});
      }
      if (!f.ok())
        return std::nullopt;
      return m;
    }
    case feed_message_type::bet_settlement: {
      feed_bet_settlement m;
      field_error inner;
      auto result = market_result_from_json(o, {"type", "producer", "seq", "ts", "market_id"},
                                             inner);
      if (auto id = f.id("market_id"))
        m.market = market_id{*id};
      if (!result)
        f.fail(inner.code, inner.field, inner.message);
      if (!f.ok())
        return std::nullopt;
      m.result = std::move(*result);
      return m;
    }
    case feed_message_type::bet_cancel: {
      f.allow({"type", "producer", "seq", "ts"}, {"market_id", "start_time", "end_time"});
      feed_bet_cancel m;
      if (auto id = f.id("market_id"))
        m.market = market_id{*id};
      auto time = [&](std::string_view key, int64_t& out) {
        auto* v = f.get(key, false);
        if (!v)
          return;
        std::optional<int64_t> ms;
        if (v->is_int64() && v->as_int64() >= 0)
          ms = v->as_int64();
        else if (v->is_string())
          ms = parse_time(v->as_string());
        if (ms)
          out = *ms;
        else
          f.fail(errc::invalid_field, key,
                 std::string{key} + " must be milliseconds since the epoch or an RFC 3339 time");
      };
      time("start_time", m.from_ms);
      time("end_time", m.to_ms);
      if (f.ok() && m.from_ms > m.to_ms)
        f.fail(errc::invalid_field, "start_time", "start_time is after end_time");
      if (!f.ok())
        return std::nullopt;
      return m;
    }
    case feed_message_type::rollback_bet_settlement: {
      f.allow({"type", "producer", "seq", "ts"}, {"market_id"});
      feed_rollback_bet_settlement m;
      if (auto id = f.id("market_id"))
        m.market = market_id{*id};
      if (!f.ok())
        return std::nullopt;
      return m;
    }
    case feed_message_type::alive:
      f.allow({"type", "producer", "seq", "ts"});
      if (!f.ok())
        return std::nullopt;
      return feed_alive{};
  }
  return std::nullopt;
}

std::optional<feed_message_type> parse_type(std::string_view s) {
  for (auto t : {feed_message_type::market, feed_message_type::odds_change,
                 feed_message_type::bet_stop, feed_message_type::bet_settlement,
                 feed_message_type::alive, feed_message_type::bet_cancel,
                 feed_message_type::rollback_bet_settlement})
    if (to_string(t) == s)
      return t;
  return std::nullopt;
}

feed_parse_result invalid(feed_reject reason, std::string field, std::string message) {
  feed_parse_result r;
  r.invalid = {reason, std::move(field), std::move(message), {}};
  return r;
}

feed_parse_result parse_object(const json::object& o) {
  field_error error;
  reader f{o, error};
  feed_message msg;
  // The header first: without a type, nothing else can be judged.
  auto* t = f.get("type", true);
  if (!t)
    return invalid(feed_reject::missing_field, "type", "type is required");
  if (!t->is_string())
    return invalid(feed_reject::invalid_field, "type", "type must be a string");
  auto type = parse_type(t->as_string());
  if (!type)
    return invalid(feed_reject::unknown_type, "type",
                   "type must be market, odds_change, bet_stop, bet_settlement, bet_cancel, "
                   "rollback_bet_settlement or alive");
  auto producer = f.id("producer");
  auto seq = f.integer("seq", 1, INT64_MAX);
  auto ts = f.integer("ts", 0, INT64_MAX);
  feed_invalid bad;
  bad.reason = feed_reject::invalid_field;
  std::optional<feed_body> body;
  if (f.ok())
    body = read_body(*type, o, f, bad);
  feed_parse_result r;
  if (!f.ok()) {
    r.invalid = {reason_of(error.code), error.field, error.message, producer.value_or("")};
    return r;
  }
  if (!body) {
    bad.producer = *producer;
    r.invalid = std::move(bad);
    return r;
  }
  msg.producer = *producer;
  msg.seq = static_cast<uint64_t>(*seq);
  msg.ts_ms = *ts;
  msg.body = std::move(*body);
  r.message = std::move(msg);
  return r;
}

} // namespace

std::string_view to_string(feed_reject reason) {
  switch (reason) {
    case feed_reject::invalid_json: return "invalid_json";
    case feed_reject::missing_field: return "missing_field";
    case feed_reject::invalid_field: return "invalid_field";
    case feed_reject::unknown_field: return "unknown_field";
    case feed_reject::unknown_type: return "unknown_type";
    case feed_reject::invalid_price: return "invalid_price";
    case feed_reject::oversized: return "oversized";
    case feed_reject::stale_seq: return "stale_seq";
    case feed_reject::unknown_market: return "unknown_market";
    case feed_reject::refused: return "refused";
    case feed_reject::unavailable: return "unavailable";
    case feed_reject::overloaded: return "overloaded";
    case feed_reject::unknown_producer: return "unknown_producer";
  }
  return "invalid_json";
}

std::string_view to_string(feed_message_type type) {
  switch (type) {
    case feed_message_type::market: return "market";
    case feed_message_type::odds_change: return "odds_change";
    case feed_message_type::bet_stop: return "bet_stop";
    case feed_message_type::bet_settlement: return "bet_settlement";
    case feed_message_type::alive: return "alive";
    case feed_message_type::bet_cancel: return "bet_cancel";
    case feed_message_type::rollback_bet_settlement: return "rollback_bet_settlement";
  }
  return "alive";
}

std::optional<market_definition>
market_definition_from_json(const json::object& o, std::initializer_list<std::string_view> extra,
                            field_error& error) {
  reader f{o, error};
  f.allow({"market_id", "event", "name", "selections", "limits", "in_play_delay_ms", "each_way"},
          extra);
  market_definition def;
  if (auto id = f.id("market_id"))
    def.id = market_id{*id};
  if (auto e = f.string("event", 1, feed_text_max))
    def.event = *e;
  if (auto n = f.string("name", 1, feed_text_max))
    def.name = *n;
  if (auto* sels = f.array("selections"))
    read_selections(f, *sels, def.selections);
  if (auto* limits = f.object("limits")) {
    field_error inner;
    reader lf{*limits, inner};
    lf.allow({"max_stake", "max_liability", "max_payout"});
    auto stake = lf.integer("max_stake", amount_min_minor, amount_max_minor);
    auto liability = lf.integer("max_liability", amount_min_minor, amount_max_minor);
    auto payout = lf.integer("max_payout", amount_min_minor, amount_max_minor, false);
    if (!lf.ok())
      f.fail(errc::invalid_field, "limits",
             "limits needs max_stake and max_liability, and may have max_payout, 1 to 10^12 "
             "each");
    else
      def.limits = {money{*stake}, money{*liability}, money{payout.value_or(0)}};
  }
  if (auto d = f.integer("in_play_delay_ms", 0, feed_in_play_delay_max_ms, false))
    def.in_play_delay_ms = *d;
  if (auto* ew = f.object("each_way", false)) {
    field_error inner;
    reader ef{*ew, inner};
    ef.allow({"places", "fraction"});
    auto places = ef.integer("places", 1, each_way_places_max);
    std::optional<ratio> fraction;
    if (auto text = ef.string("fraction", 1, 9))
      fraction = parse_ratio(*text);
    if (!ef.ok() || !fraction)
      f.fail(errc::invalid_field, "each_way",
             "each_way is {\"places\": 1 to 10, \"fraction\": \"1/4\"}, a fraction in (0, 1]");
    else
      def.each_way = {static_cast<uint32_t>(*places), *fraction};
  }
  if (!f.ok())
    return std::nullopt;
  return def;
}

std::optional<market_resulted>
market_result_from_json(const json::object& o, std::initializer_list<std::string_view> extra,
                        field_error& error) {
  reader f{o, error};
  f.allow({"winners", "results", "void", "dead_heat", "rule4"}, extra);
  market_resulted r;
  int forms = int{o.contains("winners")} + int{o.contains("results")} + int{o.contains("void")};
  if (forms != 1) {
    f.fail(forms == 0 ? errc::missing_field : errc::invalid_field, "winners",
           "give one of winners, results or \"void\": true");
    return std::nullopt;
  }
  auto selection_ids = [&](const json::object& obj, std::string_view key) {
    if (obj.empty() || obj.size() > feed_selections_max) {
      f.fail(errc::invalid_field, key, std::string{key} + " must name 1 to 100 selections");
      return false;
    }
    for (auto& kv : obj)
      if (!valid_id(kv.key())) {
        f.fail(errc::invalid_field, key, std::string{key} + " must be keyed by selection ids");
        return false;
      }
    return true;
  };
  if (o.contains("winners")) {
    if (auto* ws = f.array("winners")) {
      for (auto& w : *ws) {
        if (!w.is_string() || !valid_id(w.as_string())) {
          f.fail(errc::invalid_field, "winners", "winners must be selection ids");
          break;
        }
        r.winners.emplace_back(w.as_string());
      }
      if (ws->empty() || ws->size() > feed_selections_max)
        f.fail(errc::invalid_field, "winners", "winners must name 1 to 100 selections");
    }
  } else if (o.contains("results")) {
    if (auto* results = f.object("results"); results && selection_ids(*results, "results")) {
      for (auto& kv : *results) {
        std::optional<leg_result> res;
        if (kv.value().is_string())
          res = parse_leg_result(kv.value().as_string());
        if (!res || *res == leg_result::open) {
          f.fail(errc::invalid_field, "results",
                 "a result is \"won\", \"placed\", \"lost\" or \"void\"");
          break;
        }
        auto id = std::string{kv.key()};
        if (*res == leg_result::won)
          r.winners.push_back(id);
        else if (*res == leg_result::placed)
          r.placed.push_back(id);
        else if (*res == leg_result::void_)
          r.void_selections.push_back(id);
      }
      if (f.ok() && r.winners.empty())
        f.fail(errc::invalid_field, "results", "results must name at least one winner");
    }
  } else {
    auto v = f.boolean("void");
    if (v && !*v)
      f.fail(errc::invalid_field, "void", "void must be true");
    r.voided = true;
  }
  if (o.contains("dead_heat") || o.contains("rule4")) {
    if (!o.contains("results")) {
      f.fail(errc::invalid_field, o.contains("dead_heat") ? "dead_heat" : "rule4",
             "dead_heat and rule4 go with results");
      return std::nullopt;
    }
  }
  if (auto* heat = f.object("dead_heat", false); heat && selection_ids(*heat, "dead_heat")) {
    for (auto& kv : *heat) {
      std::optional<ratio> factor;
      if (kv.value().is_string())
        factor = parse_ratio(kv.value().as_string());
      if (!factor || factor->n == factor->d) {
        f.fail(errc::invalid_field, "dead_heat",
               "a dead-heat factor is a fraction under 1, such as \"1/2\"");
        break;
      }
      r.dead_heat[std::string{kv.key()}] = *factor;
    }
  }
  if (auto* rule4 = f.array("rule4", false)) {
    if (rule4->empty() || rule4->size() > 20)
      f.fail(errc::invalid_field, "rule4", "rule4 must have 1 to 20 deductions");
    for (auto& d : *rule4) {
      if (!f.ok())
        break;
      field_error bad;
      std::optional<int64_t> deduction, before;
      if (d.is_object()) {
        reader df{d.as_object(), bad};
        df.allow({"deduction", "before"});
        deduction = df.integer("deduction", 1, rule4_max);
        if (auto text = df.string("before", 20, 24))
          before = parse_time(*text);
      }
      if (!deduction || !before) {
        f.fail(errc::invalid_field, "rule4",
               "a Rule 4 deduction is {\"deduction\": 1 to 90, \"before\": an RFC 3339 time}");
        break;
      }
      r.rule4.push_back({static_cast<int32_t>(*deduction), *before});
    }
  }
  if (!f.ok())
    return std::nullopt;
  return r;
}

feed_parse_result parse_feed_line(std::string_view line) try {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16; // a feed message is three levels deep; deeper is an attack
  auto doc = json::parse(line, ec, {}, opts);
  if (ec)
    return invalid(feed_reject::invalid_json, {}, "not JSON: " + ec.message());
  if (!doc.is_object())
    return invalid(feed_reject::invalid_json, {}, "a feed line must be a JSON object");
  return parse_object(doc.as_object());
} catch (const std::exception& e) {
  // Boost.JSON throws only on allocation failure; a line is still skipped,
  // never allowed to take the listener down.
  return invalid(feed_reject::invalid_json, {}, std::string{"unreadable: "} + e.what());
}

} // namespace wager
