#include "wager/cluster/entity_messages.hpp"

#include "wager/actors/bet.hpp"
#include "wager/actors/ids.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/session.hpp"
#include "wager/actors/user.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/runtime/entity.hpp"

#include <caf/actor_system_config.hpp>

#include <vector>

namespace wager {

void add_entity_command_types(caf::actor_system_config& cfg) {
  // Routing (entity_id) and identifiers that travel on their own.
  add_entity_message_types(cfg);
  cfg.add_message_type<user_id>("wager::user_id");
  cfg.add_message_type<market_id>("wager::market_id");
  cfg.add_message_type<bet_id>("wager::bet_id");
  cfg.add_message_type<money>("wager::money");
  cfg.add_message_type<price>("wager::price");
  cfg.add_message_type<event_position>("wager::event_position");

  // wallet/<user id>
  cfg.add_message_type<deposit_cmd>("wager::deposit_cmd");
  cfg.add_message_type<withdraw_cmd>("wager::withdraw_cmd");
  cfg.add_message_type<place_bet_cmd>("wager::place_bet_cmd");
  cfg.add_message_type<credit_payout_cmd>("wager::credit_payout_cmd");
  cfg.add_message_type<set_limits_cmd>("wager::set_limits_cmd");
  cfg.add_message_type<watch_cmd>("wager::watch_cmd");
  cfg.add_message_type<unwatch_cmd>("wager::unwatch_cmd");
  cfg.add_message_type<balance_query>("wager::balance_query");
  cfg.add_message_type<transactions_query>("wager::transactions_query");
  cfg.add_message_type<bet_query>("wager::bet_query");
  cfg.add_message_type<bets_query>("wager::bets_query");
  cfg.add_message_type<wallet_receipt>("wager::wallet_receipt");
  cfg.add_message_type<wallet_balance>("wager::wallet_balance");
  cfg.add_message_type<wallet_limits>("wager::wallet_limits");
  cfg.add_message_type<wallet_transaction>("wager::wallet_transaction");
  cfg.add_message_type<std::vector<wallet_transaction>>("std::vector<wager::wallet_transaction>");
  cfg.add_message_type<payout_ack>("wager::payout_ack");
  cfg.add_message_type<bet>("wager::bet");
  cfg.add_message_type<std::vector<bet>>("std::vector<wager::bet>");

  // market/<market id>
  cfg.add_message_type<market_definition>("wager::market_definition");
  cfg.add_message_type<create_market_cmd>("wager::create_market_cmd");
  cfg.add_message_type<update_market_cmd>("wager::update_market_cmd");
  cfg.add_message_type<set_status_cmd>("wager::set_status_cmd");
  cfg.add_message_type<set_prices_cmd>("wager::set_prices_cmd");
  cfg.add_message_type<settle_cmd>("wager::settle_cmd");
  cfg.add_message_type<market_query>("wager::market_query");
  cfg.add_message_type<accept_bet_cmd>("wager::accept_bet_cmd");
  cfg.add_message_type<subscribe_cmd>("wager::subscribe_cmd");
  cfg.add_message_type<unsubscribe_cmd>("wager::unsubscribe_cmd");
  cfg.add_message_type<market_view>("wager::market_view");
  cfg.add_message_type<market_update>("wager::market_update");
  cfg.add_message_type<bet_decision>("wager::bet_decision");

  // user/<username> and session/<session id>
  cfg.add_message_type<create_user_cmd>("wager::create_user_cmd");
  cfg.add_message_type<credentials_query>("wager::credentials_query");
  cfg.add_message_type<enrol_mfa_cmd>("wager::enrol_mfa_cmd");
  cfg.add_message_type<confirm_mfa_cmd>("wager::confirm_mfa_cmd");
  cfg.add_message_type<user_credentials>("wager::user_credentials");
  cfg.add_message_type<session_info>("wager::session_info");
  cfg.add_message_type<create_session_cmd>("wager::create_session_cmd");
  cfg.add_message_type<check_session_cmd>("wager::check_session_cmd");
  cfg.add_message_type<revoke_session_cmd>("wager::revoke_session_cmd");
  cfg.add_message_type<session_request_cmd>("wager::session_request_cmd");
  cfg.add_message_type<attach_stream_cmd>("wager::attach_stream_cmd");
  cfg.add_message_type<stream_attached>("wager::stream_attached");
}

} // namespace wager
