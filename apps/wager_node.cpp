#include <wager/wager.hpp>

#include <cstdio>

int main(int argc, char** argv) {
  std::vector<std::string> args{argv + 1, argv + argc};
  auto config = wager::load_node_options(args);
  if (config.help_requested) {
    std::fputs(config.help.c_str(), stdout);
    return 0;
  }
  if (!config.error.empty()) {
    std::fprintf(stderr, "wager-node: %s\n", config.error.c_str());
    return 2;
  }
  return 0;
}
