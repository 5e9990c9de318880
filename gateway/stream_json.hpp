#pragma once

// The stream's server messages (shared/API.md "Stream"), as JSON text.

#include "wager/actors/bet.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/wallet.hpp"

#include <string>
#include <string_view>

namespace wager {

// {"type":"market","market":{market_id, event, name, status, selections, limits, version}}
std::string market_message(const market_view& v);
// {"type":"status","market_id","version","status"}
std::string status_message(const market_update& u);
// {"type":"bet","bet":{bet_id, market_id, selection_id, stake, price, status, ...}}
std::string bet_message(const bet& b);
// {"type":"wallet","available","held"}
std::string wallet_message(const wallet_balance& b);
// {"type":"error","error":{"code","message","field"?}}
std::string error_message(std::string_view code, std::string_view message,
                          std::string_view field = {});

} // namespace wager
