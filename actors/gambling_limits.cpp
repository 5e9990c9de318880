#include "wager/actors/gambling_limits.hpp"

#include "wager/actors/money.hpp"

#include <algorithm>
#include <chrono>

namespace wager {

namespace {

constexpr int64_t minute_ms = 60'000;

int64_t minute_of(int64_t ms) {
  return ms >= 0 ? ms / minute_ms : (ms - minute_ms + 1) / minute_ms;
}

std::string field_name(std::string_view kind, limit_period p) {
  return std::string{kind} + "." + std::string{to_string(p)};
}

// One amount's change: at once when it lowers (or sets a first) limit,
// pending otherwise. Returns true when it left a change pending.
bool change_amount(int64_t& in_force, int64_t& pending, int64_t wanted) {
  bool lowers = wanted > 0 && (in_force == 0 || wanted <= in_force);
  if (lowers || (wanted == 0 && in_force == 0)) {
    in_force = wanted;
    pending = nothing_pending;
    return false;
  }
  pending = wanted; // a higher amount, or a removal (0)
  return true;
}

} // namespace

std::string_view to_string(limit_period p) {
  switch (p) {
    case limit_period::day: return "day";
    case limit_period::week: return "week";
    case limit_period::month: return "month";
  }
  return "day";
}

bool gambling_limits::has_pending() const {
  auto any = [](const std::array<int64_t, 3>& a) {
    return std::any_of(a.begin(), a.end(), [](int64_t v) { return v != nothing_pending; });
  };
  return any(pending_deposit) || any(pending_loss);
}

gambling_limits in_force(gambling_limits l, int64_t now_ms) {
  if (!l.has_pending() || now_ms < l.pending_effective_ms)
    return l;
  for (size_t i = 0; i < 3; ++i) {
    if (l.pending_deposit[i] != nothing_pending)
      l.deposit[i] = l.pending_deposit[i];
    if (l.pending_loss[i] != nothing_pending)
      l.loss[i] = l.pending_loss[i];
    l.pending_deposit[i] = l.pending_loss[i] = nothing_pending;
  }
  l.pending_effective_ms = 0;
  return l;
}

int64_t add_calendar_months(int64_t ms, int months) {
  using namespace std::chrono;
  auto t = sys_time<milliseconds>{milliseconds{ms}};
  auto day = floor<days>(t);
  auto time_of_day = t - day;
  year_month_day ymd{day};
  auto ym = year_month{ymd.year(), ymd.month()} + std::chrono::months{months};
  auto last = year_month_day_last{ym.year(), month_day_last{ym.month()}}.day();
  auto target = year_month_day{ym.year(), ym.month(), std::min(ymd.day(), last)};
  return (sys_days{target} + time_of_day).time_since_epoch().count();
}

std::variant<gambling_limits, limits_refusal> change_limits(const gambling_limits& current,
                                                            const limits_change& change,
                                                            int64_t now_ms) {
  auto refuse = [](std::string field, std::string message) {
    return limits_refusal{errc::invalid_field, std::move(field), std::move(message)};
  };
  auto l = in_force(current, now_ms);
  for (auto p : limit_periods) {
    auto i = static_cast<size_t>(p);
    for (auto [kind, wanted] : {std::pair{"deposit_limits", change.deposit[i]},
                                std::pair{"loss_limits", change.loss[i]}})
      if (wanted && (*wanted < 0 || *wanted > amount_max_minor))
        return refuse(field_name(kind, p),
                      "a limit is 1 to 10^12 minor units, or null to remove it");
  }
  if (auto until = change.time_out_until_ms; until && *until != l.time_out_until_ms) {
    if (*until < l.time_out_until_ms)
      return refuse("time_out_until", "a time-out can be extended, not shortened");
    if (*until < now_ms + time_out_min_ms - limit_bound_slack_ms
        || *until > now_ms + time_out_max_ms + limit_bound_slack_ms)
      return refuse("time_out_until", "a time-out ends 24 hours to 6 weeks from now");
  }
  if (auto until = change.self_exclude_until_ms; until && *until != l.self_exclude_until_ms) {
    if (*until < l.self_exclude_until_ms)
      return refuse("self_exclude_until", "self-exclusion can be extended, not shortened");
    if (*until < add_calendar_months(now_ms, self_exclusion_min_months) - limit_bound_slack_ms)
      return refuse("self_exclude_until", "self-exclusion lasts at least 6 months from now");
  }
  if (auto m = change.reality_check_minutes;
      m && *m != 0 && (*m < reality_check_min_minutes || *m > reality_check_max_minutes))
    return refuse("reality_check_minutes",
                  "reality_check_minutes is 10 to 120, or null to turn it off");

  bool waits = false;
  for (size_t i = 0; i < 3; ++i) {
    if (change.deposit[i])
      waits |= change_amount(l.deposit[i], l.pending_deposit[i], *change.deposit[i]);
    if (change.loss[i])
      waits |= change_amount(l.loss[i], l.pending_loss[i], *change.loss[i]);
  }
  if (waits)
    l.pending_effective_ms = now_ms + limit_cooling_off_ms;
  else if (!l.has_pending())
    l.pending_effective_ms = 0;
  if (change.time_out_until_ms)
    l.time_out_until_ms = *change.time_out_until_ms;
  if (change.self_exclude_until_ms)
    l.self_exclude_until_ms = *change.self_exclude_until_ms;
  if (change.reality_check_minutes)
    l.reality_check_minutes = *change.reality_check_minutes;
  return l;
}

bool excluded(const gambling_limits& l, int64_t now_ms) {
  return now_ms < l.time_out_until_ms || now_ms < l.self_exclude_until_ms;
}

void record_activity(activity_log& log, int64_t at_ms, int64_t deposited, int64_t staked,
                     int64_t returned) {
  auto minute = minute_of(at_ms);
  if (log.empty() || log.back().minute < minute)
    log.push_back({minute, 0, 0, 0});
  auto& m = log.back();
  m.deposited += deposited;
  m.staked += staked;
  m.returned += returned;
  auto oldest_kept = minute_of(at_ms - period_ms(limit_period::month)) - 1;
  while (!log.empty() && log.front().minute < oldest_kept)
    log.pop_front();
}

activity_totals activity_within(const activity_log& log, int64_t now_ms, limit_period p) {
  // A minute counts while any part of it is inside (now - period, now].
  return activity_since(log, now_ms - period_ms(p));
}

activity_totals activity_since(const activity_log& log, int64_t since_ms) {
  auto first = minute_of(since_ms);
  activity_totals t;
  for (auto i = log.rbegin(); i != log.rend() && i->minute >= first; ++i) {
    t.deposited += i->deposited;
    t.staked += i->staked;
    t.returned += i->returned;
  }
  return t;
}

std::optional<limits_refusal> deposit_refusal(const gambling_limits& l, const activity_log& log,
                                              int64_t now_ms, int64_t amount) {
  for (auto p : limit_periods) {
    auto limit = l.deposit[static_cast<size_t>(p)];
    if (limit > 0 && activity_within(log, now_ms, p).deposited + amount > limit)
      return limits_refusal{errc::limit_exceeded, field_name("deposit_limits", p),
                            "the deposit is over the " + std::string{to_string(p)}
                              + " deposit limit"};
  }
  return std::nullopt;
}

std::optional<limits_refusal> stake_refusal(const gambling_limits& l, const activity_log& log,
                                            int64_t now_ms, int64_t held, int64_t stake) {
  for (auto p : limit_periods) {
    auto limit = l.loss[static_cast<size_t>(p)];
    if (limit <= 0)
      continue;
    auto t = activity_within(log, now_ms, p);
    if (t.staked - t.returned + held + stake > limit)
      return limits_refusal{errc::limit_exceeded, field_name("loss_limits", p),
                            "the stake would take losses over the " + std::string{to_string(p)}
                              + " loss limit"};
  }
  return std::nullopt;
}

} // namespace wager
