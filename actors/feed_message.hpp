#pragma once

// One feed line, parsed (shared/API.md, "Feed"): newline-delimited JSON from
// a producer, modelled on Sportradar's UOF. Pure: no actors, no clock, so the
// gateway, the ingest and the tests share one reading of the contract.
//
// Every message has `type`, `producer` (an id), `seq` (integer >= 1, grows by
// one per producer) and `ts` (integer, milliseconds since the Unix epoch, as
// the producer stamped it). Unknown fields are rejected, as everywhere in the
// API, so a typo in a producer fails loudly instead of being ignored.
//
// Also here: the market definition as the admin POST and the feed's `market`
// message both carry it, so the two can never disagree.

#include "wager/actors/ids.hpp"
#include "wager/actors/market_state.hpp"
#include "wager/actors/market_status.hpp"
#include "wager/actors/money.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json/object.hpp>

#include <cstdint>
#include <initializer_list>
#include <limits>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace wager {

// Bounds of one feed message, named so the API docs can quote them.
inline constexpr size_t feed_text_max = 256;           // event and market names
inline constexpr size_t feed_selections_max = 100;     // per market, per odds_change
inline constexpr size_t feed_bet_stop_markets_max = 1000;
inline constexpr int64_t feed_in_play_delay_max_ms = 60'000;

// Why a line was skipped: the `reason` label of wager_feed_invalid_total, so
// the set is closed (bounded series). The first group is found by the
// parser, the second by the ingest when it applies a message.
enum class feed_reject : uint8_t {
  invalid_json,   // not JSON, or not a JSON object
  missing_field,  // type, producer, seq, ts or a field of the message type
  invalid_field,  // wrong JSON type, bad id, out of bounds
  unknown_field,  // a field the message type does not have
  unknown_type,   // `type` is none of the seven
  invalid_price,  // not a price string, or outside "1.01" to "1000.00"
  oversized,      // longer than the listener's line bound
  stale_seq,      // seq not above the producer's last one (a duplicate, a replay)
  unknown_market, // the market does not exist
  refused,        // the market refused it (illegal transition, unknown selection)
  unavailable,    // the market did not answer in time, or is down
  overloaded,     // the producer's backlog is full
  unknown_producer, // not one of the node's producers (feed_options::producers)
};

std::string_view to_string(feed_reject reason);

// A problem found while reading JSON fields: the API's error code (missing,
// invalid or unknown field), the field and a message for humans.
struct field_error {
  errc code = errc::none;
  std::string field;
  std::string message;
};

// Reads a market definition from an object shaped like the admin POST
// (`market_id, event, name, selections, limits, in_play_delay_ms?`). Keys in
// `extra` are allowed and left to the caller. The first problem wins.
std::optional<market_definition>
market_definition_from_json(const boost::json::object& o,
                            std::initializer_list<std::string_view> extra, field_error& error);

// Reads a result from an object shaped like the admin settle body
// (shared/API.md): `winners: [ids]`, or `results: {id: "won" | "placed" |
// "lost" | "void"}` with `dead_heat?: {id: "1/2"}` and `rule4?: [{deduction,
// before}]` (before: RFC 3339), or `"void": true`. Exactly one of winners,
// results and void. Keys in `extra` are allowed and left to the caller. What
// needs the market (its selections, its each-way terms) is the market's to
// check.
std::optional<market_resulted>
market_result_from_json(const boost::json::object& o,
                        std::initializer_list<std::string_view> extra, field_error& error);

// -- messages ------------------------------------------------------------------

// In the order of feed_body's alternatives.
enum class feed_message_type : uint8_t {
  market,
  odds_change,
  bet_stop,
  bet_settlement,
  alive,
  bet_cancel,
  rollback_bet_settlement,
};

std::string_view to_string(feed_message_type type);

// Defines the market, or updates it; `status` (open, suspended or closed)
// is applied after the definition.
struct feed_market {
  market_definition definition;
  std::optional<market_status> status;
};

// Prices (may be empty only when a status is given) and an optional status.
struct feed_odds_change {
  market_id market;
  std::map<std::string, price> prices;
  std::optional<market_status> status;
};

// Suspends the markets now, ahead of their queued price updates.
struct feed_bet_stop {
  std::vector<market_id> markets;
};

// Settles the market (winners, or results with racing rules) or voids it.
struct feed_bet_settlement {
  market_id market;
  market_resulted result;
};

struct feed_alive {};

// Voids the market's bets accepted in [from_ms, to_ms) (start_time and
// end_time: milliseconds since the epoch, as `ts`, or RFC 3339; either may
// be left out for an open end).
struct feed_bet_cancel {
  market_id market;
  int64_t from_ms = 0;
  int64_t to_ms = std::numeric_limits<int64_t>::max();
};

// Takes the market's result back: every payout is reversed and the market
// is closed, ready for a new bet_settlement.
struct feed_rollback_bet_settlement {
  market_id market;
};

using feed_body = std::variant<feed_market, feed_odds_change, feed_bet_stop, feed_bet_settlement,
                               feed_alive, feed_bet_cancel, feed_rollback_bet_settlement>;

struct feed_message {
  std::string producer;
  uint64_t seq = 0;
  int64_t ts_ms = 0;
  feed_body body;

  feed_message_type type() const { return static_cast<feed_message_type>(body.index()); }
};

// Why one line is not a message.
struct feed_invalid {
  feed_reject reason = feed_reject::invalid_json;
  std::string field;   // the offending field, when there is one
  std::string message; // for the log and the HTTP answer
  std::string producer; // when the line named a valid one
};

// Exactly one of `message` and `invalid` is meaningful: message when valid.
struct feed_parse_result {
  std::optional<feed_message> message;
  feed_invalid invalid;

  bool ok() const { return message.has_value(); }
};

// Parses one line (without its newline). Never throws, whatever the bytes.
feed_parse_result parse_feed_line(std::string_view line);

} // namespace wager
