#include "wager/persistence/shard_leases.hpp"

#include "wager/runtime/entity.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace wager {

shard_leases::shard_leases(uint32_t shards)
  : shards_(std::max<uint32_t>(shards, 1)),
    epochs_(new std::atomic<uint64_t>[shards_]),
    grants_(new std::atomic<bool>[shards_]) {
  for (uint32_t s = 0; s < shards_; ++s) {
    epochs_[s] = 0;
    grants_[s] = false;
  }
}

std::optional<uint32_t> shard_leases::shard_of_stream(std::string_view stream) const {
  auto id = parse_entity_id(stream);
  if (!id)
    return std::nullopt;
  return shard_of(*id, shards_);
}

void shard_leases::set_member(lease_member m) {
  std::lock_guard lock{member_mutex_};
  member_ = std::move(m);
}

lease_member shard_leases::member() const {
  std::lock_guard lock{member_mutex_};
  return member_;
}

void shard_leases::set_status(std::string status) {
  std::lock_guard lock{member_mutex_};
  member_.status = std::move(status);
}

void shard_leases::grant(uint32_t s) {
  if (s < shards_)
    grants_[s] = true;
}

uint64_t shard_leases::held(uint32_t s) const {
  return s < shards_ ? epochs_[s].load() : 0;
}

bool shard_leases::granted(uint32_t s) const {
  return s < shards_ && grants_[s].load();
}

void shard_leases::hold(uint32_t s, uint64_t epoch) {
  if (s >= shards_)
    return;
  epochs_[s] = epoch;
  grants_[s] = false;
  takes_.fetch_add(1);
}

void shard_leases::confirm(uint32_t s) {
  if (s < shards_)
    grants_[s] = false;
}

void shard_leases::lose(uint32_t s) {
  if (s >= shards_)
    return;
  if (epochs_[s].exchange(0) != 0)
    losses_.fetch_add(1);
}

} // namespace wager
