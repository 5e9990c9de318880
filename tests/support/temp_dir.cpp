#include "support/temp_dir.hpp"

#include <cstdlib>
#include <stdexcept>
#include <unistd.h>

namespace wager::test {

temp_dir::temp_dir() {
  auto base = std::filesystem::temp_directory_path() / "wager-test-XXXXXX";
  std::string pattern = base.string();
  if (::mkdtemp(pattern.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed");
  path_ = pattern;
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

} // namespace wager::test
