#pragma once

// Named points where a crash test can kill the process at an exact step.
//
// With WAGER_CRASH_AT=<point> in the environment the process sends itself
// SIGKILL the first time it passes that point (WAGER_CRASH_AT=<point>:<n>:
// the n-th time). Without it, a crash point costs one predictable branch:
// the variable is read once, at the first crash point passed.
//
// The points (where the step's effect is durable and nothing after it has
// happened yet):
//   wallet.hold_durable       a bet's stake is held on disk; the market not asked
//   market.decision_durable   the market's decision is on disk; not answered
//   wallet.decision_received  the wallet has the decision; nothing persisted
//   wallet.bet_durable        stake committed or released on disk; not answered
//   market.result_durable     a settlement (or a refund before it) is on disk; no payout sent
//   wallet.payout_durable     a payout is credited on disk; not acknowledged
//   market.rollback_durable   a rolled-back result is on disk; no reversal sent
//   wallet.reversal_durable   a payout taken back (and any new one) on disk; not acknowledged
//   wallet.leg_release_acknowledged, market.leg_released   a refused slip's legs
//   market.cashout_durable, wallet.cashout_durable         a cash-out's two sides

#include <string_view>

namespace wager {

void crash_point(std::string_view point);

} // namespace wager
