#include <wager/wager.hpp>

#include <cstdio>

int main() {
  wager::node_runtime runtime{{.scheduler_threads = 1}};
  auto config = wager::load_node_options({"--http-port", "0"});
  if (!config.error.empty())
    return 1;
  std::printf("consumer ok: %s\n", std::string{wager::to_code(wager::errc::price_changed)}.c_str());
  return 0;
}
