#include "wager/runtime/entity.hpp"

#include "wager/runtime/assert.hpp"

#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/skip.hpp>

namespace wager {

namespace {

// FNV-1a 64-bit parameters (Fowler, Noll, Vo). Changing them moves every
// entity to another shard: never.
constexpr uint64_t fnv_offset_basis = 14695981039346656037ull;
constexpr uint64_t fnv_prime = 1099511628211ull;

uint64_t fnv1a(uint64_t hash, std::string_view bytes) noexcept {
  for (unsigned char c : bytes) {
    hash ^= c;
    hash *= fnv_prime;
  }
  return hash;
}

} // namespace

std::string to_string(const entity_id& id) {
  std::string text;
  text.reserve(id.kind.size() + 1 + id.key.size());
  text += id.kind;
  text += '/';
  text += id.key;
  return text;
}

std::optional<entity_id> parse_entity_id(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == text.size())
    return std::nullopt;
  return entity_id{std::string{text.substr(0, slash)}, std::string{text.substr(slash + 1)}};
}

void add_entity_message_types(caf::actor_system_config& cfg) {
  add_message_types(cfg, entity_id_messages);
}

uint64_t entity_hash(const entity_id& id) noexcept {
  // Hashes the bytes of to_string(id) without building the string.
  auto hash = fnv1a(fnv_offset_basis, id.kind);
  hash = fnv1a(hash, "/");
  return fnv1a(hash, id.key);
}

uint32_t shard_of(const entity_id& id, uint32_t shards) noexcept {
  WAGER_ASSERT(shards > 0, "shard_of needs at least one shard");
  return static_cast<uint32_t>(entity_hash(id) % shards);
}

void begin_recovery(caf::event_based_actor* self) {
  // skip leaves a message in the mailbox; CAF retries skipped messages, in
  // order, after the next behavior change.
  self->set_default_handler(caf::skip);
}

void end_recovery(caf::event_based_actor* self, caf::behavior running) {
  self->set_default_handler(caf::print_and_drop);
  self->become(std::move(running));
}

} // namespace wager
