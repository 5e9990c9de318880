#pragma once

// The wallet's first answers, as stored in the journal and replayed to a
// retry, and its query views. Internal to actors/.

#include "wager/actors/wallet.hpp"
#include "wager/actors/wallet_state.hpp"

#include <caf/error.hpp>

#include <optional>
#include <string>
#include <vector>

namespace wager {

// A stored answer, decoded: exactly one of the three is set.
struct replayed_answer {
  std::optional<bet> bet_answer;
  std::optional<wallet_receipt> receipt;
  caf::error error;
};

// `response` as stored; when empty, the answer is bet `bet_key` as the
// wallet holds it now.
replayed_answer replay_message(const wallet_state& s, const std::string& bet_key,
                               const std::string& response);

// The final answer to a bet request: the bet if accepted, else the refusal
// stored for `request`.
std::string bet_response_json(const wallet_state& s, const std::string& bet_key,
                              const std::string& request);

// What is stored for a bet request while its saga runs.
std::string pending_bet_json(const std::string& bet, uint64_t hash);

uint64_t place_bet_hash(const place_bet_cmd& cmd);
uint64_t place_slip_hash(const place_slip_cmd& cmd);

transactions_page transactions_of(const wallet_state& s, const transactions_query& q);

bets_page bets_of(const wallet_state& s, bool settled);

} // namespace wager
