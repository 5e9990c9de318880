#pragma once

// Entities: the wallets, markets and sessions that the directory activates on
// demand and passivates when idle (runtime/directory.hpp). This header holds
// what an entity is called, which shard it lives in, and the contract its
// actor follows. Callers never hold an entity's actor handle: they route
// messages through the directory.
//
// The contract an entity actor follows. Its life has three states:
//
//   recovering  - just spawned by its kind's activate function. It starts its
//                 recovery asynchronously (the persistence layer reads the
//                 journal on another thread and answers with a message) and
//                 calls begin_recovery(), so that routed messages, and
//                 passivate_atom, wait in its mailbox in arrival order.
//   running     - end_recovery() installed the running behavior, which first
//                 handles the waiting messages, oldest first. A routed message
//                 arrives as the caller sent it, with the caller as sender, so
//                 the entity's reply goes straight back to the caller.
//   passivating - got passivate_atom. The directory sends it after every
//                 message it routed before, and routes nothing more until
//                 the entity is gone (it holds new messages meanwhile). The
//                 entity finishes its in-flight work, may save a snapshot
//                 asynchronously, then quits normally: self->quit().
//
// An entity must not quit on its own except by failing: messages routed to it
// meanwhile would bounce. A failure (an exception, a failed recovery, a quit
// with an error) is a crash: requests still in its mailbox fail (CAF bounces
// them), so callers retry, and the directory activates it again on the next
// message, from the journal.

#include "wager/runtime/message_types.hpp"

#include <caf/atom.hpp>
#include <caf/fwd.hpp>
#include <caf/meta/type_name.hpp>

#include <compare>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace wager {

// Kind and key, printed "kind/key": "wallet/u42", "market/m-1001". The kind
// never contains '/', the key may.
struct entity_id {
  std::string kind;
  std::string key;

  friend bool operator==(const entity_id&, const entity_id&) = default;
  friend std::strong_ordering operator<=>(const entity_id&, const entity_id&) = default;
};

// "kind/key".
std::string to_string(const entity_id& id);

// The inverse of to_string: splits at the first '/'. Empty when there is no
// '/', or when the kind or the key is empty.
std::optional<entity_id> parse_entity_id(std::string_view text);

// Lets an entity_id be a message field, locally and, once registered with
// add_entity_message_types, between nodes.
template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, entity_id& x) {
  return f(caf::meta::type_name("wager::entity_id"), x.kind, x.key);
}

// Registers the types of the directory protocol for messages between nodes.
void add_entity_message_types(caf::actor_system_config& cfg);

// FNV-1a, 64 bits, over the bytes of "kind/key". Part of the cluster's wire
// contract: every node and every build must compute the same value, so this
// never changes (tests pin known values).
uint64_t entity_hash(const entity_id& id) noexcept;

// The shard an entity lives in: entity_hash(id) % shards. `shards` is fixed
// for the life of a cluster (node_options::shards).
uint32_t shard_of(const entity_id& id, uint32_t shards) noexcept;

// -- the directory protocol --------------------------------------------------

// (route_atom, entity_id, caf::message): deliver the message to the entity,
// activating it if needed. Sent by callers to the directory.
using route_atom = caf::atom_constant<caf::atom("route")>;

// (passivate_atom): sent by the directory to an entity; see the contract above.
using passivate_atom = caf::atom_constant<caf::atom("passivate")>;

// -- recovery ----------------------------------------------------------------

// Holds every message that the current behavior does not match in the
// mailbox, in arrival order, until end_recovery(). Call it first in the
// entity's behavior function; the behavior returned (or the response handler
// of the recovery request) then handles only the recovered state.
void begin_recovery(caf::event_based_actor* self);

// The state is in place: installs `running`, which handles the held messages
// oldest first, and restores CAF's default for unexpected messages (an
// unexpected_message error to the sender).
void end_recovery(caf::event_based_actor* self, caf::behavior running);

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types entity_id_messages{
  message_type<entity_id>{"wager::entity_id"},
};

} // namespace wager

template <>
struct std::hash<wager::entity_id> {
  size_t operator()(const wager::entity_id& id) const noexcept {
    return static_cast<size_t>(wager::entity_hash(id));
  }
};
