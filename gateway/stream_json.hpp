#pragma once

// The stream's server messages (shared/API.md "Stream"), as JSON text.

#include "wager/actors/bet.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/wallet.hpp"

#include <string>
#include <string_view>

namespace wager {

// The domain types inside the messages are encoded as REST encodes them
// (resource_json.hpp).

// {"type":"market","market":market_json(v)}
std::string market_message(const market_view& v);
// {"type":"status","market_id","version","status"}
std::string status_message(const market_update& u);
// {"type":"bet","bet":bet_json(b)}
std::string bet_message(const bet& b);
// {"type":"wallet","available","held"}
std::string wallet_message(const wallet_balance& b);
// {"type":"reality_check","minutes","staked","returned"}: the connection's
// age in minutes and the money staked and returned since it began.
std::string reality_check_message(int64_t minutes, money staked, money returned);
// {"type":"error","error":{"code","message","field"?}}
std::string error_message(std::string_view code, std::string_view message,
                          std::string_view field = {});

} // namespace wager
