#include "wager/runtime/config.hpp"

#include <doctest/doctest.h>

TEST_CASE("defaults placeholder") {
  auto r = wager::load_node_options({}, [](std::string_view) { return std::optional<std::string>{}; });
  CHECK(r.error.empty());
}
