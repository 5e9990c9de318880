#include "wager/persistence/log_journal.hpp"

#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <functional>
#include <limits>
#include <mutex>
#include <tuple>
#include <unordered_set>

namespace wager {

namespace {

// Frames read per query when catching up.
constexpr int64_t catch_up_page = 256;

// Recent events' checksums the store keeps for `after` checks, dropped whole
// beyond this: a miss reads the event's frame back.
constexpr size_t recent_checksums_max = 1 << 16;

caf::error corrupt(const std::string& what) {
  return make_error(errc::journal_failure, "journal is corrupt: " + what);
}

std::string request_key(std::string_view stream, std::string_view request_id) {
  std::string key;
  key.reserve(stream.size() + 1 + request_id.size());
  key.append(stream).push_back('\0');
  key.append(request_id);
  return key;
}

std::string event_key(std::string_view stream, uint64_t seq) {
  std::string key{stream};
  key.push_back('\0');
  key += std::to_string(seq);
  return key;
}

// The frame in the log row at `position`: its CRC column matches the CRC
// the frame ends with, it decodes, and it holds that position.
caf::expected<log_frame> checked_frame(uint64_t position, std::span<const uint8_t> bytes,
                                       int64_t crc_column) {
  if (static_cast<uint32_t>(crc_column) != trailing_crc32c(bytes))
    return corrupt("frame " + std::to_string(position) + ": its CRC column does not match");
  auto frame = decode_log_frame(bytes);
  if (!frame)
    return frame.error();
  if (frame->position != position)
    return corrupt("the row of frame " + std::to_string(position) + " holds frame " +
                   std::to_string(frame->position));
  return frame;
}

// The frame at `position`, decoded and checked.
caf::expected<log_frame> read_frame(journal_reader& file, uint64_t position) {
  auto& st = file.frame_at();
  sqlite::reset_on_exit reset{st};
  st.bind(1, static_cast<int64_t>(position));
  auto rc = st.step();
  if (rc == SQLITE_DONE)
    return corrupt("frame " + std::to_string(position) + " is missing");
  if (rc != SQLITE_ROW)
    return sqlite::failure(file.connection().get(), rc,
                           "reading frame " + std::to_string(position));
  return checked_frame(position, st.column_blob(0), st.column_int(1));
}

const log_record* find_record(const log_frame& frame, const std::string& stream,
                              uint64_t first_seq) {
  for (auto& r : frame.records)
    if (r.first_seq == first_seq && !r.events.empty() && r.stream == stream)
      return &r;
  return nullptr;
}

} // namespace

// --- a stream's records ----------------------------------------------------------

namespace {

void put_varint(std::vector<uint8_t>& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<uint8_t>(v));
}

uint64_t get_varint(const std::vector<uint8_t>& in, size_t& offset) {
  uint64_t v = 0;
  for (int shift = 0;; shift += 7) {
    auto byte = in[offset++];
    v |= uint64_t{byte & 0x7fu} << shift;
    if ((byte & 0x80) == 0)
      return v;
  }
}

} // namespace

void record_list::push_back(const record_location& r) {
  WAGER_ASSERT(size_ == 0 || (r.first_seq > last_.first_seq && r.position >= last_.position),
               "a stream's records are taken in in seq and log order");
  if (size_ > 0 && size_ % mark_every == 0)
    marks_.push_back(mark{r, bytes_.size()});
  put_varint(bytes_, r.first_seq - last_.first_seq);
  put_varint(bytes_, r.position - last_.position);
  last_ = r;
  ++size_;
}

std::vector<record_location> record_list::covering(uint64_t from, uint64_t last_seq,
                                                   uint64_t count) const {
  std::vector<record_location> out;
  if (size_ == 0 || from > last_seq || count == 0)
    return out;
  // Start at the last mark at or before `from` (or the first record).
  size_t offset = 0;
  record_location at{};
  auto m = std::upper_bound(marks_.begin(), marks_.end(), from,
                            [](uint64_t seq, const mark& k) { return seq < k.record.first_seq; });
  if (m != marks_.begin()) {
    --m;
    at = m->record;
    offset = m->offset;
    get_varint(bytes_, offset); // past the mark's own record
    get_varint(bytes_, offset);
  } else {
    auto seq_delta = get_varint(bytes_, offset);
    auto position_delta = get_varint(bytes_, offset);
    at = record_location{seq_delta, position_delta};
  }
  if (at.first_seq > from)
    return out; // before the first record: cannot happen, the first starts at seq 1
  // Records after `at`, one at a time.
  auto next = [&](record_location& r) {
    if (offset >= bytes_.size())
      return false;
    r.first_seq += get_varint(bytes_, offset);
    r.position += get_varint(bytes_, offset);
    return true;
  };
  auto following = at;
  bool more = next(following);
  while (more && following.first_seq <= from) {
    at = following;
    more = next(following);
  }
  // `at` holds `from`; then each next record until `count` events.
  uint64_t covered = 0;
  for (;;) {
    auto end = more ? following.first_seq : last_seq + 1;
    covered += end - std::max(from, at.first_seq);
    out.push_back(at);
    if (!more || covered >= count)
      return out;
    at = following;
    more = next(following);
  }
}

// --- the index -----------------------------------------------------------------

caf::error log_index::apply(const log_frame& frame, std::span<const uint8_t> bytes) {
  auto hash = hash_of_frame(bytes);
  std::unique_lock lock{mutex_};
  if (frame.position <= applied_)
    return {};
  if (frame.position != applied_ + 1)
    return corrupt("frame " + std::to_string(frame.position) + " follows frame " +
                   std::to_string(applied_));
  if (frame.previous != last_hash_)
    return corrupt("frame " + std::to_string(frame.position) +
                   " does not hold the SHA-256 of the frame before it; run wagerctl verify");
  for (auto& r : frame.records) {
    auto& s = find_or_add_locked(r.stream);
    auto back = s.last_position == frame.position ? s.before_position : s.last_position;
    if (r.previous_position != back)
      return corrupt("frame " + std::to_string(frame.position) + ": " + r.stream +
                     " points back to frame " + std::to_string(r.previous_position) +
                     ", but its previous record is in frame " + std::to_string(back));
    auto next_seq = s.last_seq + 1;
    if (r.first_seq != next_seq)
      return corrupt("frame " + std::to_string(frame.position) + ": " + r.stream +
                     " goes on at seq " + std::to_string(r.first_seq) + ", not " +
                     std::to_string(next_seq));
    if (!r.events.empty()) {
      s.records.push_back(record_location{r.first_seq, frame.position});
      s.last_seq = r.first_seq + r.events.size() - 1;
      if (r.open_work) {
        s.open_work = *r.open_work;
        if (s.open_work)
          open_.insert(r.stream);
        else
          open_.erase(r.stream);
      }
    }
    if (s.last_position != frame.position) {
      s.before_position = s.last_position;
      s.last_position = frame.position;
    }
    if (r.request) {
      auto hash = hasher_(r.stream, r.request->request_id);
      if (!requests_.try_emplace(hash, frame.position).second)
        colliding_.emplace(hash, frame.position);
      request_order_.push_back(stored{hash, frame.position});
      if (request_frames_.empty() || request_frames_.back().position != frame.position)
        request_frames_.push_back(request_frame{frame.position, r.request_at_ms});
      else
        request_frames_.back().at_ms = std::max(request_frames_.back().at_ms, r.request_at_ms);
    }
  }
  applied_ = frame.position;
  last_hash_ = hash;
  return {};
}

uint64_t log_index::applied() const {
  std::shared_lock lock{mutex_};
  return applied_;
}

frame_hash log_index::last_hash() const {
  std::shared_lock lock{mutex_};
  return last_hash_;
}

const log_index::stream_state* log_index::find_locked(std::string_view name) const {
  auto it = by_name_.find(name);
  return it == by_name_.end() ? nullptr : it->second;
}

log_index::stream_state& log_index::find_or_add_locked(const std::string& name) {
  if (auto it = by_name_.find(std::string_view{name}); it != by_name_.end())
    return *it->second;
  auto& [key, state] = *streams_.emplace(name, stream_state{}).first;
  by_name_.emplace(std::string_view{key}, &state);
  return state;
}

log_index::stream_view log_index::stream(const std::string& name) const {
  std::shared_lock lock{mutex_};
  auto* s = find_locked(name);
  if (s == nullptr)
    return {};
  return stream_view{s->last_seq, s->last_position};
}

uint64_t log_index::hash_request(std::string_view stream, std::string_view request_id) {
  // Each part hashed alone, so ("ab", "c") and ("a", "bc") differ, then
  // mixed (splitmix64's finaliser) so that the pair's bits all count.
  auto h = std::hash<std::string_view>{}(stream) * 0x9e3779b97f4a7c15ULL
           + std::hash<std::string_view>{}(request_id);
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

log_index::log_index(request_hasher hasher) : hasher_(hasher) {}

std::vector<uint64_t> log_index::request_frames(std::string_view stream,
                                                std::string_view request_id) const {
  auto hash = hasher_(stream, request_id);
  std::vector<uint64_t> out;
  std::shared_lock lock{mutex_};
  auto it = requests_.find(hash);
  if (it == requests_.end())
    return out;
  out.push_back(it->second);
  auto [first, last] = colliding_.equal_range(hash);
  for (auto c = first; c != last; ++c)
    out.push_back(c->second);
  std::sort(out.begin(), out.end(), std::greater<>{});
  return out;
}

std::vector<log_index::record_location>
log_index::records_from(const std::string& stream, uint64_t from, uint64_t count) const {
  std::shared_lock lock{mutex_};
  auto* s = find_locked(stream);
  if (s == nullptr || count == 0)
    return {};
  return s->records.covering(from, s->last_seq, count);
}

std::vector<std::string> log_index::streams(std::string_view kind, const std::string& after,
                                            uint32_t max_count, bool open_work_only) const {
  std::vector<std::string> out;
  std::string prefix{kind};
  prefix.push_back('/');
  auto start = std::max(after, prefix);
  std::shared_lock lock{mutex_};
  auto in_kind = [&](const std::string& name) {
    return name.compare(0, prefix.size(), prefix) == 0;
  };
  if (open_work_only) {
    for (auto it = open_.upper_bound(start); it != open_.end() && out.size() < max_count; ++it) {
      if (!in_kind(*it))
        break;
      out.push_back(*it);
    }
    return out;
  }
  for (auto it = streams_.upper_bound(start); it != streams_.end() && out.size() < max_count;
       ++it) {
    if (!in_kind(it->first))
      break;
    if (it->second.last_seq > 0) // streams with only stored requests have no events
      out.push_back(it->first);
  }
  return out;
}

std::vector<std::string> log_index::all_streams(const std::string& after,
                                                uint32_t max_count) const {
  std::vector<std::string> out;
  std::shared_lock lock{mutex_};
  for (auto it = streams_.upper_bound(after); it != streams_.end() && out.size() < max_count; ++it)
    if (it->second.last_seq > 0)
      out.push_back(it->first);
  return out;
}

uint64_t log_index::requests() const {
  std::shared_lock lock{mutex_};
  return requests_.size() + colliding_.size();
}

void log_index::forget(const stored& request) {
  auto it = requests_.find(request.hash);
  WAGER_ASSERT(it != requests_.end(), "a stored request to forget is in the index");
  auto [first, last] = colliding_.equal_range(request.hash);
  if (it->second == request.position) {
    if (first == last) {
      requests_.erase(it);
    } else {
      it->second = first->second;
      colliding_.erase(first);
    }
    return;
  }
  for (auto c = first; c != last; ++c)
    if (c->second == request.position) {
      colliding_.erase(c);
      return;
    }
  WAGER_ASSERT(false, "a stored request to forget is in the index");
}

uint64_t log_index::prune_requests(int64_t cutoff_ms, uint32_t max_count) {
  std::unique_lock lock{mutex_};
  uint64_t pruned = 0;
  // Oldest frame first, stopping at the first frame still within the
  // retention: a frame stamped before an earlier one (another process's
  // clock) waits for the frames before it, which only keeps it longer.
  while (!request_frames_.empty() && request_frames_.front().at_ms < cutoff_ms) {
    auto position = request_frames_.front().position;
    while (!request_order_.empty() && request_order_.front().position == position) {
      if (pruned == max_count)
        return pruned;
      forget(request_order_.front());
      request_order_.pop_front();
      ++pruned;
    }
    request_frames_.pop_front();
  }
  return pruned;
}

// --- the index checkpoint ---------------------------------------------------------
//
// log_index::save()'s bytes, format version 1. varint as in log_frame.hpp
// (unsigned LEB128); u64 and u32 little-endian; bytes is a varint length
// and that many bytes.
//
//   u8      version, 1
//   varint  applied (the last frame taken in)
//   32 B    the SHA-256 of that frame
//   varint  stream count; per stream, in name order:
//     bytes   name
//     varint  last_seq, last_position, before_position
//     u8      open work, 0 or 1
//     varint  record count; the last record's first seq and frame
//     bytes   the record list's varints (record_list)
//     varint  mark count; per mark: first seq, frame, offset
//   varint  stored request count; per request, in the order taken in:
//     u64     hash; varint frame
//   varint  request frame count; per frame: varint position, varint at_ms
//   u32     CRC32C of every byte before it

struct index_codec {
  using stored = log_index::stored;
  using request_frame = log_index::request_frame;

  static void put_u64(std::vector<uint8_t>& out, uint64_t v) {
    for (int i = 0; i < 8; ++i)
      out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }

  static void put_bytes(std::vector<uint8_t>& out, std::span<const uint8_t> bytes) {
    put_varint(out, bytes.size());
    out.insert(out.end(), bytes.begin(), bytes.end());
  }

  // Reads with every length checked against what is left.
  struct reader {
    std::span<const uint8_t> in;
    size_t at = 0;
    bool bad = false;

    uint64_t varint() {
      uint64_t v = 0;
      for (int shift = 0; shift < 70; shift += 7) {
        if (at >= in.size()) {
          bad = true;
          return 0;
        }
        auto byte = in[at++];
        v |= uint64_t{byte & 0x7fu} << shift;
        if ((byte & 0x80) == 0)
          return v;
      }
      bad = true;
      return 0;
    }

    uint8_t u8() {
      if (at >= in.size()) {
        bad = true;
        return 0;
      }
      return in[at++];
    }

    uint64_t u64() {
      uint64_t v = 0;
      for (int i = 0; i < 8; ++i)
        v |= uint64_t{u8()} << (8 * i);
      return v;
    }

    std::span<const uint8_t> bytes() {
      auto n = varint();
      if (bad || n > in.size() - at) {
        bad = true;
        return {};
      }
      auto out = in.subspan(at, n);
      at += n;
      return out;
    }

    // A count of items each taking at least `least` bytes: more than the
    // bytes left could hold is malformed (and never allocated).
    uint64_t count(size_t least) {
      auto n = varint();
      if (bad || n > (in.size() - at) / least) {
        bad = true;
        return 0;
      }
      return n;
    }
  };

  static void save_records(std::vector<uint8_t>& out, const record_list& list) {
    put_varint(out, list.size_);
    put_varint(out, list.last_.first_seq);
    put_varint(out, list.last_.position);
    put_bytes(out, list.bytes_);
    put_varint(out, list.marks_.size());
    for (auto& m : list.marks_) {
      put_varint(out, m.record.first_seq);
      put_varint(out, m.record.position);
      put_varint(out, m.offset);
    }
  }

  static bool load_records(reader& in, record_list& list) {
    list.size_ = in.varint();
    list.last_.first_seq = in.varint();
    list.last_.position = in.varint();
    auto bytes = in.bytes();
    list.bytes_.assign(bytes.begin(), bytes.end());
    auto marks = in.count(3);
    list.marks_.reserve(marks);
    for (uint64_t i = 0; i < marks && !in.bad; ++i) {
      record_list::mark m;
      m.record.first_seq = in.varint();
      m.record.position = in.varint();
      m.offset = in.varint();
      if (m.offset >= list.bytes_.size())
        return false;
      list.marks_.push_back(m);
    }
    if (in.bad || list.marks_.size() != (list.size_ == 0 ? 0 : (list.size_ - 1) / record_list::mark_every))
      return false;
    // The varints decode to exactly size_ records, seqs rising and frames
    // not falling, ending at last_, each mark where its record starts: so
    // record_list::covering never reads past its bytes.
    record_location at{};
    size_t offset = 0;
    reader records{list.bytes_};
    for (size_t i = 0; i < list.size_; ++i) {
      if (i > 0 && i % record_list::mark_every == 0) {
        auto& m = list.marks_[i / record_list::mark_every - 1];
        if (m.offset != offset)
          return false;
      }
      auto seq_delta = records.varint();
      auto position_delta = records.varint();
      if (records.bad || (i > 0 && seq_delta == 0))
        return false;
      at.first_seq += seq_delta;
      at.position += position_delta;
      offset = records.at;
      if (i > 0 && i % record_list::mark_every == 0
          && !(list.marks_[i / record_list::mark_every - 1].record == at))
        return false;
    }
    return records.at == list.bytes_.size() && (list.size_ == 0 || at == list.last_);
  }

  // REQUIRES: the index's lock is held.
  static void clear_locked(log_index& index) {
    index.by_name_.clear();
    index.streams_.clear();
    index.open_.clear();
    index.requests_.clear();
    index.colliding_.clear();
    index.request_order_.clear();
    index.request_frames_.clear();
    index.applied_ = 0;
    index.last_hash_ = {};
  }

  static void clear(log_index& index) {
    std::unique_lock lock{index.mutex_};
    clear_locked(index);
  }

  static std::vector<uint8_t> save(const log_index& index) {
    std::vector<uint8_t> out;
    std::shared_lock lock{index.mutex_};
    out.reserve(64 + index.streams_.size() * 48 + index.request_order_.size() * 12);
    out.push_back(1);
    put_varint(out, index.applied_);
    out.insert(out.end(), index.last_hash_.begin(), index.last_hash_.end());
    put_varint(out, index.streams_.size());
    for (auto& [name, s] : index.streams_) {
      put_bytes(out, std::span{reinterpret_cast<const uint8_t*>(name.data()), name.size()});
      put_varint(out, s.last_seq);
      put_varint(out, s.last_position);
      put_varint(out, s.before_position);
      out.push_back(s.open_work ? 1 : 0);
      save_records(out, s.records);
    }
    put_varint(out, index.request_order_.size());
    for (auto& r : index.request_order_) {
      put_u64(out, r.hash);
      put_varint(out, r.position);
    }
    put_varint(out, index.request_frames_.size());
    for (auto& f : index.request_frames_) {
      put_varint(out, f.position);
      put_varint(out, static_cast<uint64_t>(f.at_ms));
    }
    auto crc = crc32c(out);
    for (int i = 0; i < 4; ++i)
      out.push_back(static_cast<uint8_t>(crc >> (8 * i)));
    return out;
  }

  static caf::error load(log_index& index, std::span<const uint8_t> bytes) {
    auto malformed = [](const std::string& what) {
      return corrupt("the log index checkpoint is malformed: " + what);
    };
    if (bytes.size() < 1 + 1 + 32 + 4)
      return malformed("too short");
    auto body = bytes.first(bytes.size() - 4);
    if (crc32c(body) != trailing_crc32c(bytes))
      return malformed("its CRC does not match");
    reader in{body};
    if (in.u8() != 1)
      return malformed("unknown version");
    std::unique_lock lock{index.mutex_};
    if (index.applied_ != 0 || !index.streams_.empty() || !index.request_order_.empty())
      return malformed("loaded into an index in use");
    auto fail = [&](const std::string& what) {
      clear_locked(index);
      return malformed(what);
    };
    auto applied = in.varint();
    frame_hash hash{};
    for (auto& b : hash)
      b = in.u8();
    auto streams = in.count(6);
    index.by_name_.reserve(streams);
    std::string previous;
    for (uint64_t i = 0; i < streams && !in.bad; ++i) {
      auto name = in.bytes();
      std::string stream{reinterpret_cast<const char*>(name.data()), name.size()};
      if (i > 0 && stream <= previous)
        return fail("streams out of order at " + stream);
      log_index::stream_state s;
      s.last_seq = in.varint();
      s.last_position = in.varint();
      s.before_position = in.varint();
      auto open = in.u8();
      if (open > 1 || s.last_position > applied || s.before_position > s.last_position)
        return fail("stream " + stream);
      s.open_work = open == 1;
      if (!load_records(in, s.records))
        return fail("the records of " + stream);
      if (s.open_work)
        index.open_.insert(index.open_.end(), stream);
      previous = stream;
      auto at = index.streams_.emplace_hint(index.streams_.end(), std::move(stream), std::move(s));
      index.by_name_.emplace(std::string_view{at->first}, &at->second);
    }
    auto requests = in.count(9);
    index.requests_.reserve(requests);
    for (uint64_t i = 0; i < requests && !in.bad; ++i) {
      log_index::stored r{in.u64(), in.varint()};
      if (r.position > applied || r.position == 0)
        return fail("a stored request's frame");
      if (!index.requests_.try_emplace(r.hash, r.position).second)
        index.colliding_.emplace(r.hash, r.position);
      index.request_order_.push_back(r);
    }
    auto frames = in.count(2);
    for (uint64_t i = 0; i < frames && !in.bad; ++i) {
      log_index::request_frame f{in.varint(), static_cast<int64_t>(in.varint())};
      if (f.position > applied || f.position == 0 || f.at_ms < 0)
        return fail("a request frame");
      index.request_frames_.push_back(f);
    }
    if (in.bad)
      return fail("truncated");
    if (in.at != body.size())
      return fail("bytes after the end");
    index.applied_ = applied;
    index.last_hash_ = hash;
    return {};
  }

  static bool same_records(const record_list& a, const record_list& b) {
    if (a.size_ != b.size_ || !(a.last_ == b.last_) || a.bytes_ != b.bytes_
        || a.marks_.size() != b.marks_.size())
      return false;
    for (size_t i = 0; i < a.marks_.size(); ++i)
      if (!(a.marks_[i].record == b.marks_[i].record) || a.marks_[i].offset != b.marks_[i].offset)
        return false;
    return true;
  }

  // The first way `loaded` differs from `rebuilt` (check_index_checkpoint);
  // empty when it does not.
  static std::string difference(const log_index& loaded, const log_index& rebuilt) {
    std::shared_lock a{loaded.mutex_};
    std::shared_lock b{rebuilt.mutex_};
    if (loaded.applied_ != rebuilt.applied_ || loaded.last_hash_ != rebuilt.last_hash_)
      return "it ends at frame " + std::to_string(loaded.applied_) + ", the log there at frame " +
             std::to_string(rebuilt.applied_);
    auto l = loaded.streams_.begin();
    auto r = rebuilt.streams_.begin();
    for (; l != loaded.streams_.end() && r != rebuilt.streams_.end(); ++l, ++r) {
      if (l->first != r->first)
        return "it has stream " + std::min(l->first, r->first) + " and the log does not, or "
                                                                 "the other way round";
      auto& x = l->second;
      auto& y = r->second;
      if (x.last_seq != y.last_seq || x.last_position != y.last_position
          || x.before_position != y.before_position || x.open_work != y.open_work
          || !same_records(x.records, y.records))
        return "stream " + l->first + " differs from the log (the log has it at seq " +
               std::to_string(y.last_seq) + ")";
    }
    if (l != loaded.streams_.end() || r != rebuilt.streams_.end())
      return "it has " + std::to_string(loaded.streams_.size()) + " streams, the log " +
             std::to_string(rebuilt.streams_.size());
    auto newest = [](const auto& kept, const auto& all, auto same) {
      if (kept.size() > all.size())
        return false;
      auto from = all.size() - kept.size();
      for (size_t i = 0; i < kept.size(); ++i)
        if (!same(kept[i], all[from + i]))
          return false;
      return true;
    };
    if (!newest(loaded.request_order_, rebuilt.request_order_,
                [](const stored& x, const stored& y) {
                  return x.hash == y.hash && x.position == y.position;
                }))
      return "its stored requests are not the newest of those the log stored";
    if (!newest(loaded.request_frames_, rebuilt.request_frames_,
                [](const request_frame& x, const request_frame& y) {
                  return x.position == y.position && x.at_ms == y.at_ms;
                }))
      return "its request frames are not the newest of those the log has";
    return {};
  }
};

std::vector<uint8_t> log_index::save() const {
  return index_codec::save(*this);
}

caf::error log_index::load(std::span<const uint8_t> bytes) {
  return index_codec::load(*this, bytes);
}

namespace {

constexpr size_t checkpoint_part_bytes = 64u << 20;

} // namespace

caf::error save_index_checkpoint(const log_index& index, sqlite::connection& db) {
  auto bytes = index.save();
  auto position = static_cast<int64_t>(index_codec::reader{bytes, 1}.varint());
  // Whatever fails, the connection is left outside a transaction: the
  // writer's next batch begins its own.
  auto failed = [&](caf::error err) {
    if (sqlite3_get_autocommit(db.get()) == 0)
      db.exec("ROLLBACK", "rolling back the log index checkpoint");
    return err;
  };
  if (auto err = db.exec("BEGIN IMMEDIATE; DELETE FROM index_checkpoint",
                         "replacing the log index checkpoint"))
    return failed(std::move(err));
  sqlite::statement insert{db.get(),
                           "INSERT INTO index_checkpoint (part, position, data) VALUES (?1, ?2, ?3)"};
  int64_t part = 0;
  for (size_t at = 0; at < bytes.size(); at += checkpoint_part_bytes, ++part) {
    auto n = std::min(checkpoint_part_bytes, bytes.size() - at);
    insert.bind(1, part).bind(2, position).bind_blob(3, std::span{bytes}.subspan(at, n));
    auto rc = insert.step();
    insert.reset();
    if (rc != SQLITE_DONE)
      return failed(sqlite::failure(db.get(), rc, "writing the log index checkpoint"));
  }
  insert = {};
  if (auto err = db.exec("COMMIT", "committing the log index checkpoint"))
    return failed(std::move(err));
  return {};
}

caf::expected<bool> load_index_checkpoint(log_index& index, journal_reader& file) {
  auto& db = file.connection();
  sqlite::statement parts{db.get(),
                          "SELECT part, position, data FROM index_checkpoint ORDER BY part"};
  std::vector<uint8_t> bytes;
  int64_t position = -1;
  int64_t expected_part = 0;
  int rc;
  while ((rc = parts.step()) == SQLITE_ROW) {
    if (parts.column_int(0) != expected_part++
        || (position >= 0 && parts.column_int(1) != position)) {
      log().warn("journal: the log index checkpoint's parts do not match; reading every frame");
      return false;
    }
    position = parts.column_int(1);
    auto data = parts.column_blob(2);
    bytes.insert(bytes.end(), data.begin(), data.end());
  }
  if (rc != SQLITE_DONE)
    return sqlite::failure(db.get(), rc, "reading the log index checkpoint");
  if (position <= 0)
    return false;
  if (auto err = index.load(bytes)) {
    log().warn("journal: {}; reading every frame", message_of(err));
    return false;
  }
  // It must describe this log: its last frame is here, with its hash.
  auto& st = file.frame_at();
  sqlite::reset_on_exit reset{st};
  st.bind(1, position);
  rc = st.step();
  if (rc != SQLITE_ROW && rc != SQLITE_DONE)
    return sqlite::failure(db.get(), rc, "reading frame " + std::to_string(position));
  if (index.applied() != static_cast<uint64_t>(position) || rc == SQLITE_DONE
      || hash_of_frame(st.column_blob(0)) != index.last_hash()) {
    log().warn("journal: the log index checkpoint at frame {} does not match the log; reading "
               "every frame",
               position);
    index_codec::clear(index);
    return false;
  }
  return true;
}

namespace {

// Takes the frames after index.applied() into the index, up to frame
// `last` (all of them when it is the largest value), in pages, checking
// `cancel` (when given) between pages.
caf::error take_frames(log_index& index, journal_reader& file, uint64_t last,
                       const std::atomic<bool>* cancel) {
  for (;;) {
    if (cancel != nullptr && cancel->load())
      return {};
    auto& st = file.frames_after();
    sqlite::reset_on_exit reset{st};
    auto from = index.applied();
    if (from >= last)
      return {};
    auto page = static_cast<int64_t>(std::min<uint64_t>(catch_up_page, last - from));
    st.bind(1, static_cast<int64_t>(from)).bind(2, page);
    int64_t rows = 0;
    int rc;
    while ((rc = st.step()) == SQLITE_ROW) {
      ++rows;
      auto bytes = st.column_blob(1);
      auto frame = checked_frame(static_cast<uint64_t>(st.column_int(0)), bytes,
                                 st.column_int(2));
      if (!frame)
        return frame.error();
      if (auto err = index.apply(*frame, bytes))
        return err;
    }
    if (rc != SQLITE_DONE)
      return sqlite::failure(file.connection().get(), rc, "reading the log");
    if (rows < page)
      return {};
  }
}

} // namespace

caf::error catch_up(log_index& index, journal_reader& file) {
  return take_frames(index, file, std::numeric_limits<uint64_t>::max(), nullptr);
}

caf::error check_index_checkpoint(journal_reader& file, const std::atomic<bool>& cancel) {
  log_index loaded;
  auto found = load_index_checkpoint(loaded, file);
  if (!found)
    return found.error();
  if (!*found)
    return {};
  log_index rebuilt;
  if (auto err = take_frames(rebuilt, file, loaded.applied(), &cancel))
    return err;
  if (cancel.load())
    return {};
  if (rebuilt.applied() != loaded.applied())
    return corrupt("the log ends at frame " + std::to_string(rebuilt.applied()) +
                   ", before the index checkpoint's frame " + std::to_string(loaded.applied()));
  if (auto what = index_codec::difference(loaded, rebuilt); !what.empty())
    return corrupt("the log index checkpoint at frame " + std::to_string(loaded.applied()) +
                   " is not what its frames give: " + what + "; run wagerctl verify");
  return {};
}

// --- the store -----------------------------------------------------------------

namespace {

class log_store final : public journal_store {
public:
  log_store(sqlite::connection writer, const journal_options& options,
            std::shared_ptr<log_index> index)
    : options_(options), index_(std::move(index)),
      file_(std::make_unique<journal_reader>(std::move(writer), nullptr)),
      begin_(db().get(), "BEGIN IMMEDIATE"), commit_(db().get(), "COMMIT"),
      insert_frame_(db().get(), "INSERT INTO log (position, frame, crc) VALUES (?1, ?2, ?3)"),
      snapshot_seq_(db().get(), "SELECT seq FROM snapshots WHERE stream = ?1"),
      upsert_snapshot_(db().get(), upsert_snapshot_sql) {}

  ~log_store() override {
    // Statements before their connection.
    begin_ = {};
    commit_ = {};
    insert_frame_ = {};
    snapshot_seq_ = {};
    upsert_snapshot_ = {};
    file_.reset();
  }

  caf::error begin() override {
    clear_attempt();
    if (auto err = begin_batch(db(), begin_, options_))
      return err;
    // Under the write lock: every frame any process committed is taken in,
    // so the sequence checks below see them.
    return catch_up(*index_, *file_);
  }

  caf::expected<uint64_t> last_seq(const std::string& stream) override {
    if (auto it = pending_.find(stream); it != pending_.end())
      return it->second.last_seq;
    return index_->stream(stream).last_seq;
  }

  caf::expected<std::optional<uint64_t>> event_checksum(const std::string& stream,
                                                        uint64_t seq) override {
    if (auto it = pending_.find(stream); it != pending_.end())
      for (auto i : it->second.records) {
        auto& r = frame_.records[i];
        if (seq >= r.first_seq && seq - r.first_seq < r.events.size()) {
          auto& e = r.events[seq - r.first_seq];
          return std::optional<uint64_t>{row_checksum(stream, seq, e.type, e.version, e.payload)};
        }
      }
    if (auto it = recent_.find(event_key(stream, seq)); it != recent_.end())
      return std::optional<uint64_t>{it->second};
    auto where = index_->records_from(stream, seq, 1);
    if (where.empty())
      return std::optional<uint64_t>{};
    auto frame = read_frame(*file_, where.front().position);
    if (!frame)
      return frame.error();
    auto* r = find_record(*frame, stream, where.front().first_seq);
    if (r == nullptr || seq - r->first_seq >= r->events.size())
      return corrupt("frame " + std::to_string(where.front().position) + " has no event " +
                     std::to_string(seq) + " of " + stream);
    auto& e = r->events[seq - r->first_seq];
    return std::optional<uint64_t>{row_checksum(stream, seq, e.type, e.version, e.payload)};
  }

  result write_append(const append_request& request, int64_t at_ms, caf::error& error) override {
    if (request.request) {
      auto key = request_key(request.stream, request.request->request_id);
      if (pending_requests_.count(key) > 0)
        return result::request_taken;
      auto stored =
        find_indexed_request(*index_, *file_, request.stream, request.request->request_id);
      if (!stored) {
        error = stored.error();
        return result::storage_failed;
      }
      if (*stored)
        return result::request_taken;
      pending_requests_.insert(std::move(key));
    }
    auto [it, first_in_frame] = pending_.try_emplace(request.stream);
    auto& p = it->second;
    if (first_in_frame) {
      auto before = index_->stream(request.stream);
      p.last_seq = before.last_seq;
      p.back_pointer = before.last_position;
    }
    log_record r;
    r.stream = request.stream;
    r.first_seq = request.expected_seq + 1;
    r.previous_position = p.back_pointer;
    r.events.reserve(request.events.size());
    for (auto& e : request.events)
      r.events.push_back(log_event{e.type, e.version, e.payload, at_ms});
    if (request.request) {
      r.request = request.request;
      r.request_at_ms = at_ms;
    }
    r.open_work = request.open_work;
    p.last_seq = request.expected_seq + request.events.size();
    p.records.push_back(frame_.records.size());
    frame_.records.push_back(std::move(r));
    return result::ok;
  }

  caf::expected<std::optional<uint64_t>> snapshot_seq(const std::string& stream) override {
    sqlite::reset_on_exit reset{snapshot_seq_};
    snapshot_seq_.bind(1, stream);
    auto rc = snapshot_seq_.step();
    if (rc == SQLITE_ROW)
      return std::optional<uint64_t>{static_cast<uint64_t>(snapshot_seq_.column_int(0))};
    if (rc == SQLITE_DONE)
      return std::optional<uint64_t>{};
    return sqlite::failure(db().get(), rc, "reading the snapshot of " + stream);
  }

  result write_snapshot(const snapshot& snap, int64_t at_ms, caf::error& error) override {
    return write_snapshot_row(db(), upsert_snapshot_, snap, at_ms, error);
  }

  caf::error commit(size_t writes) override {
    frame_bytes bytes;
    if (!frame_.records.empty()) {
      frame_.position = index_->applied() + 1;
      frame_.previous = index_->last_hash();
      auto encoded = encode(frame_);
      if (!encoded)
        return encoded.error();
      bytes = std::move(*encoded);
      sqlite::reset_on_exit reset{insert_frame_};
      insert_frame_.bind(1, static_cast<int64_t>(frame_.position));
      insert_frame_.bind_blob(2, bytes).bind(3, int64_t{trailing_crc32c(bytes)});
      if (auto rc = insert_frame_.step(); rc != SQLITE_DONE)
        return sqlite::failure(db().get(), rc,
                               "appending frame " + std::to_string(frame_.position));
    }
    if (auto err = commit_batch(db(), commit_, options_.path, writes))
      return err;
    if (!frame_.records.empty()) {
      // Durable: the index takes it in before anyone is answered, so an
      // answered append is readable.
      if (auto err = index_->apply(frame_, bytes))
        log().error("journal {}: {}", options_.path, message_of(err));
      remember_checksums();
    }
    clear_attempt();
    return {};
  }

  void rollback() override {
    if (sqlite3_get_autocommit(db().get()) == 0)
      db().exec("ROLLBACK", "rolling back a journal batch");
    clear_attempt();
  }

  caf::expected<uint64_t> prune_requests(int64_t cutoff_ms, uint32_t max_count) override {
    return index_->prune_requests(cutoff_ms, max_count);
  }

  void between_batches(bool closing) override {
    if (options_.index_checkpoint_frames == 0)
      return;
    if (!checkpointed_) {
      auto at = db().query_int("SELECT coalesce(max(position), 0) FROM index_checkpoint",
                               "reading the log index checkpoint");
      if (!at) {
        log().warn("journal {}: {}", options_.path, message_of(at.error()));
        return;
      }
      checkpointed_ = static_cast<uint64_t>(*at);
    }
    auto applied = index_->applied();
    auto now = std::chrono::steady_clock::now();
    if (applied <= *checkpointed_
        || (!closing && (applied - *checkpointed_ < options_.index_checkpoint_frames
                         || now < next_checkpoint_)))
      return;
    auto err = save_index_checkpoint(*index_, db());
    auto took = std::chrono::steady_clock::now() - now;
    // The writer appends nothing while it saves: the next one waits at
    // least 50 times as long as this one took, so saving is at most about
    // 2% of the writer's time however large the index grows.
    next_checkpoint_ = now + 50 * took;
    checkpointed_ = applied; // after a failure, tried again as many frames later
    if (err) {
      log().warn("journal {}: {}", options_.path, message_of(err));
      return;
    }
    log().debug("journal {}: log index checkpoint at frame {} in {} ms", options_.path, applied,
                std::chrono::duration_cast<std::chrono::milliseconds>(took).count());
  }

private:
  // What this attempt did to one stream.
  struct pending_stream {
    uint64_t last_seq = 0;
    uint64_t back_pointer = 0; // every record of it in this frame points here
    std::vector<size_t> records; // its records in frame_.records
  };

  sqlite::connection& db() { return file_->connection(); }

  void clear_attempt() {
    frame_.records.clear();
    pending_.clear();
    pending_requests_.clear();
  }

  void remember_checksums() {
    for (auto& r : frame_.records)
      for (size_t i = 0; i < r.events.size(); ++i) {
        if (recent_.size() >= recent_checksums_max)
          recent_.clear();
        auto& e = r.events[i];
        auto seq = r.first_seq + i;
        recent_.insert_or_assign(event_key(r.stream, seq),
                                 row_checksum(r.stream, seq, e.type, e.version, e.payload));
      }
  }

  const journal_options& options_;
  std::shared_ptr<log_index> index_;
  std::unique_ptr<journal_reader> file_; // the writer connection, with the log reads
  sqlite::statement begin_, commit_, insert_frame_, snapshot_seq_, upsert_snapshot_;
  log_frame frame_; // this attempt's records
  std::unordered_map<std::string, pending_stream> pending_;
  std::unordered_set<std::string> pending_requests_;
  std::unordered_map<std::string, uint64_t> recent_;
  std::optional<uint64_t> checkpointed_; // the frame of the file's checkpoint
  std::chrono::steady_clock::time_point next_checkpoint_{}; // none sooner
};

} // namespace

std::unique_ptr<journal_store> make_log_store(sqlite::connection db,
                                              const journal_options& options,
                                              std::shared_ptr<log_index> index) {
  return std::make_unique<log_store>(std::move(db), options, std::move(index));
}

// --- reads -------------------------------------------------------------------------

namespace {

recorded_event recorded(const log_event& e, uint64_t seq) {
  return recorded_event{seq, e.at_ms, event{e.type, e.version, e.payload}};
}

// Events as the journal returns them: upcast by the reader's upcasters.
caf::error upcast(journal_reader& file, std::vector<recorded_event>& events) {
  if (auto& upcasters = file.upcasters(); upcasters != nullptr && !upcasters->empty())
    for (auto& e : events)
      if (auto err = upcasters->upcast(e.data))
        return err;
  return {};
}

} // namespace

caf::expected<std::vector<recorded_event>> read_log_events(log_index& index, journal_reader& file,
                                                           const std::string& stream,
                                                           uint64_t from_seq,
                                                           uint32_t max_count) {
  if (auto err = catch_up(index, file))
    return err;
  std::vector<recorded_event> out;
  auto from = std::max<uint64_t>(from_seq, 1);
  for (auto& where : index.records_from(stream, from, max_count)) {
    auto frame = read_frame(file, where.position);
    if (!frame)
      return frame.error();
    auto* r = find_record(*frame, stream, where.first_seq);
    if (r == nullptr)
      return corrupt("frame " + std::to_string(where.position) + " has no record of " + stream +
                     " from seq " + std::to_string(where.first_seq));
    for (size_t i = 0; i < r->events.size() && out.size() < max_count; ++i) {
      auto seq = r->first_seq + i;
      if (seq < from)
        continue;
      if (seq != from + out.size())
        return corrupt(stream + " has no event " + std::to_string(from + out.size()) +
                       " before event " + std::to_string(seq));
      out.push_back(recorded(r->events[i], seq));
    }
  }
  if (auto err = upcast(file, out))
    return err;
  return out;
}

caf::expected<log_page> read_log_page(journal_reader& file, uint64_t after,
                                     uint32_t max_frames, std::string_view kind) {
  log_page page;
  page.end = after;
  if (max_frames == 0)
    return page;
  auto& st = file.frames_after();
  sqlite::reset_on_exit reset{st};
  st.bind(1, static_cast<int64_t>(after)).bind(2, static_cast<int64_t>(max_frames));
  int rc;
  while ((rc = st.step()) == SQLITE_ROW) {
    auto position = static_cast<uint64_t>(st.column_int(0));
    auto bytes = st.column_blob(1);
    if (position != page.end + 1)
      return corrupt("the log has no frame " + std::to_string(page.end + 1) + " before frame " +
                     std::to_string(position));
    auto frame = checked_frame(position, bytes, st.column_int(2));
    if (!frame)
      return frame.error();
    for (auto& r : frame->records) {
      if (r.events.empty())
        continue;
      if (!kind.empty()
          && !(r.stream.size() > kind.size() && r.stream.starts_with(kind)
               && r.stream[kind.size()] == '/'))
        continue;
      logged_append a{position, r.stream, {}};
      a.events.reserve(r.events.size());
      for (size_t i = 0; i < r.events.size(); ++i)
        a.events.push_back(recorded(r.events[i], r.first_seq + i));
      if (auto err = upcast(file, a.events))
        return err;
      page.appends.push_back(std::move(a));
    }
    page.end = position;
    page.end_hash = hash_of_frame(bytes);
  }
  if (rc != SQLITE_DONE)
    return sqlite::failure(file.connection().get(), rc, "reading the log");
  return page;
}

caf::expected<std::vector<std::vector<recorded_event>>>
read_log_streams(const log_index& index, journal_reader& file,
                 const std::vector<std::string>& streams) {
  // Every record wanted, in log order, then by stream and seq.
  struct wanted {
    uint64_t position;
    size_t stream;
    uint64_t first_seq;
    auto key() const { return std::tie(position, stream, first_seq); }
  };
  std::vector<wanted> wants;
  for (size_t i = 0; i < streams.size(); ++i)
    for (auto& r : index.records_from(streams[i], 1, std::numeric_limits<uint64_t>::max()))
      wants.push_back(wanted{r.position, i, r.first_seq});
  std::sort(wants.begin(), wants.end(),
            [](const wanted& a, const wanted& b) { return a.key() < b.key(); });
  std::vector<std::vector<recorded_event>> out(streams.size());
  for (size_t first = 0; first < wants.size();) {
    auto position = wants[first].position;
    auto last = first;
    while (last < wants.size() && wants[last].position == position)
      ++last;
    auto frame = read_frame(file, position);
    if (!frame)
      return frame.error();
    size_t found = 0;
    for (auto& r : frame->records) {
      if (r.events.empty())
        continue;
      auto s = std::lower_bound(streams.begin(), streams.end(), r.stream);
      if (s == streams.end() || *s != r.stream)
        continue;
      auto stream = static_cast<size_t>(s - streams.begin());
      wanted probe{position, stream, r.first_seq};
      auto w = std::lower_bound(wants.begin() + static_cast<ptrdiff_t>(first),
                                wants.begin() + static_cast<ptrdiff_t>(last), probe,
                                [](const wanted& a, const wanted& b) { return a.key() < b.key(); });
      if (w == wants.begin() + static_cast<ptrdiff_t>(last) || w->key() != probe.key())
        continue;
      auto& events = out[stream];
      if (r.first_seq != events.size() + 1)
        return corrupt(r.stream + " has no event " + std::to_string(events.size() + 1) +
                       " before event " + std::to_string(r.first_seq));
      for (size_t i = 0; i < r.events.size(); ++i)
        events.push_back(recorded(r.events[i], r.first_seq + i));
      ++found;
    }
    if (found != last - first)
      return corrupt("frame " + std::to_string(position) + " lacks records the index places in it");
    first = last;
  }
  for (auto& events : out)
    if (auto err = upcast(file, events))
      return err;
  return out;
}

caf::expected<std::optional<stored_request>> find_indexed_request(const log_index& index,
                                                                  journal_reader& file,
                                                                  const std::string& stream,
                                                                  const std::string& request_id) {
  auto frames = index.request_frames(stream, request_id);
  for (auto position : frames) {
    auto frame = read_frame(file, position);
    if (!frame)
      return frame.error();
    for (auto& r : frame->records)
      if (r.request && r.request->request_id == request_id && r.stream == stream)
        return std::optional<stored_request>{
          stored_request{request_id, r.first_seq + r.events.size() - 1, r.request->result,
                         r.request_at_ms}};
  }
  // Every candidate held another request with the same hash, or none: not
  // stored.
  return std::optional<stored_request>{};
}

caf::expected<std::optional<stored_request>> find_log_request(log_index& index,
                                                              journal_reader& file,
                                                              const std::string& stream,
                                                              const std::string& request_id) {
  if (auto err = catch_up(index, file))
    return err;
  return find_indexed_request(index, file, stream, request_id);
}

} // namespace wager
