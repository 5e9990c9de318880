#include "wager/persistence/recovery.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace wager {

namespace {

bool checks_from_environment() noexcept {
  if (auto* value = std::getenv("WAGER_JOURNAL_CHECKS"))
    return std::strcmp(value, "0") != 0;
#ifdef NDEBUG
  return false;
#else
  return true;
#endif
}

std::atomic<bool>& checks() noexcept {
  static std::atomic<bool> on{checks_from_environment()};
  return on;
}

} // namespace

bool journal_checks_enabled() noexcept {
  return checks().load(std::memory_order_relaxed);
}

void set_journal_checks(bool on) noexcept {
  checks().store(on, std::memory_order_relaxed);
}

} // namespace wager
