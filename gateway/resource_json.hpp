#pragma once

// The one JSON form of each domain type the client API shows
// (shared/API.md): a market, a bet, a point in time, an error's code. REST answers
// (api_*.cpp) and stream messages (stream_json.cpp) both encode through
// these, and tests/gateway/api_openapi.test.cpp checks them against the
// schemas of docs/openapi.json, so the three cannot drift apart.

#include "wager/actors/bet.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/odds.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/rfc3339.hpp"

#include <boost/json/object.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wager {

// {market_id, event, name, status, selections: [{selection_id, name, price}],
//  limits: {max_stake, max_liability}, in_play_delay_ms, version}
// With odds other than decimal, each selection also carries its price in
// that form: price_fractional ("6/4") or price_american ("+150").
boost::json::object market_json(const market_view& m, odds_format odds = odds_format::decimal);

// {bet_id, market_id, selection_id, stake, price, status, potential_payout,
//  placed_at, payout? and settled_at? once settled}, and price_fractional
// or price_american as for a market.
boost::json::object bet_json(const bet& b, odds_format odds = odds_format::decimal);

// The API's code for a platform error, the same in a REST answer and a
// stream's error message. A journal that cannot write, a supervisor that
// gave up, a lost race on a stream's sequence and errors from outside
// Wager (a timeout, an actor gone) are all `unavailable`: the caller
// retries with the same request id. Every other code is its own.
errc api_code(const caf::error& err);

} // namespace wager
