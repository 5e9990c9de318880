#include "wager/runtime/assert.hpp"

#include <cstdio>
#include <cstdlib>

namespace wager::detail {

void assertion_failed(const char* condition, std::string_view context,
                      const char* file, int line) noexcept {
  std::fprintf(stderr, "wager: assertion failed: %s (%.*s) at %s:%d\n", condition,
               static_cast<int>(context.size()), context.data(), file, line);
  std::fflush(stderr);
  std::abort();
}

} // namespace wager::detail
