#include "wager/actors/gambling_limits.hpp"

#include <doctest/doctest.h>

#include <variant>

using namespace wager;

namespace {

constexpr int64_t minute = 60'000;
constexpr int64_t hour = 60 * minute;
constexpr int64_t day = 24 * hour;
// 2026-12-07T12:00:00Z
constexpr int64_t t0 = 1'796'644'800'000;

constexpr size_t d = static_cast<size_t>(limit_period::day);
constexpr size_t w = static_cast<size_t>(limit_period::week);
constexpr size_t m = static_cast<size_t>(limit_period::month);

gambling_limits changed(const gambling_limits& l, const limits_change& c, int64_t now) {
  auto r = change_limits(l, c, now);
  REQUIRE(std::holds_alternative<gambling_limits>(r));
  return std::get<gambling_limits>(r);
}

limits_refusal refused(const gambling_limits& l, const limits_change& c, int64_t now) {
  auto r = change_limits(l, c, now);
  REQUIRE(std::holds_alternative<limits_refusal>(r));
  return std::get<limits_refusal>(r);
}

limits_change deposit(size_t period, int64_t amount) {
  limits_change c;
  c.deposit[period] = amount;
  return c;
}

limits_change loss(size_t period, int64_t amount) {
  limits_change c;
  c.loss[period] = amount;
  return c;
}

} // namespace

TEST_CASE("limits: a first limit and a lower one apply at once") {
  auto l = changed({}, deposit(d, 5'000), t0);
  CHECK(l.deposit[d] == 5'000);
  CHECK_FALSE(l.has_pending());
  l = changed(l, deposit(d, 3'000), t0 + minute);
  CHECK(l.deposit[d] == 3'000);
  CHECK_FALSE(l.has_pending());
  l = changed(l, loss(m, 100'000), t0 + minute);
  CHECK(l.loss[m] == 100'000);
}

TEST_CASE("limits: a higher limit or a removal waits 24 hours, shown as pending") {
  auto l = changed({}, deposit(w, 5'000), t0);
  l = changed(l, deposit(w, 9'000), t0 + hour);
  CHECK(l.deposit[w] == 5'000);
  CHECK(l.pending_deposit[w] == 9'000);
  CHECK(l.pending_effective_ms == t0 + hour + day);
  CHECK(in_force(l, t0 + hour + day - 1).deposit[w] == 5'000);
  auto later = in_force(l, t0 + hour + day);
  CHECK(later.deposit[w] == 9'000);
  CHECK_FALSE(later.has_pending());

  auto removal = changed(later, deposit(w, 0), t0 + 2 * day);
  CHECK(removal.deposit[w] == 9'000);
  CHECK(removal.pending_deposit[w] == 0);
  CHECK(in_force(removal, t0 + 3 * day).deposit[w] == 0);
}

TEST_CASE("limits: a lower limit drops the pending raise of that limit, a new raise restarts the wait") {
  auto l = changed({}, loss(d, 1'000), t0);
  l = changed(l, deposit(d, 1'000), t0);
  l = changed(l, loss(d, 2'000), t0 + hour); // pending
  l = changed(l, deposit(d, 4'000), t0 + 2 * hour); // pending, restarts the wait
  CHECK(l.pending_loss[d] == 2'000);
  CHECK(l.pending_deposit[d] == 4'000);
  CHECK(l.pending_effective_ms == t0 + 2 * hour + day);
  l = changed(l, loss(d, 500), t0 + 3 * hour);
  CHECK(l.loss[d] == 500);
  CHECK(l.pending_loss[d] == nothing_pending);
  CHECK(l.pending_deposit[d] == 4'000);
  CHECK(in_force(l, t0 + 2 * hour + day).deposit[d] == 4'000);
  // The same amount as in force is not a raise.
  auto same = changed(in_force(l, t0 + 3 * day), deposit(d, 4'000), t0 + 3 * day);
  CHECK_FALSE(same.has_pending());
}

TEST_CASE("limits: amounts out of range are refused, naming the limit") {
  auto r = refused({}, loss(w, -5), t0);
  CHECK(r.code == errc::invalid_field);
  CHECK(r.field == "loss_limits.week");
  CHECK(refused({}, deposit(m, 1'000'000'000'001), t0).field == "deposit_limits.month");
}

TEST_CASE("limits: a time-out runs 24 hours to 6 weeks and cannot be shortened") {
  limits_change c;
  c.time_out_until_ms = t0 + hour;
  CHECK(refused({}, c, t0).field == "time_out_until");
  c.time_out_until_ms = t0 + 43 * day;
  CHECK(refused({}, c, t0).field == "time_out_until");
  c.time_out_until_ms = t0 + 2 * day;
  auto l = changed({}, c, t0);
  CHECK(excluded(l, t0 + day));
  CHECK_FALSE(excluded(l, t0 + 2 * day));
  // A retry with the same end succeeds, however much time has passed.
  CHECK(changed(l, c, t0 + 47 * hour) == l);
  c.time_out_until_ms = t0 + 2 * day - minute;
  CHECK(refused(l, c, t0 + hour).message == "a time-out can be extended, not shortened");
  c.time_out_until_ms = t0 + 10 * day;
  CHECK(changed(l, c, t0 + hour).time_out_until_ms == t0 + 10 * day);
}

TEST_CASE("limits: self-exclusion lasts at least 6 calendar months and only grows") {
  limits_change c;
  c.self_exclude_until_ms = add_calendar_months(t0, 6) - hour;
  CHECK(refused({}, c, t0).field == "self_exclude_until");
  c.self_exclude_until_ms = add_calendar_months(t0, 6);
  auto l = changed({}, c, t0 + minute); // a request a minute in flight
  CHECK(excluded(l, t0 + 100 * day));
  c.self_exclude_until_ms = add_calendar_months(t0, 6) - day;
  CHECK(refused(l, c, t0).message == "self-exclusion can be extended, not shortened");
  c.self_exclude_until_ms = add_calendar_months(t0, 12);
  CHECK(changed(l, c, t0).self_exclude_until_ms == add_calendar_months(t0, 12));
}

TEST_CASE("limits: calendar months clamp to the month's last day") {
  // 2026-08-31T10:00:00Z plus 6 months is 2027-02-28T10:00:00Z.
  constexpr int64_t aug31 = 1'788'170'400'000;
  CHECK(add_calendar_months(aug31, 6) == 1'803'808'800'000);
  CHECK(add_calendar_months(t0, 6) - t0 == 182 * day); // 7 December to 7 June
}

TEST_CASE("limits: reality checks run every 10 to 120 minutes, 0 turns them off") {
  limits_change c;
  c.reality_check_minutes = 5;
  CHECK(refused({}, c, t0).field == "reality_check_minutes");
  c.reality_check_minutes = 30;
  auto l = changed({}, c, t0);
  CHECK(l.reality_check_minutes == 30);
  c.reality_check_minutes = 0;
  CHECK(changed(l, c, t0).reality_check_minutes == 0);
}

TEST_CASE("activity: rolling sums to the minute, never leaving a window early") {
  activity_log log;
  record_activity(log, t0, 1'000, 0, 0);
  record_activity(log, t0 + 30'000, 500, 200, 0);
  record_activity(log, t0 + 2 * hour, 0, 300, 100);
  CHECK(log.size() == 2);
  auto a = activity_within(log, t0 + 3 * hour, limit_period::day);
  CHECK(a.deposited == 1'500);
  CHECK(a.staked == 500);
  CHECK(a.returned == 100);
  // The first minute is a whole day old at t0 + day + 59 s; it still counts
  // until its last millisecond is.
  CHECK(activity_within(log, t0 + day, limit_period::day).deposited == 1'500);
  CHECK(activity_within(log, t0 + day + 59'999, limit_period::day).deposited == 1'500);
  CHECK(activity_within(log, t0 + day + minute, limit_period::day).deposited == 0);
  CHECK(activity_within(log, t0 + day + minute, limit_period::week).deposited == 1'500);
  // A clock that stepped back counts in the newest minute.
  record_activity(log, t0 - hour, 7, 0, 0);
  CHECK(log.size() == 2);
  CHECK(log.back().deposited == 7);
  // Older than the longest period is forgotten.
  record_activity(log, t0 + 31 * day, 1, 0, 0);
  CHECK(log.size() == 1);
}

TEST_CASE("activity: a deposit or a stake over a limit is refused, naming the limit") {
  gambling_limits l;
  l.deposit[w] = 10'000;
  l.deposit[d] = 6'000;
  activity_log log;
  record_activity(log, t0, 5'000, 0, 0);
  CHECK_FALSE(deposit_refusal(l, log, t0, 1'000));
  CHECK(deposit_refusal(l, log, t0, 1'001)->field == "deposit_limits.day");
  record_activity(log, t0 + 2 * day, 5'000, 0, 0);
  auto r = deposit_refusal(l, log, t0 + 2 * day, 1);
  REQUIRE(r);
  CHECK(r->code == errc::limit_exceeded);
  CHECK(r->field == "deposit_limits.week");

  l.loss[d] = 1'000;
  // Staked 800, returned 300, 200 held: 300 more is at the limit, 301 over.
  record_activity(log, t0 + 2 * day, 0, 800, 300);
  CHECK_FALSE(stake_refusal(l, log, t0 + 2 * day, 200, 300));
  CHECK(stake_refusal(l, log, t0 + 2 * day, 200, 301)->field == "loss_limits.day");
  // Returns above the stakes leave room for more than the limit.
  record_activity(log, t0 + 2 * day, 0, 0, 2'000);
  CHECK_FALSE(stake_refusal(l, log, t0 + 2 * day, 0, 2'500));
}
