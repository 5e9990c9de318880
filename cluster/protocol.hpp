#pragma once

// What cluster agents say to each other over CAF's middleman.
//
// Join handshake (the acceptor admits nobody until the last step):
//   joiner   -> acceptor  (join_hello_atom, node_id, address, nonce_j)
//   acceptor -> joiner    (node_id, address, nonce_a, mac_a)
//   joiner   -> acceptor  (join_proof_atom, mac_j)
//   acceptor -> joiner    (join_welcome_atom)
// mac_a and mac_j are HMACs under the cluster secret over both nonces and
// both node ids (handshake.hpp), so each side proves it knows the secret
// without sending it, and an answer cannot be replayed into another
// handshake. After the welcome each side trusts the other's agent and takes
// its heartbeats:
//   (heartbeat_atom, heartbeat) every heartbeat interval, one way.
// and each asks the other for the directory actor its routed requests go to:
//   (directory_query_atom) -> caf::actor (invalid: the node does not route)

#include "wager/cluster/membership.hpp"
#include "wager/runtime/message_types.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/atom.hpp>
#include <caf/meta/type_name.hpp>

namespace wager {

using join_hello_atom = caf::atom_constant<caf::atom("wc_hello")>;
using join_proof_atom = caf::atom_constant<caf::atom("wc_proof")>;
using join_welcome_atom = caf::atom_constant<caf::atom("wc_welcome")>;
using heartbeat_atom = caf::atom_constant<caf::atom("wc_beat")>;
using directory_query_atom = caf::atom_constant<caf::atom("wc_dir")>;

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, member_report& x) {
  return f(caf::meta::type_name("wager::member_report"), x.node_id, x.address, x.status,
           x.incarnation);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, heartbeat& x) {
  return f(caf::meta::type_name("wager::heartbeat"), x.self, x.view);
}

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types cluster_protocol_messages{
  message_type<heartbeat>{"wager::heartbeat"},
};

// Registers the types above; every node must, before its actor system starts.
inline void add_cluster_message_types(caf::actor_system_config& cfg) {
  add_message_types(cfg, cluster_protocol_messages);
}

} // namespace wager
