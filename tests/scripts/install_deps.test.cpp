// scripts/install-deps.sh where a newcomer runs it: a bare container without
// root or sudo, and a build that looks for programs the script must install.

#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

using namespace std::chrono_literals;
using wager::test::child_process;
namespace fs = std::filesystem;

namespace {

const std::string install_deps = std::string{WAGER_SOURCE_DIR} + "/scripts/install-deps.sh";

std::string read_all(child_process& program) {
  std::string out;
  while (auto line = program.read_line(30s))
    out += *line + "\n";
  return out;
}

void write_program(const fs::path& path, const std::string& text) {
  std::ofstream{path} << text;
  fs::permissions(path, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec
                          | fs::perms::others_read | fs::perms::others_exec);
}

} // namespace

TEST_CASE("install-deps.sh without root and without sudo names what it cannot install, in one line") {
  // A PATH holding only what the script runs, with a dpkg-query that finds
  // nothing installed: every package is missing, and there is no sudo.
  wager::test::temp_dir dir;
  fs::permissions(dir.path(), fs::perms::all & ~fs::perms::group_write & ~fs::perms::others_write);
  auto bin = dir / "bin";
  fs::create_directory(bin);
  fs::permissions(bin, fs::perms::all & ~fs::perms::group_write & ~fs::perms::others_write);
  write_program(bin / "dpkg-query", "#!/bin/sh\nexit 1\n");
  for (auto* tool : {"id", "grep"})
    fs::create_symlink(fs::path{"/usr/bin"} / tool, bin / tool);
  // A copy, so an unprivileged user can read it wherever the tree is.
  fs::copy_file(install_deps, dir / "install-deps.sh");
  fs::permissions(dir / "install-deps.sh", fs::perms::others_read, fs::perm_options::add);

  std::vector<std::string> args{(dir / "install-deps.sh").string()};
  std::string program = "/bin/bash";
  if (::geteuid() == 0) {
    // As root, run it as nobody.
    args.insert(args.begin(), {"--reuid=65534", "--regid=65534", "--clear-groups", program});
    program = "/usr/bin/setpriv";
  }
  child_process script{program, args, {{"PATH", bin.string()}}, dir.str()};
  auto out = read_all(script);
  auto status = script.wait(30s);
  REQUIRE(status);
  CHECK(*status == 1);
  CHECK_MESSAGE(out.empty(), out);
  auto err = script.drain_stderr();
  CHECK_MESSAGE(err.rfind("install-deps.sh: not root and no sudo", 0) == 0, err);
  CHECK_MESSAGE(err.find(" jq ") != std::string::npos, err);
  CHECK(err.find('\n') == err.size() - 1);
}

TEST_CASE("install-deps.sh lists the Debian package of every program the build looks for") {
  child_process list{"/bin/bash", {install_deps, "--list"}};
  auto packages = read_all(list);
  REQUIRE(list.wait(30s) == 0);
  // find_program results are the FILEPATH entries named WAGER_* in the cache.
  std::ifstream cache{std::string{WAGER_BINARY_DIR} + "/CMakeCache.txt"};
  int programs = 0;
  for (std::string line; std::getline(cache, line);) {
    if (line.rfind("WAGER_", 0) != 0 || line.find(":FILEPATH=") == std::string::npos)
      continue;
    auto path = line.substr(line.find('=') + 1);
    CAPTURE(path);
    ++programs;
    child_process owner{"/usr/bin/dpkg-query", {"--search", fs::canonical(path).string()}};
    auto found = read_all(owner);
    REQUIRE(owner.wait(30s) == 0);
    auto package = found.substr(0, found.find(':'));
    bool listed = ("\n" + packages).find("\n" + package + "\n") != std::string::npos;
    CHECK_MESSAGE(listed, package);
  }
  CHECK(programs >= 2); // jq and curl, for bench/cluster_quick
}
