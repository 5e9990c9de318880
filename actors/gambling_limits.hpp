#pragma once

// Safer-gambling limits (UK Gambling Commission RTS 12 and 13): deposit and
// loss limits over rolling periods of 24 hours, 7 days and 30 days, the
// 24-hour cooling-off before a limit rises or goes, time-outs and
// self-exclusion that only grow, and the reality-check interval.
//
// Everything here is a pure function of the limits, the wallet's recent
// activity and a time, so the wallet's fold, its checks and the tests share
// one definition.

#include "wager/runtime/errors.hpp"
#include "wager/runtime/ring_queue.hpp"

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>

namespace wager {

enum class limit_period : uint8_t { day, week, month };

inline constexpr std::array<limit_period, 3> limit_periods{
  limit_period::day, limit_period::week, limit_period::month};

std::string_view to_string(limit_period p);

// Rolling lengths: 24 hours, 7 days, 30 days.
constexpr int64_t period_ms(limit_period p) {
  constexpr int64_t day = 86'400'000;
  switch (p) {
    case limit_period::day: return day;
    case limit_period::week: return 7 * day;
    case limit_period::month: return 30 * day;
  }
  return day;
}

// How long a higher limit or a removal waits before it applies.
inline constexpr int64_t limit_cooling_off_ms = 86'400'000;
// Time-outs run from 24 hours to 6 weeks; self-exclusion at least 6 calendar
// months. A requested end may fall this much short of a bound (the client's
// clock and the request's flight).
inline constexpr int64_t limit_bound_slack_ms = 5 * 60'000;
inline constexpr int64_t time_out_min_ms = 86'400'000;
inline constexpr int64_t time_out_max_ms = 42 * 86'400'000LL;
inline constexpr int self_exclusion_min_months = 6;
inline constexpr int64_t reality_check_min_minutes = 10;
inline constexpr int64_t reality_check_max_minutes = 120;

// Amounts in minor units; 0 is "no limit". A pending amount of -1 is "no
// change pending", 0 a pending removal.
inline constexpr int64_t nothing_pending = -1;

struct gambling_limits {
  std::array<int64_t, 3> deposit{};
  std::array<int64_t, 3> loss{};
  std::array<int64_t, 3> pending_deposit{nothing_pending, nothing_pending, nothing_pending};
  std::array<int64_t, 3> pending_loss{nothing_pending, nothing_pending, nothing_pending};
  int64_t pending_effective_ms = 0; // when every pending change applies
  int64_t time_out_until_ms = 0;
  int64_t self_exclude_until_ms = 0;
  int64_t reality_check_minutes = 0; // 0: off

  bool has_pending() const;
  bool operator==(const gambling_limits&) const = default;
};

// A requested change. Amounts: nullopt keeps, 0 removes, more sets.
// reality_check_minutes: 0 turns it off.
struct limits_change {
  std::array<std::optional<int64_t>, 3> deposit;
  std::array<std::optional<int64_t>, 3> loss;
  std::optional<int64_t> time_out_until_ms;
  std::optional<int64_t> self_exclude_until_ms;
  std::optional<int64_t> reality_check_minutes;
};

struct limits_refusal {
  errc code = errc::invalid_field;
  std::string field; // as the API names it: "loss_limits.week"
  std::string message;
};

// The limits at `now_ms`: pending changes whose time has come applied.
gambling_limits in_force(gambling_limits l, int64_t now_ms);

// A change asked for at `now_ms`, checked and applied to the limits then in
// force. A lower limit applies at once (and drops a pending change of that
// limit); a higher one, or a removal, waits limit_cooling_off_ms, and asking
// for one restarts the wait of every pending change. Time-out and
// self-exclusion can be extended, never shortened; asking again for the end
// already in force changes nothing, so a retried request succeeds.
std::variant<gambling_limits, limits_refusal> change_limits(const gambling_limits& current,
                                                            const limits_change& change,
                                                            int64_t now_ms);

// Bets and deposits are blocked while a time-out or self-exclusion runs.
bool excluded(const gambling_limits& l, int64_t now_ms);

// `ms` plus `months` calendar months (UTC), the day clamped to the month's
// last: 31 August plus 6 months is 28 (or 29) February.
int64_t add_calendar_months(int64_t ms, int months);

// -- activity over the rolling periods ----------------------------------------

// What moved in one UTC minute: deposits, stakes committed to bets, and
// returns (payouts and refunds).
struct activity_minute {
  int64_t minute = 0; // minutes since the epoch
  int64_t deposited = 0;
  int64_t staked = 0;
  int64_t returned = 0;

  bool operator==(const activity_minute&) const = default;
};

// A ring_queue, not a std::deque: an idle or new wallet's log costs no
// allocation, and a wallet active in one minute holds one 32-byte entry.
using activity_log = ring_queue<activity_minute>;

// Adds to the minute of `at_ms` and forgets minutes older than the longest
// period. A time before the newest minute (the clock stepped back) counts in
// the newest, so an amount never leaves a window early.
void record_activity(activity_log& log, int64_t at_ms, int64_t deposited, int64_t staked,
                     int64_t returned);

struct activity_totals {
  int64_t deposited = 0;
  int64_t staked = 0;
  int64_t returned = 0;
};

// The sums over the period ending at `now_ms`, to the minute: an amount
// leaves the window within a minute after it is a whole period old, never
// before.
activity_totals activity_within(const activity_log& log, int64_t now_ms, limit_period p);

// The sums from the start of the minute of `since_ms` on.
activity_totals activity_since(const activity_log& log, int64_t since_ms);

// The limit a deposit of `amount` at `now_ms` would break, if any
// (limit_exceeded, field "deposit_limits.<period>").
std::optional<limits_refusal> deposit_refusal(const gambling_limits& in_force,
                                              const activity_log& log, int64_t now_ms,
                                              int64_t amount);

// The loss limit a stake would break, if any: stakes minus returns in the
// period, plus stakes held for bets not yet decided, plus this stake.
std::optional<limits_refusal> stake_refusal(const gambling_limits& in_force,
                                            const activity_log& log, int64_t now_ms,
                                            int64_t held, int64_t stake);

} // namespace wager
