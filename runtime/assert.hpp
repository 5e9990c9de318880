#pragma once

// WAGER_ASSERT catches programmer errors: a broken invariant means the state
// in memory can no longer be trusted, so the process stops at once rather than
// move money on top of it. Operating errors (insufficient funds, a full disk)
// are values, never assertions. The check stays on in release builds: the
// cost is a branch, and a wrong balance costs more.

#include <string_view>

namespace wager::detail {

[[noreturn]] void assertion_failed(const char* condition, std::string_view context,
                                   const char* file, int line) noexcept;

} // namespace wager::detail

#define WAGER_ASSERT(condition, context)                                       \
  do {                                                                         \
    if (!(condition)) [[unlikely]]                                             \
      ::wager::detail::assertion_failed(#condition, (context), __FILE__,       \
                                        __LINE__);                             \
  } while (false)
