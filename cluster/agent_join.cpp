#include "wager/cluster/agent_state.hpp"

#include "wager/cluster/handshake.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <caf/all.hpp>

#include <algorithm>

namespace wager::detail {

namespace {

// Joins waiting for their proof; the oldest goes when a stranger floods.
constexpr size_t pending_joins_max = 64;

bool valid_node_id(const std::string& id) {
  if (id.empty() || id.size() > 64)
    return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == ':'
           || c == '-';
  });
}

} // namespace

void dial_failed(agent_actor* self, const std::string& address, const std::string& why) {
  auto& st = self->state;
  auto i = st.dials.find(address);
  if (i == st.dials.end())
    return;
  auto& dial = i->second;
  dial.in_flight = false;
  auto initial = st.opts.connect_backoff_initial.count();
  dial.backoff_ms = std::min<int64_t>(std::max(initial, dial.backoff_ms * 2),
                                      st.opts.connect_backoff_max.count());
  dial.next_ms = steady_ms() + dial.backoff_ms;
  // The first failure in a row is news; the retries every couple of seconds
  // after it are not.
  if (++dial.failures == 1)
    log().warn("cluster: {} cannot join through {}: {}; retrying", st.opts.node_id, address, why);
  else
    log().debug("cluster: {} cannot join through {}: {}", st.opts.node_id, address, why);
}

void dial_succeeded(agent_state& st, const std::string& address, const std::string& node_id) {
  if (auto i = st.dials.find(address); i != st.dials.end()) {
    i->second.in_flight = false;
    i->second.backoff_ms = 0;
    i->second.failures = 0;
    i->second.node_id = node_id;
  }
}

// Joiner side, once the dial reached an agent: hello, check the acceptor's
// proof, send ours, wait for the welcome.
void start_handshake(agent_actor* self, const std::string& address, caf::actor peer) {
  auto& st = self->state;
  auto nonce = make_join_nonce();
  auto timeout = caf::duration{st.opts.handshake_timeout};
  self
    ->request(peer, timeout, join_hello_atom::value, st.opts.node_id, st.address, nonce)
    .then(
      [=](std::string& peer_id, std::string& peer_address, std::string& peer_nonce,
          std::string& peer_proof) {
        auto& st = self->state;
        auto expected = join_proof(st.opts.secret, join_role::acceptor, peer_nonce, nonce,
                                   peer_id, st.opts.node_id);
        if (!valid_node_id(peer_id) || !same_proof(expected, peer_proof)) {
          log().warn("cluster: {} refuses the node at {}: it does not prove the cluster secret",
                     st.opts.node_id, address);
          return dial_failed(self, address, "no proof of the cluster secret");
        }
        auto proof = join_proof(st.opts.secret, join_role::joiner, nonce, peer_nonce,
                                st.opts.node_id, peer_id);
        self->request(peer, timeout, join_proof_atom::value, proof)
          .then(
            [=](join_welcome_atom) {
              dial_succeeded(self->state, address, peer_id);
              admit(self, peer, peer_id, peer_address);
            },
            [=](caf::error& err) {
              log().warn("cluster: {} was refused by {} at {}: {}", self->state.opts.node_id,
                         peer_id, address, self->system().render(err));
              dial_failed(self, address, self->system().render(err));
            });
      },
      [=](caf::error& err) { dial_failed(self, address, self->system().render(err)); });
}

caf::result<std::string, std::string, std::string, std::string>
on_hello(agent_actor* self, std::string& peer_id, std::string& peer_address,
         std::string& peer_nonce) {
  auto& st = self->state;
  auto sender = self->current_sender();
  if (st.opts.secret.empty())
    return make_error(errc::unauthorized, "this node admits nobody: it has no cluster secret");
  if (!sender || !valid_node_id(peer_id) || peer_id == st.opts.node_id
      || peer_nonce.size() != 64 || peer_address.size() > 300)
    return make_error(errc::invalid_field, "malformed join request");
  if (st.pending.size() >= pending_joins_max) {
    auto oldest = std::min_element(st.pending.begin(), st.pending.end(), [](auto& a, auto& b) {
      return a.second.at_ms < b.second.at_ms;
    });
    st.pending.erase(oldest);
  }
  auto nonce = make_join_nonce();
  st.pending[sender->address()] = {peer_id, peer_address, peer_nonce, nonce, steady_ms()};
  auto proof = join_proof(st.opts.secret, join_role::acceptor, nonce, peer_nonce,
                          st.opts.node_id, peer_id);
  return {st.opts.node_id, st.address, nonce, proof};
}

caf::result<join_welcome_atom> on_proof(agent_actor* self, const std::string& proof) {
  auto& st = self->state;
  auto sender = self->current_sender();
  if (!sender)
    return make_error(errc::unauthorized, "join refused");
  auto i = st.pending.find(sender->address());
  if (i == st.pending.end())
    return make_error(errc::unauthorized, "join refused: no hello from this agent");
  auto join = std::move(i->second);
  st.pending.erase(i);
  auto expected = join_proof(st.opts.secret, join_role::joiner, join.joiner_nonce,
                             join.own_nonce, join.node_id, st.opts.node_id);
  if (!same_proof(expected, proof)) {
    log().warn("cluster: {} refuses {} (claims {}): wrong cluster secret", st.opts.node_id,
               join.node_id, join.address);
    return make_error(errc::unauthorized, "join refused: wrong cluster secret");
  }
  admit(self, caf::actor_cast<caf::actor>(sender), join.node_id, join.address);
  return join_welcome_atom::value;
}

} // namespace wager::detail
