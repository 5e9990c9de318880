#pragma once

// Times as the API and the feed write them: RFC 3339 in UTC.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wager {

// RFC 3339 in UTC with milliseconds: "2026-11-28T00:36:49.123Z".
std::string format_time(int64_t unix_ms);
// The same form, or a whole-second one without fraction; nullopt otherwise.
std::optional<int64_t> parse_time(std::string_view text);

} // namespace wager
