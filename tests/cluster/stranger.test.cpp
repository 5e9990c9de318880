// The join handshake from this test's own actor system, over a real
// middleman connection to a real wager-node: heartbeats from an agent that
// has not proved the cluster secret are dropped, a proof under another
// secret or for an earlier hello's nonces is refused, and only a right proof
// makes the agent a member.

#include "node_cluster.hpp"

#include "wager/cluster/cluster_node.hpp"
#include "wager/cluster/handshake.hpp"
#include "wager/cluster/protocol.hpp"

#include <caf/all.hpp>
#include <caf/io/all.hpp>

using namespace std::chrono_literals;
using wager::test::cluster_test_node;

namespace {

struct stranger_system {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;

  stranger_system() {
    cfg.load<caf::io::middleman>();
    wager::configure_cluster(cfg, {});
    sys = std::make_unique<caf::actor_system>(cfg);
  }
};

wager::heartbeat forged_heartbeat() {
  wager::heartbeat hb;
  hb.self = {"n-forged", "127.0.0.1:1", wager::member_status::up, 1};
  hb.view = {{"n-ghost", "127.0.0.1:2", wager::member_status::up, 1}};
  return hb;
}

// The acceptor's nonce from a hello answered by `agent`.
std::string hello(caf::scoped_actor& self, const caf::actor& agent, const std::string& nonce) {
  std::string acceptor_nonce;
  self->request(agent, 5s, wager::join_hello_atom::value, std::string{"n-forged"},
                std::string{"127.0.0.1:1"}, nonce)
    .receive(
      [&](std::string& id, std::string&, std::string& their_nonce, std::string&) {
        CHECK(id == "n-a");
        acceptor_nonce = their_nonce;
      },
      [&](caf::error& err) { FAIL("hello refused: " << to_string(err)); });
  return acceptor_nonce;
}

bool welcomed(caf::scoped_actor& self, const caf::actor& agent, const std::string& proof) {
  bool welcome = false;
  self->request(agent, 5s, wager::join_proof_atom::value, proof)
    .receive([&](wager::join_welcome_atom) { welcome = true; }, [](caf::error&) {});
  return welcome;
}

std::string proof_of(const std::string& secret, const std::string& nonce,
                     const std::string& acceptor_nonce) {
  return wager::join_proof(secret, wager::join_role::joiner, nonce, acceptor_nonce, "n-forged",
                           "n-a");
}

} // namespace

TEST_CASE("an agent that has not proved the secret is not heard, a wrong or replayed proof is "
          "refused, and a right one is welcomed") {
  wager::test::temp_dir dir;
  cluster_test_node a{(dir / "data").string(), "n-a", {}};
  REQUIRE(a.read_ready());
  stranger_system stranger;
  auto [host, port] = wager::test::split_address(a.cluster);
  auto agent = stranger.sys->middleman().remote_actor(host, port);
  REQUIRE(agent);
  caf::scoped_actor self{*stranger.sys};
  // Messages from one sender arrive in order: once a hello is answered, the
  // heartbeat sent before it has been handled.
  self->send(*agent, wager::heartbeat_atom::value, forged_heartbeat());
  auto first = wager::make_join_nonce();
  auto first_acceptor = hello(self, *agent, first);
  CHECK(a.members().size() == 1);
  CHECK_FALSE(welcomed(self, *agent, proof_of("not-the-cluster-secret", first, first_acceptor)));
  self->send(*agent, wager::heartbeat_atom::value, forged_heartbeat());
  auto second = wager::make_join_nonce();
  auto second_acceptor = hello(self, *agent, second);
  CHECK(a.members().size() == 1);
  // A right proof, but for the first hello's nonces.
  CHECK_FALSE(welcomed(self, *agent, proof_of(wager::test::cluster_secret, first, first_acceptor)));
  CHECK(a.members().size() == 1);
  // The same client with the secret is a member at its next heartbeat: the
  // refusals above were the proof's doing.
  auto third = wager::make_join_nonce();
  auto third_acceptor = hello(self, *agent, third);
  CHECK(welcomed(self, *agent, proof_of(wager::test::cluster_secret, third, third_acceptor)));
  self->send(*agent, wager::heartbeat_atom::value, forged_heartbeat());
  CHECK(wager::test::wait_until([&] { return a.status_of("n-forged") == "up"; }, 10s));
}
