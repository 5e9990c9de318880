#pragma once

// Hosts for tests, on this machine: a network namespace per host (ip netns),
// each with a veth pair to a bridge in the test's own namespace, on a /24 of
// 10.0.0.0/8 that no interface here uses yet. The test process reaches every
// host through the bridge (<subnet>.1). Everything is made by the
// constructor and removed by the destructor, also when a test fails. Needs
// root (CAP_NET_ADMIN) and iproute2.
//
// Faults, by host:
//   - isolate / reconnect: its link down, then up again: nothing reaches it
//     and it reaches nothing (the test process included);
//   - cut / heal: the host and each of `others` drop what they would send
//     to each other (blackhole routes on both sides); the rest of the
//     network, the test process and the hosts not named, still reach it.

#include <map>
#include <string>
#include <vector>

namespace wager::test {

class test_network {
public:
  // Throws std::runtime_error (with the failing command) when a namespace,
  // link or address cannot be made; what was made is removed first.
  explicit test_network(const std::vector<std::string>& hosts);
  ~test_network();
  test_network(const test_network&) = delete;
  test_network& operator=(const test_network&) = delete;

  // The namespace's name, for `ip netns exec`.
  std::string netns(const std::string& host) const;
  // The host's address, e.g. 10.213.7.11.
  std::string address(const std::string& host) const;
  // The subnet, e.g. 10.213.7.0/24.
  std::string subnet() const { return prefix_ + ".0/24"; }

  // `command` run inside the host's namespace: the arguments for a
  // child_process of "ip".
  std::vector<std::string> exec_args(const std::string& host,
                                     const std::vector<std::string>& command) const;

  void isolate(const std::string& host);
  void reconnect(const std::string& host);
  void cut(const std::string& host, const std::vector<std::string>& others);
  void heal(const std::string& host, const std::vector<std::string>& others);

private:
  struct entry {
    std::string netns;
    std::string outside; // the veth end on the bridge
    std::string address;
  };
  const entry& at(const std::string& host) const;
  void teardown() noexcept;

  std::string tag_;
  std::string prefix_;
  std::string bridge_;
  std::map<std::string, entry> hosts_;
};

} // namespace wager::test
