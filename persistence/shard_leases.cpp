#include "wager/persistence/shard_leases.hpp"

#include "wager/runtime/entity.hpp"

#include <algorithm>
#include <utility>

namespace wager {

namespace {

// Milliseconds since the epoch, times 1000, plus a count of the objects
// made in this process: two made in one millisecond differ.
int64_t instance_now() {
  static std::atomic<uint32_t> made{0};
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              std::chrono::system_clock::now().time_since_epoch())
              .count();
  return ms * 1000 + made.fetch_add(1) % 1000;
}

} // namespace

shard_leases::shard_leases(uint32_t shards)
  : shards_(std::max<uint32_t>(shards, 1)),
    instance_(instance_now()),
    epochs_(new std::atomic<uint64_t>[shards_]), grants_(shards_) {
  for (uint32_t s = 0; s < shards_; ++s)
    epochs_[s] = 0;
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

void shard_leases::set_address(std::string address) {
  std::lock_guard lock{member_mutex_};
  member_.address = std::move(address);
}

std::string shard_leases::owner() const {
  std::lock_guard lock{member_mutex_};
  if (member_.node_id.empty())
    return {};
  return member_.node_id + "@" + std::to_string(instance_);
}

std::string_view shard_leases::node_of(std::string_view owner) noexcept {
  auto at = owner.rfind('@');
  return at == std::string_view::npos ? owner : owner.substr(0, at);
}

void shard_leases::grant(uint32_t s, std::string from) {
  if (s >= shards_)
    return;
  std::lock_guard lock{grant_mutex_};
  grants_[s] = {std::move(from), std::chrono::steady_clock::now()};
}

bool shard_leases::granted(uint32_t s, std::string_view owner) const {
  if (s >= shards_ || owner.empty())
    return false;
  std::lock_guard lock{grant_mutex_};
  auto& g = grants_[s];
  return !g.from.empty() && g.from == node_of(owner) &&
         std::chrono::steady_clock::now() - g.at < owner_silence;
}

void shard_leases::clear_grant(uint32_t s) {
  std::lock_guard lock{grant_mutex_};
  grants_[s].from.clear();
}

uint64_t shard_leases::held(uint32_t s) const {
  return s < shards_ ? epochs_[s].load() : 0;
}

void shard_leases::hold(uint32_t s, uint64_t epoch) {
  if (s >= shards_)
    return;
  if (epochs_[s].exchange(epoch) == 0 && epoch != 0)
    held_count_.fetch_add(1);
  clear_grant(s);
  takes_.fetch_add(1);
}

void shard_leases::confirm(uint32_t s) {
  if (s < shards_)
    clear_grant(s);
}

void shard_leases::lose(uint32_t s) {
  if (s >= shards_)
    return;
  clear_grant(s);
  if (epochs_[s].exchange(0) != 0) {
    losses_.fetch_add(1);
    held_count_.fetch_sub(1);
  }
}

} // namespace wager
