#pragma once

// This node's shard leases: which shards it may commit for, and at which
// epoch. A journal shared by nodes on several hosts (the journal on
// PostgreSQL, pg_journal.hpp) keeps a lease per shard (owner, epoch) in the
// database and checks, in the transaction of every batch, that the node
// still holds the lease of each shard the batch writes:
//
//   - held here at the epoch the table has: the write goes on;
//   - handed over here from the owner the table names (grant(), called by
//     the cluster while a shard arrives from a node that is still alive,
//     and good for owner_silence after each call): the batch takes it,
//     raising its epoch by one;
//   - not held here (the shard just came to this node): the batch takes it
//     when the table names no owner, names this process, or names one whose
//     member row says it left or has been silent longer than
//     `owner_silence`; otherwise the write fails with errc::unavailable;
//   - held here at an older epoch (another node took it meanwhile: this
//     node was cut off, or paused): the write fails with errc::unavailable
//     and the lease is dropped here.
//
// Takes count only once their batch commits. The epochs are atomics: the
// journal's writer reads and writes them, the cluster grants.
//
// A journal without leases (a single node, or nodes sharing one SQLite
// file, where the sequence check is the fence) never consults this.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wager {

// The member row a node keeps fresh in the database (pg_journal's members
// table) while it runs: what `owner_silence` is measured against.
struct lease_member {
  std::string node_id;
  std::string address;
  uint64_t incarnation = 0;
  std::string status = "up"; // up, leaving, left
};

class shard_leases {
public:
  // `shards` as the cluster's (node_options::shards), at least 1.
  explicit shard_leases(uint32_t shards);

  uint32_t shards() const noexcept { return shards_; }

  // The shard a stream's events belong to: its entity's (entity.hpp's
  // shard_of over "kind/key"); none for a name that is not an entity's.
  std::optional<uint32_t> shard_of_stream(std::string_view stream) const;

  // --- the member this node is ---

  // Set before the first batch that needs a lease; batches before it
  // refuse every leased write (errc::unavailable: the node is starting).
  void set_member(lease_member m);
  lease_member member() const;
  void set_status(std::string status);
  void set_address(std::string address);

  // This process as a lease owner: "<node_id>@<instance>", the instance
  // being the time this object was made (ms since the epoch, times 1000,
  // plus a count of such objects in the process). A restarted
  // node is a new owner, so the shards of its previous life are taken only
  // once that life's member row is silent, as any other node's. Empty
  // before set_member.
  std::string owner() const;
  // The node id of an owner ("n-a" of "n-a@1765152000000").
  static std::string_view node_of(std::string_view owner) noexcept;

  // How long a member row may stay unrefreshed before the shards of its
  // node may be taken without a hand-over (the cluster's down_after).
  std::chrono::milliseconds owner_silence{1600};
  // How often the member row is refreshed (the cluster's heartbeat).
  std::chrono::milliseconds heartbeat{200};

  // --- the cluster's side ---

  // Shard `s` is handed over here from node `from`, which is still alive
  // (a join, a drain): a batch may take it from that node (only while the
  // table names `from` as its owner) within owner_silence of the latest
  // grant. The cluster grants again while the hand-over stands, so a grant
  // issued before this process froze is stale when it wakes.
  void grant(uint32_t s, std::string from);

  // --- the journal's side (its writer thread) ---

  // The epoch this node holds, 0 for none.
  uint64_t held(uint32_t s) const;
  // Whether a fresh grant lets this node take `s` from `owner`.
  bool granted(uint32_t s, std::string_view owner) const;
  // A take committed: `s` is held at `epoch`, its grant used up.
  void hold(uint32_t s, uint64_t epoch);
  // A batch found `s` held at the epoch this node has: any grant is moot.
  void confirm(uint32_t s);
  // A batch found `s` taken by another node: held no more here.
  void lose(uint32_t s);

  // Counters, for metrics and tests.
  uint64_t takes() const noexcept { return takes_.load(); }
  uint64_t losses() const noexcept { return losses_.load(); }
  uint64_t refusals() const noexcept { return refusals_.load(); }
  // Shards held here now.
  uint64_t held_count() const noexcept { return held_count_.load(); }
  void count_refusal() noexcept { refusals_.fetch_add(1); }

private:
  struct grant_state {
    std::string from;
    std::chrono::steady_clock::time_point at;
  };
  void clear_grant(uint32_t s);

  uint32_t shards_;
  int64_t instance_;
  std::unique_ptr<std::atomic<uint64_t>[]> epochs_;
  mutable std::mutex grant_mutex_;
  std::vector<grant_state> grants_;
  mutable std::mutex member_mutex_;
  lease_member member_;
  std::atomic<uint64_t> takes_{0};
  std::atomic<uint64_t> losses_{0};
  std::atomic<uint64_t> refusals_{0};
  std::atomic<uint64_t> held_count_{0};
};

} // namespace wager
