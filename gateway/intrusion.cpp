#include "wager/gateway/intrusion.hpp"

#include "wager/gateway/resource_json.hpp"
#include "wager/runtime/log.hpp"

#include <boost/json.hpp>
#include <prometheus/counter.h>

#include <algorithm>
#include <tuple>
#include <type_traits>

namespace wager {

namespace {

int64_t wall_now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

} // namespace

std::string_view to_string(security_event kind) {
  switch (kind) {
    case security_event::credential_stuffing: return "credential_stuffing";
    case security_event::password_brute_force: return "password_brute_force";
    case security_event::totp_brute_force: return "totp_brute_force";
    case security_event::admin_key_failure: return "admin_key_failure";
    case security_event::token_refused: return "token_refused";
    case security_event::blocked_request: return "blocked_request";
    case security_event::settlement_burst: return "settlement_burst";
    case security_event::feed_unknown_producer: return "feed_unknown_producer";
    case security_event::feed_sequence_burst: return "feed_sequence_burst";
  }
  return "unknown";
}

intrusion_detector::intrusion_detector(intrusion_options options, metrics& m)
  : options_(options) {
  auto& family = prometheus::BuildCounter()
                   .Name("wager_security_events_total")
                   .Help("Security events detected at the edge, by kind")
                   .Register(m.registry());
  for (size_t i = 0; i < security_event_kinds; ++i)
    events_[i] = &family.Add({{"kind", std::string{to_string(static_cast<security_event>(i))}}});
}

template <class Table>
void intrusion_detector::bound(Table& table) {
  if (table.size() < options_.tracked_max)
    return;
  if constexpr (std::is_same_v<typename Table::mapped_type, block_state>) {
    // Blocks that have ended go first; blocks in force are kept while they
    // can be.
    auto now = clock::now();
    for (auto i = table.begin(); i != table.end();)
      i = i->second.until <= now ? table.erase(i) : std::next(i);
    if (table.size() < options_.tracked_max)
      return;
  }
  // The quietest half goes: an attacker spraying addresses or usernames
  // cannot grow the table, and the active entries stay.
  std::vector<clock::time_point> seen;
  seen.reserve(table.size());
  for (auto& [key, entry] : table)
    seen.push_back(entry.last_seen);
  auto middle = seen.begin() + static_cast<std::ptrdiff_t>(seen.size() / 2);
  std::nth_element(seen.begin(), middle, seen.end());
  auto cut = *middle;
  for (auto i = table.begin(); i != table.end();)
    i = i->second.last_seen <= cut ? table.erase(i) : std::next(i);
}

bool intrusion_detector::count(std::unordered_map<std::string, recent>& table,
                               const std::string& key, uint32_t threshold,
                               std::chrono::milliseconds window, clock::time_point now) {
  if (threshold == 0)
    return false;
  if (table.find(key) == table.end())
    bound(table);
  auto& r = table[key];
  r.last_seen = now;
  while (!r.at.empty() && now - r.at.front() > window)
    r.at.pop_front();
  r.at.push_back(now);
  if (r.at.size() < threshold)
    return false;
  r.at.clear();
  return true;
}

int64_t intrusion_detector::block(const std::string& address, security_event reason,
                                  clock::time_point now) {
  if (blocks_.find(address) == blocks_.end())
    bound(blocks_);
  auto& b = blocks_[address];
  // One incident, one block: more failures while blocked (requests that
  // were already in flight) neither extend nor count it again.
  if (b.until > now)
    return b.until_wall_ms;
  auto length = options_.block_first;
  for (uint32_t i = 0; i < b.blocks && length < options_.block_max; ++i)
    length *= 2;
  length = std::min(length, options_.block_max);
  b.reason = reason;
  b.blocks += 1;
  b.until = now + length;
  b.until_wall_ms = wall_now_ms() + length.count();
  b.blocked_request_logged = false;
  b.last_seen = now;
  return b.until_wall_ms;
}

void intrusion_detector::event(security_event kind, const std::string& address,
                               std::string_view detail, std::optional<int64_t> blocked_until_ms) {
  events_[static_cast<size_t>(kind)]->Increment();
  boost::json::object line{{"audit", "security"},
                           {"kind", to_string(kind)},
                           {"remote", address},
                           {"at", format_time(wall_now_ms())}};
  if (!detail.empty())
    line["detail"] = detail;
  if (blocked_until_ms)
    line["blocked_until"] = format_time(*blocked_until_ms);
  log().warn("{}", boost::json::serialize(line));
}

int64_t intrusion_detector::blocked_ms(const std::string& address) {
  auto now = clock::now();
  bool log_it = false;
  int64_t left = 0;
  std::optional<int64_t> until;
  {
    std::lock_guard lock{mutex_};
    auto i = blocks_.find(address);
    if (i == blocks_.end())
      return 0;
    auto& b = i->second;
    if (b.until <= now)
      return 0;
    left = std::chrono::duration_cast<std::chrono::milliseconds>(b.until - now).count();
    log_it = !b.blocked_request_logged;
    b.blocked_request_logged = true;
    until = b.until_wall_ms;
  }
  if (log_it)
    event(security_event::blocked_request, address, "requests refused until the block ends",
          until);
  else
    events_[static_cast<size_t>(security_event::blocked_request)]->Increment();
  return std::max<int64_t>(left, 1);
}

std::optional<std::pair<std::vector<std::string>, size_t>>
intrusion_detector::guess(std::unordered_map<std::string, recent>& table,
                          const std::string& username, const std::string& address,
                          uint32_t threshold, clock::time_point now) {
  if (threshold == 0)
    return std::nullopt;
  if (table.find(username) == table.end())
    bound(table);
  auto& r = table[username];
  r.last_seen = now;
  while (!r.at.empty() && now - r.at.front() > options_.window)
    r.at.pop_front();
  if (r.at.empty())
    r.sources.clear();
  r.at.push_back(now);
  // Sources are bounded by the threshold: an address beyond it could not
  // hold half of the failures anyway.
  if (r.sources.count(address) > 0 || r.sources.size() < threshold)
    ++r.sources[address];
  if (r.at.size() < threshold)
    return std::nullopt;
  std::vector<std::string> culprits;
  for (auto& [source, n] : r.sources)
    if (2 * n >= threshold)
      culprits.push_back(source);
  auto sources = r.sources.size();
  r.at.clear();
  r.sources.clear();
  return std::make_pair(std::move(culprits), sources);
}

void intrusion_detector::login_failed(const std::string& address, const std::string& username,
                                      login_failure why) {
  auto now = clock::now();
  std::vector<std::tuple<security_event, std::string, std::optional<int64_t>, std::string>> found;
  {
    std::lock_guard lock{mutex_};
    if (why != login_failure::rate_limited) {
      bool totp = why == login_failure::totp;
      auto kind = totp ? security_event::totp_brute_force : security_event::password_brute_force;
      if (auto hit = guess(totp ? totp_by_user_ : by_username_, username, address,
                           totp ? options_.totp_failures : options_.password_failures, now)) {
        auto detail = "user " + username + ", from " + std::to_string(hit->second)
                      + (hit->second == 1 ? " address" : " addresses");
        if (hit->first.empty())
          found.emplace_back(kind, detail, std::nullopt, address);
        for (auto& culprit : hit->first)
          found.emplace_back(kind, detail, block(culprit, kind, now), culprit);
      }
    }
    // Credential stuffing: many usernames failing from one address.
    if (by_address_.find(address) == by_address_.end())
      bound(by_address_);
    auto& r = by_address_[address];
    r.last_seen = now;
    for (auto i = r.names.begin(); i != r.names.end();)
      i = now - i->second > options_.window ? r.names.erase(i) : std::next(i);
    if (r.names.size() < options_.stuffing_usernames || r.names.count(username) > 0)
      r.names[username] = now;
    if (options_.stuffing_usernames > 0 && r.names.size() >= options_.stuffing_usernames) {
      found.emplace_back(security_event::credential_stuffing,
                         std::to_string(r.names.size()) + " usernames failed",
                         block(address, security_event::credential_stuffing, now), address);
      r.names.clear();
    }
  }
  for (auto& [kind, detail, until, source] : found)
    event(kind, source, detail, until);
}

void intrusion_detector::admin_key_refused(const std::string& address) {
  auto now = clock::now();
  std::optional<int64_t> until;
  {
    std::lock_guard lock{mutex_};
    if (count(admin_by_address_, address, options_.admin_key_failures, options_.window, now))
      until = block(address, security_event::admin_key_failure, now);
  }
  if (until)
    event(security_event::admin_key_failure, address,
          std::to_string(options_.admin_key_failures) + " refused operator keys", until);
}

void intrusion_detector::token_refused(const std::string& address) {
  auto now = clock::now();
  std::optional<int64_t> until;
  {
    std::lock_guard lock{mutex_};
    if (count(tokens_by_address_, address, options_.token_refusals, options_.window, now))
      until = block(address, security_event::token_refused, now);
  }
  if (until)
    event(security_event::token_refused, address,
          std::to_string(options_.token_refusals) + " refused session tokens", until);
}

void intrusion_detector::settled(const std::string& address, const std::string& who) {
  auto now = clock::now();
  bool burst = false;
  {
    std::lock_guard lock{mutex_};
    burst = count(settles_by_key_, who, options_.settlements_per_minute,
                  std::chrono::minutes{1}, now);
  }
  if (burst)
    event(security_event::settlement_burst, address,
          who + " settled or voided " + std::to_string(options_.settlements_per_minute)
            + " markets within a minute",
          std::nullopt);
}

void intrusion_detector::feed_unknown_producer(const std::string& producer) {
  auto now = clock::now();
  bool first = false;
  {
    std::lock_guard lock{mutex_};
    if (unknown_producers_.find(producer) == unknown_producers_.end())
      bound(unknown_producers_);
    auto& r = unknown_producers_[producer];
    first = r.at.empty() || now - r.at.back() > options_.window;
    if (first) {
      r.at.clear();
      r.at.push_back(now);
    }
    r.last_seen = now;
  }
  if (first)
    event(security_event::feed_unknown_producer, "feed",
          "lines from unknown producer " + producer.substr(0, 64), std::nullopt);
  else
    events_[static_cast<size_t>(security_event::feed_unknown_producer)]->Increment();
}

void intrusion_detector::feed_gap(const std::string& producer) {
  auto now = clock::now();
  bool burst = false;
  {
    std::lock_guard lock{mutex_};
    burst = count(gaps_by_producer_, producer, options_.feed_gaps_per_minute,
                  std::chrono::minutes{1}, now);
  }
  if (burst)
    event(security_event::feed_sequence_burst, "feed",
          "producer " + producer + " skipped sequence numbers "
            + std::to_string(options_.feed_gaps_per_minute) + " times within a minute",
          std::nullopt);
}

std::vector<address_block> intrusion_detector::blocks() {
  auto now = clock::now();
  std::vector<address_block> out;
  std::lock_guard lock{mutex_};
  for (auto& [address, b] : blocks_)
    if (b.until > now)
      out.push_back({address, b.reason, b.until_wall_ms, b.blocks});
  std::sort(out.begin(), out.end(),
            [](auto& a, auto& b) { return a.address < b.address; });
  return out;
}

bool intrusion_detector::lift(const std::string& address, const std::string& who) {
  auto now = clock::now();
  {
    std::lock_guard lock{mutex_};
    auto i = blocks_.find(address);
    if (i == blocks_.end() || i->second.until <= now)
      return false;
    // The count of blocks stays: an address that attacks again after a lift
    // is blocked for longer.
    i->second.until = {};
  }
  log().warn("{}", boost::json::serialize(boost::json::object{{"audit", "security"},
                                                             {"kind", "block_lifted"},
                                                             {"remote", address},
                                                             {"who", who},
                                                             {"at", format_time(wall_now_ms())}}));
  return true;
}

} // namespace wager
