#pragma once

// Builds node_options from the command line, the environment and a JSON file
// (shared/API.md, "Node command line"): a flag beats the environment, which
// beats the file, which beats the default. Every option --foo-bar is also
// WAGER_FOO_BAR and the JSON key "foo-bar" (or "foo_bar").

#include "wager/runtime/options.hpp"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

struct config_result {
  node_options options;
  // Non-empty when the configuration is unusable: one line for stderr.
  std::string error;
  // --help was given: the text is in `help`, and the program should exit 0.
  bool help_requested = false;
  std::string help;
};

// Looks up an environment variable; empty optional when unset.
using env_lookup = std::function<std::optional<std::string>(std::string_view)>;

// The process environment.
env_lookup process_environment();

// Parses args (without the program name) into node options.
config_result load_node_options(const std::vector<std::string>& args,
                                const env_lookup& env = process_environment());

} // namespace wager
