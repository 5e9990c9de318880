#pragma once

// Wager's operating errors: one table, one code per way a caller reacts.
// The names match the API's error codes (shared/API.md), so an error crosses
// actor, thread and process boundaries as a caf::error in the "wager"
// category and reaches a client unchanged.

#include <caf/atom.hpp>
#include <caf/error.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wager {

enum class errc : uint8_t {
  none = 0,
  // Input
  invalid_field = 1,
  missing_field,
  unknown_field,
  invalid_json,
  // Auth
  unauthorized,
  invalid_credentials,
  mfa_required,
  invalid_mfa_code,
  forbidden,
  self_excluded,
  not_found,
  // Conflicts
  insufficient_funds,
  price_changed,
  market_not_open,
  request_id_reused,
  username_taken,
  already_exists,     // creating what exists, with a different definition
  illegal_transition, // a market lifecycle change that its state refuses
  cashout_unavailable, // a bet that cannot be cashed out now (a leg's market not open)
  sequence_conflict,  // journal: another writer appended first
  // Limits
  too_large,
  limit_exceeded,
  rate_limited,
  // Availability
  unavailable,        // draining, journal down, shard moving
  journal_failure,    // the disk refused a write (full, read-only, corrupt)
  restart_intensity_exceeded, // a supervisor gave up on its children
  internal,
};

inline constexpr caf::atom_value error_category = caf::atom("wager");

// The API's snake_case code, e.g. "insufficient_funds".
std::string_view to_code(errc code) noexcept;

// The code whose to_code is `code` ("none" is errc::none), or nullopt.
std::optional<errc> parse_code(std::string_view code) noexcept;

// The HTTP status the API gives this code.
int http_status(errc code) noexcept;

caf::error make_error(errc code);
caf::error make_error(errc code, std::string message);

// With a detail the API adds to the error body: the current price with
// price_changed, the field name with invalid_field.
caf::error make_error(errc code, std::string message, std::string detail);

// The wager code inside a caf::error, or errc::internal for foreign errors
// (a timeout, a dead actor), or errc::none for no error.
errc code_of(const caf::error& err) noexcept;

// The human-readable message carried by make_error(code, message), if any.
std::string message_of(const caf::error& err);

// The detail carried by make_error(code, message, detail), if any.
std::string detail_of(const caf::error& err);

} // namespace wager
