// libFuzzer target over the feed's TCP input (shared/API.md "Feed"): the
// listener's framing of a connection's bytes into lines
// (gateway/feed_line_framer.hpp) and the reading of each line into a feed
// message (actors/feed_message.hpp). Besides not crashing, hanging or
// leaking, it checks:
//   - framing: the lines are the same however the bytes are cut into reads,
//     and are what splitting the whole input at newlines gives: trimmed,
//     never empty, never over the bound, an over-long line reported once as
//     oversized, bytes after the last newline held back;
//   - a rejected line: its reason is one of the parser's (never one the
//     ingest finds), with a message, a field unless the line is not JSON,
//     and a producer only when it is a valid id;
//   - an accepted line: the bounds feed_message.hpp documents, and its
//     message written back as JSON reads as the same message;
//   - the same JSON, however spelled (spacing, escapes, number forms), gets
//     the same answer.
//
// Input: the first byte picks the line bound (below 0x80 the listener's
// default, 1 MiB; else 1 to 128 bytes, so that oversized lines are
// reached), the second how the rest is cut into reads; the rest is what
// the producer sent. Seeds (fuzz/corpus/feed_line/) mostly start with "##",
// the default bound; small_bound starts with 0xaf, a bound of 48 bytes.

#include "wager/actors/feed_message.hpp"
#include "wager/gateway/feed_line_framer.hpp"
#include "wager/gateway/feed_listener.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/rfc3339.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

using namespace wager;
namespace json = boost::json;

namespace {

struct framed_line {
  std::string text;
  bool oversized = false;

  bool operator==(const framed_line&) const = default;
};

std::vector<framed_line> frame(uint32_t bound, std::string_view data,
                               const std::vector<size_t>& reads) {
  std::vector<framed_line> out;
  feed_line_framer framer{bound};
  feed_line_framer::emit_fn emit = [&](std::string_view line, bool oversized) {
    out.push_back({std::string{line}, oversized});
  };
  for (auto n : reads) {
    framer.consume(data.substr(0, n), emit);
    data.remove_prefix(n);
  }
  return out;
}

// The framing's specification, on the whole input at once.
std::vector<framed_line> expected_lines(uint32_t bound, std::string_view data) {
  std::vector<framed_line> out;
  for (auto nl = data.find('\n'); nl != std::string_view::npos; nl = data.find('\n')) {
    auto line = data.substr(0, nl);
    data.remove_prefix(nl + 1);
    if (line.size() > bound) {
      out.push_back({{}, true});
      continue;
    }
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.remove_suffix(1);
    if (!line.empty())
      out.push_back({std::string{line}, false});
  }
  return out;
}

void check_framing(uint32_t bound, uint8_t cut, std::string_view data,
                   std::vector<framed_line>& lines) {
  lines = expected_lines(bound, data);
  // Reads of 1 to 64 bytes, their lengths from a small generator seeded by
  // `cut`; and the whole input in one read.
  std::vector<size_t> reads;
  uint32_t state = cut * 2654435761u + 1;
  for (size_t left = data.size(); left > 0;) {
    state = state * 1103515245u + 12345u;
    auto n = std::min<size_t>(left, 1 + (state >> 16) % 64);
    reads.push_back(n);
    left -= n;
  }
  WAGER_ASSERT(frame(bound, data, reads) == lines, "lines depend on how reads cut the bytes");
  WAGER_ASSERT(frame(bound, data, {data.size()}) == lines, "lines differ from the newline split");
  for (auto& l : lines) {
    WAGER_ASSERT(l.text.size() <= bound, "a line over the bound was passed on");
    WAGER_ASSERT(l.text.find('\n') == std::string::npos, "a line holds a newline");
    WAGER_ASSERT(l.oversized == l.text.empty(), "an empty line passed on");
    WAGER_ASSERT(l.text.empty() || (l.text.back() != '\r' && l.text.back() != ' '),
                 "a line not trimmed");
  }
}

bool parser_reason(feed_reject r) {
  switch (r) {
    case feed_reject::invalid_json:
    case feed_reject::missing_field:
    case feed_reject::invalid_field:
    case feed_reject::unknown_field:
    case feed_reject::unknown_type:
    case feed_reject::invalid_price: return true;
    default: return false;
  }
}

bool price_in_bounds(price p) {
  return p.hundredths >= price_min_hundredths && p.hundredths <= price_max_hundredths;
}

bool producer_status(market_status s) {
  return s == market_status::open || s == market_status::suspended
         || s == market_status::closed;
}

bool text_in_bounds(const std::string& s) {
  return !s.empty() && s.size() <= feed_text_max;
}

// -- an accepted message: bounds, and written back as a line ------------------

void check_bounds(const feed_market& m) {
  auto& d = m.definition;
  WAGER_ASSERT(valid_id(d.id.value), "market: market_id");
  WAGER_ASSERT(text_in_bounds(d.event) && text_in_bounds(d.name), "market: event or name");
  WAGER_ASSERT(!d.selections.empty() && d.selections.size() <= feed_selections_max,
               "market: selection count");
  for (size_t i = 0; i < d.selections.size(); ++i) {
    auto& s = d.selections[i];
    WAGER_ASSERT(valid_id(s.id.value) && text_in_bounds(s.name), "market: a selection");
    WAGER_ASSERT(price_in_bounds(s.current), "market: a selection's price");
    for (size_t j = 0; j < i; ++j)
      WAGER_ASSERT(d.selections[j].id != s.id, "market: selection ids repeat");
  }
  WAGER_ASSERT(valid_amount(d.limits.max_stake.minor) && valid_amount(d.limits.max_liability.minor),
               "market: limits");
  WAGER_ASSERT(d.in_play_delay_ms >= 0 && d.in_play_delay_ms <= feed_in_play_delay_max_ms,
               "market: in_play_delay_ms");
  WAGER_ASSERT(!d.has_each_way() || valid(d.each_way), "market: each-way terms");
  WAGER_ASSERT(!m.status || producer_status(*m.status), "market: status");
}

void check_bounds(const feed_odds_change& m) {
  WAGER_ASSERT(valid_id(m.market.value), "odds_change: market_id");
  WAGER_ASSERT(m.prices.size() <= feed_selections_max, "odds_change: price count");
  WAGER_ASSERT(!m.prices.empty() || m.status, "odds_change: neither prices nor status");
  for (auto& [sel, p] : m.prices)
    WAGER_ASSERT(valid_id(sel) && price_in_bounds(p), "odds_change: a price");
  WAGER_ASSERT(!m.status || producer_status(*m.status), "odds_change: status");
}

void check_bounds(const feed_bet_stop& m) {
  WAGER_ASSERT(!m.markets.empty() && m.markets.size() <= feed_bet_stop_markets_max,
               "bet_stop: market count");
  for (auto& id : m.markets)
    WAGER_ASSERT(valid_id(id.value), "bet_stop: a market id");
}

void check_bounds(const feed_bet_settlement& m) {
  auto& r = m.result;
  WAGER_ASSERT(valid_id(m.market.value), "bet_settlement: market_id");
  WAGER_ASSERT(r.voided == r.winners.empty(), "bet_settlement: both or neither of winners, void");
  WAGER_ASSERT(r.winners.size() + r.placed.size() + r.void_selections.size()
                 <= feed_selections_max,
               "bet_settlement: selection count");
  for (auto* list : {&r.winners, &r.placed, &r.void_selections})
    for (auto& w : *list)
      WAGER_ASSERT(valid_id(w), "bet_settlement: a selection");
  for (auto& [sel, f] : r.dead_heat)
    WAGER_ASSERT(valid_id(sel) && f.n >= 1 && f.n < f.d && f.d <= 1000,
                 "bet_settlement: a dead heat");
  WAGER_ASSERT(r.rule4.size() <= 20, "bet_settlement: Rule 4 count");
  for (auto& d : r.rule4)
    WAGER_ASSERT(d.deduction >= 1 && d.deduction <= rule4_max, "bet_settlement: a deduction");
}

void check_bounds(const feed_alive&) {}

void check_bounds(const feed_bet_cancel& m) {
  WAGER_ASSERT(valid_id(m.market.value), "bet_cancel: market_id");
  WAGER_ASSERT(m.from_ms >= 0 && m.from_ms <= m.to_ms, "bet_cancel: the window");
}

void check_bounds(const feed_rollback_bet_settlement& m) {
  WAGER_ASSERT(valid_id(m.market.value), "rollback_bet_settlement: market_id");
}

json::value to_json(const feed_market& m) {
  auto& d = m.definition;
  json::array sels;
  for (auto& s : d.selections)
    sels.push_back(json::object{
      {"selection_id", s.id.value}, {"name", s.name}, {"price", format_price(s.current)}});
  json::object o{{"market_id", d.id.value},
                 {"event", d.event},
                 {"name", d.name},
                 {"selections", std::move(sels)},
                 {"limits", json::object{{"max_stake", d.limits.max_stake.minor},
                                         {"max_liability", d.limits.max_liability.minor}}},
                 {"in_play_delay_ms", d.in_play_delay_ms}};
  if (d.has_each_way())
    o["each_way"] = json::object{{"places", d.each_way.places},
                                 {"fraction", to_string(d.each_way.fraction)}};
  if (m.status)
    o["status"] = to_string(*m.status);
  return o;
}

json::value to_json(const feed_odds_change& m) {
  json::object prices;
  for (auto& [sel, p] : m.prices)
    prices[sel] = format_price(p);
  json::object o{{"market_id", m.market.value}, {"prices", std::move(prices)}};
  if (m.status)
    o["status"] = to_string(*m.status);
  return o;
}

json::value to_json(const feed_bet_stop& m) {
  json::array ids;
  for (auto& id : m.markets)
    ids.push_back(json::string{id.value});
  return json::object{{"market_ids", std::move(ids)}};
}

json::value to_json(const feed_bet_settlement& m) {
  auto& r = m.result;
  json::object o{{"market_id", m.market.value}};
  if (r.voided) {
    o["void"] = true;
  } else if (r.placed.empty() && r.void_selections.empty() && r.dead_heat.empty()
             && r.rule4.empty()) {
    json::array ws;
    for (auto& w : r.winners)
      ws.push_back(json::string{w});
    o["winners"] = std::move(ws);
  } else {
    json::object results;
    for (auto& w : r.winners)
      results[w] = "won";
    for (auto& w : r.placed)
      results[w] = "placed";
    for (auto& w : r.void_selections)
      results[w] = "void";
    o["results"] = std::move(results);
    if (!r.dead_heat.empty()) {
      json::object heat;
      for (auto& [sel, f] : r.dead_heat)
        heat[sel] = to_string(f);
      o["dead_heat"] = std::move(heat);
    }
    if (!r.rule4.empty()) {
      json::array rule4;
      for (auto& d : r.rule4)
        rule4.push_back(json::object{{"deduction", d.deduction}, {"before", format_time(d.before_ms)}});
      o["rule4"] = std::move(rule4);
    }
  }
  return o;
}

json::value to_json(const feed_alive&) {
  return json::object{};
}

json::value to_json(const feed_bet_cancel& m) {
  json::object o{{"market_id", m.market.value}};
  if (m.from_ms != 0)
    o["start_time"] = m.from_ms;
  if (m.to_ms != std::numeric_limits<int64_t>::max())
    o["end_time"] = m.to_ms;
  return o;
}

json::value to_json(const feed_rollback_bet_settlement& m) {
  return json::object{{"market_id", m.market.value}};
}

// The message as a producer would send it.
std::string write_line(const feed_message& m) {
  auto body = std::visit([](auto& b) { return to_json(b); }, m.body);
  json::object o{{"type", to_string(m.type())},
                 {"producer", m.producer},
                 {"seq", m.seq},
                 {"ts", m.ts_ms}};
  for (auto& kv : body.as_object())
    o[kv.key()] = kv.value();
  return json::serialize(o);
}

void check_accepted(const feed_message& m) {
  WAGER_ASSERT(valid_id(m.producer), "accepted: producer");
  WAGER_ASSERT(m.seq >= 1 && m.seq <= uint64_t{INT64_MAX}, "accepted: seq");
  WAGER_ASSERT(m.ts_ms >= 0, "accepted: ts");
  std::visit([](auto& b) { check_bounds(b); }, m.body);
  auto line = write_line(m);
  auto again = parse_feed_line(line);
  WAGER_ASSERT(again.ok(), "an accepted message, written back, is refused");
  WAGER_ASSERT(again.message->type() == m.type(), "written back, the type changed");
  WAGER_ASSERT(write_line(*again.message) == line, "written back, the message changed");
}

// -- a rejected line -------------------------------------------------------------

void check_rejected(const feed_invalid& why, std::string_view line) {
  WAGER_ASSERT(parser_reason(why.reason), "a reason only the ingest may give");
  WAGER_ASSERT(!why.message.empty(), "rejected without a message");
  WAGER_ASSERT(why.producer.empty() || valid_id(why.producer), "rejected: an invalid producer");
  if (why.reason == feed_reject::invalid_json) {
    WAGER_ASSERT(why.field.empty(), "invalid_json names a field");
    return;
  }
  // An unknown field may be the key "".
  WAGER_ASSERT(!why.field.empty() || why.reason == feed_reject::unknown_field,
               "rejected without its field");
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;
  auto doc = json::parse(line, ec, {}, opts);
  WAGER_ASSERT(!ec && doc.is_object(), "a line that is no JSON object got past invalid_json");
  if (why.reason == feed_reject::unknown_field) {
    WAGER_ASSERT(doc.as_object().contains(why.field), "unknown_field names no field of the line");
    return;
  }
  static constexpr std::string_view fields[] = {
    "type",   "producer", "seq",    "ts",         "market_id", "event",   "name", "selections",
    "limits", "in_play_delay_ms",   "status",     "prices",    "market_ids", "winners", "void",
    "each_way", "results", "dead_heat", "rule4", "start_time", "end_time"};
  WAGER_ASSERT(std::find(std::begin(fields), std::end(fields), why.field) != std::end(fields),
               "rejected naming a field no feed message has");
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

// The same JSON spelled canonically gets the same answer.
void check_spelling(std::string_view line, const feed_parse_result& first) {
  boost::system::error_code ec;
  json::parse_options opts;
  opts.max_depth = 16;
  auto doc = json::parse(line, ec, {}, opts);
  if (ec || has_infinity(doc))
    return;
  auto canonical = json::serialize(doc);
  auto second = parse_feed_line(canonical);
  WAGER_ASSERT(second.ok() == first.ok(), "respelling the JSON changed acceptance");
  if (first.ok()) {
    WAGER_ASSERT(write_line(*second.message) == write_line(*first.message),
                 "respelling the JSON changed the message");
  } else {
    WAGER_ASSERT(second.invalid.reason == first.invalid.reason,
                 "respelling the JSON changed the reason");
    WAGER_ASSERT(second.invalid.field == first.invalid.field,
                 "respelling the JSON changed the field");
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2)
    return 0;
  uint32_t bound = data[0] < 0x80 ? feed_listener_options{}.line_max_bytes
                                   : 1 + (data[0] - 0x80u);
  std::string_view sent{reinterpret_cast<const char*>(data) + 2, size - 2};
  std::vector<framed_line> lines;
  check_framing(bound, data[1], sent, lines);
  for (auto& l : lines) {
    if (l.oversized)
      continue;
    auto r = parse_feed_line(l.text);
    WAGER_ASSERT(r.ok() || !r.invalid.message.empty(), "neither a message nor a reason");
    if (r.ok())
      check_accepted(*r.message);
    else
      check_rejected(r.invalid, l.text);
    check_spelling(l.text, r);
  }
  return 0;
}
