#pragma once

// Intrusion detection at the edge: the client API reports what it sees
// (failed logins, wrong TOTP codes, refused operator keys, refused session
// tokens, settlements), and the detector turns patterns of them into
// security events. Each event is one structured audit line
// ({"audit":"security",...}) and a count in
// wager_security_events_total{kind}; an attack also blocks its source
// address, for a time that doubles with each block (bounded). A blocked
// address gets 429 rate_limited with Retry-After on every client API route;
// the operator lists blocks at GET /v1/admin/blocks and lifts one with
// DELETE /v1/admin/blocks/{address}. Every count is per window and every
// table is bounded, so an attacker cannot grow the node's memory.

#include "wager/runtime/metrics.hpp"

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace wager {

struct intrusion_options {
  // The window every threshold counts in.
  std::chrono::milliseconds window{std::chrono::minutes{5}};
  // Distinct usernames failing to log in from one address: credential
  // stuffing.
  uint32_t stuffing_usernames = 10;
  // Failed logins of one username, from any address: password brute
  // force. It blocks each address that made at least half of them, so
  // guesses spread over many addresses raise the event without blocking
  // the user's own.
  uint32_t password_failures = 10;
  // Wrong TOTP codes for one username: TOTP brute force, blocked the same
  // way.
  uint32_t totp_failures = 5;
  // Refused operator keys from one address.
  uint32_t admin_key_failures = 5;
  // Refused session tokens (unknown, expired, revoked, malformed) from one
  // address. Clients with an expired token meet one each, so this is high.
  uint32_t token_refusals = 20;
  // Markets settled or voided by one operator key within a minute: outside
  // the usual pattern. Recorded, never blocked (it is the operator's key).
  uint32_t settlements_per_minute = 20;
  // Sequence gaps of one feed producer within a minute: lines lost or
  // injected between the provider and the node. Recorded, never blocked.
  uint32_t feed_gaps_per_minute = 3;
  // A first block lasts block_first; each further block of the same
  // address doubles it, up to block_max.
  std::chrono::milliseconds block_first{std::chrono::minutes{1}};
  std::chrono::milliseconds block_max{std::chrono::hours{1}};
  // Addresses and usernames tracked at once; past it the quietest go.
  size_t tracked_max = 100'000;
};

// The kinds of wager_security_events_total{kind}.
enum class security_event : uint8_t {
  credential_stuffing,
  password_brute_force,
  totp_brute_force,
  admin_key_failure,
  token_refused,
  blocked_request,
  settlement_burst,
  feed_unknown_producer,
  feed_sequence_burst,
};
inline constexpr size_t security_event_kinds = 9;

std::string_view to_string(security_event kind);

struct address_block {
  std::string address;
  security_event reason = security_event::credential_stuffing;
  int64_t blocked_until_ms = 0; // wall clock, ms since the epoch
  uint32_t blocks = 0;          // how many times this address was blocked
};

class intrusion_detector {
public:
  intrusion_detector(intrusion_options options, metrics& m);

  // Milliseconds left of `address`'s block, 0 when it is not blocked. A
  // blocked request counts as a blocked_request event (logged once per
  // block).
  int64_t blocked_ms(const std::string& address);

  enum class login_failure : uint8_t {
    password,     // wrong username or password
    totp,         // wrong TOTP code (at login or when confirming one)
    rate_limited, // refused by the login rate limit before any check
  };
  // A login that failed. A rate-limited attempt counts toward credential
  // stuffing from its address only: it guessed nothing.
  void login_failed(const std::string& address, const std::string& username,
                    login_failure why);
  void admin_key_refused(const std::string& address);
  void token_refused(const std::string& address);
  // A market settled or voided with the operator key `who`.
  void settled(const std::string& address, const std::string& who);
  // A feed line from a producer the node does not take (logged once per
  // producer and window, every one counted), and a producer's sequence gap.
  void feed_unknown_producer(const std::string& producer);
  void feed_gap(const std::string& producer);

  std::vector<address_block> blocks();
  // False when the address was not blocked.
  bool lift(const std::string& address, const std::string& who);

private:
  using clock = std::chrono::steady_clock;
  struct recent {
    std::deque<clock::time_point> at; // newest last, at most the threshold
    // Distinct usernames, by their latest failure (credential stuffing).
    std::map<std::string, clock::time_point> names;
    // Failures per source address since the window last emptied (brute
    // force on one username).
    std::map<std::string, uint32_t> sources;
    clock::time_point last_seen{};
  };
  struct block_state {
    security_event reason = security_event::credential_stuffing;
    clock::time_point until{};
    int64_t until_wall_ms = 0;
    uint32_t blocks = 0;
    bool blocked_request_logged = false;
    clock::time_point last_seen{};
  };

  // Records one occurrence under `key`; true when the window now holds
  // `threshold` of them (and then forgets them, so the next event needs
  // a full window again).
  bool count(std::unordered_map<std::string, recent>& table, const std::string& key,
             uint32_t threshold, std::chrono::milliseconds window, clock::time_point now);
  void event(security_event kind, const std::string& address, std::string_view detail,
             std::optional<int64_t> blocked_until_ms);
  // REQUIRES: mutex_ held. Blocks `address` and returns its wall-clock end.
  int64_t block(const std::string& address, security_event reason, clock::time_point now);
  template <class Table>
  void bound(Table& table);
  // REQUIRES: mutex_ held. Counts a failure of `username` from `address`;
  // when the window holds `threshold`, returns the addresses to block
  // (each with at least half of them) and the number of sources, and
  // starts counting afresh.
  std::optional<std::pair<std::vector<std::string>, size_t>>
  guess(std::unordered_map<std::string, recent>& table, const std::string& username,
        const std::string& address, uint32_t threshold, clock::time_point now);

  intrusion_options options_;
  std::mutex mutex_;
  std::unordered_map<std::string, recent> by_address_;   // stuffing: usernames per address
  std::unordered_map<std::string, recent> by_username_;  // password failures
  std::unordered_map<std::string, recent> totp_by_user_;
  std::unordered_map<std::string, recent> admin_by_address_;
  std::unordered_map<std::string, recent> tokens_by_address_;
  std::unordered_map<std::string, recent> settles_by_key_;
  std::unordered_map<std::string, recent> unknown_producers_;
  std::unordered_map<std::string, recent> gaps_by_producer_;
  std::unordered_map<std::string, block_state> blocks_;
  prometheus::Counter* events_[security_event_kinds] = {};
};

} // namespace wager
