#include "wager/runtime/crash_point.hpp"

#include <atomic>
#include <charconv>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unistd.h>

namespace wager {

namespace {

struct armed_point {
  std::string name;
  long after = 1; // crash on this pass
  std::atomic<long> passes{0};
};

// Parsed once; nullptr when WAGER_CRASH_AT is unset or empty.
armed_point* armed() {
  static armed_point* point = [] () -> armed_point* {
    auto* text = std::getenv("WAGER_CRASH_AT");
    if (text == nullptr || *text == '\0')
      return nullptr;
    auto* p = new armed_point; // lives as long as the process
    std::string_view spec{text};
    auto colon = spec.find(':');
    p->name = std::string{spec.substr(0, colon)};
    if (colon != std::string_view::npos) {
      auto count = spec.substr(colon + 1);
      auto [end, ec] = std::from_chars(count.data(), count.data() + count.size(), p->after);
      if (ec != std::errc{} || end != count.data() + count.size() || p->after < 1) {
        std::fprintf(stderr, "WAGER_CRASH_AT: '%s' is not <point>[:<n>] with n >= 1\n", text);
        std::_Exit(2);
      }
    }
    return p;
  }();
  return point;
}

} // namespace

void crash_point(std::string_view point) {
  auto* p = armed();
  if (p == nullptr || point != p->name)
    return;
  if (p->passes.fetch_add(1) + 1 != p->after)
    return;
  // Said on stderr so a test can tell this crash from any other.
  std::string line = "crash point " + p->name + " reached\n";
  if (::write(STDERR_FILENO, line.data(), line.size()) < 0) {
    // Nothing to do: the kill below is what matters.
  }
  ::kill(::getpid(), SIGKILL);
}

} // namespace wager
