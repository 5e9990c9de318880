#include "support/test_network.hpp"

#include "support/process.hpp"

#include <chrono>
#include <cstdio>
#include <random>
#include <stdexcept>

namespace wager::test {

namespace {

const std::string ip_binary = "/usr/sbin/ip";

// Runs `ip args...`; its stderr on failure, empty on success.
std::string try_ip(const std::vector<std::string>& args) {
  child_process ip{ip_binary, args};
  auto status = ip.wait(std::chrono::seconds{30});
  if (status && *status == 0)
    return {};
  std::string line = "ip";
  for (auto& a : args)
    line += " " + a;
  return line + " failed (" + (status ? std::to_string(*status) : std::string{"timeout"}) +
         "): " + ip.drain_stderr();
}

void ip(const std::vector<std::string>& args) {
  if (auto err = try_ip(args); !err.empty())
    throw std::runtime_error(err);
}

// What `ip args...` prints.
std::string ip_output(const std::vector<std::string>& args) {
  child_process ip{ip_binary, args};
  std::string out;
  while (auto line = ip.read_line(std::chrono::seconds{10}))
    out += *line + "\n";
  ip.wait(std::chrono::seconds{10});
  return out;
}

} // namespace

test_network::test_network(const std::vector<std::string>& hosts) {
  if (hosts.size() > 9)
    throw std::runtime_error("test_network: at most 9 hosts");
  std::random_device rd;
  std::mt19937 rng{rd()};
  auto in_use = ip_output({"-o", "-4", "addr"}) + ip_output({"-4", "route"});
  for (int attempt = 0;; ++attempt) {
    prefix_ = "10." + std::to_string(200 + rng() % 50) + "." + std::to_string(rng() % 256);
    if (in_use.find(prefix_ + ".") == std::string::npos)
      break;
    if (attempt > 100)
      throw std::runtime_error("test_network: no free /24 in 10.200.0.0/13");
  }
  char tag[8];
  std::snprintf(tag, sizeof tag, "%04x", static_cast<unsigned>(rng() % 0x10000));
  tag_ = tag;
  bridge_ = "wb" + tag_;
  try {
    ip({"link", "add", bridge_, "type", "bridge"});
    ip({"addr", "add", prefix_ + ".1/24", "dev", bridge_});
    ip({"link", "set", bridge_, "up"});
    int i = 0;
    for (auto& host : hosts) {
      entry e;
      e.netns = "wager-" + tag_ + "-" + host;
      e.outside = "wo" + tag_ + std::to_string(i);
      auto inside = "wi" + tag_ + std::to_string(i);
      e.address = prefix_ + "." + std::to_string(10 + i);
      hosts_[host] = e;
      ip({"netns", "add", e.netns});
      ip({"link", "add", e.outside, "type", "veth", "peer", "name", inside});
      ip({"link", "set", inside, "netns", e.netns});
      ip({"link", "set", e.outside, "master", bridge_});
      ip({"link", "set", e.outside, "up"});
      ip({"-n", e.netns, "addr", "add", e.address + "/24", "dev", inside});
      ip({"-n", e.netns, "link", "set", inside, "up"});
      ip({"-n", e.netns, "link", "set", "lo", "up"});
      ++i;
    }
  } catch (...) {
    teardown();
    throw;
  }
}

test_network::~test_network() {
  teardown();
}

void test_network::teardown() noexcept {
  // Deleting a namespace deletes the veth end in it, and so its pair.
  auto report = [](const std::string& err) {
    if (!err.empty())
      std::fprintf(stderr, "test_network: %s\n", err.c_str());
  };
  for (auto& [host, e] : hosts_)
    report(try_ip({"netns", "del", e.netns}));
  hosts_.clear();
  if (!bridge_.empty())
    report(try_ip({"link", "del", bridge_}));
  bridge_.clear();
}

const test_network::entry& test_network::at(const std::string& host) const {
  auto i = hosts_.find(host);
  if (i == hosts_.end())
    throw std::runtime_error("test_network: no host " + host);
  return i->second;
}

std::string test_network::netns(const std::string& host) const {
  return at(host).netns;
}

std::string test_network::address(const std::string& host) const {
  return at(host).address;
}

std::vector<std::string> test_network::exec_args(const std::string& host,
                                                 const std::vector<std::string>& command) const {
  std::vector<std::string> args{"netns", "exec", at(host).netns};
  args.insert(args.end(), command.begin(), command.end());
  return args;
}

void test_network::isolate(const std::string& host) {
  ip({"link", "set", at(host).outside, "down"});
}

void test_network::reconnect(const std::string& host) {
  ip({"link", "set", at(host).outside, "up"});
}

void test_network::cut(const std::string& host, const std::vector<std::string>& others) {
  for (auto& other : others) {
    ip({"-n", at(host).netns, "route", "add", "blackhole", at(other).address + "/32"});
    ip({"-n", at(other).netns, "route", "add", "blackhole", at(host).address + "/32"});
  }
}

void test_network::heal(const std::string& host, const std::vector<std::string>& others) {
  for (auto& other : others) {
    ip({"-n", at(host).netns, "route", "del", "blackhole", at(other).address + "/32"});
    ip({"-n", at(other).netns, "route", "del", "blackhole", at(host).address + "/32"});
  }
}

} // namespace wager::test
