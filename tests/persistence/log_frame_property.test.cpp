// Properties of the log frame format over random frames (rapidcheck): every
// frame round-trips byte for byte, every damage to its bytes is refused, a
// changed frame in a chain is named where it is, and no input, however
// malformed, makes decoding read out of bounds (run under ASan). And the
// index's compact list of a stream's records (log_journal.hpp) answers as a
// plain sorted vector of them would.

#include "log_frame_support.hpp"

#include <wager/persistence/log_chain.hpp>
#include <wager/persistence/log_journal.hpp>

#include <wager/runtime/errors.hpp>

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <limits>

using namespace wager;
using namespace wager::test;

namespace {

std::string text_of(size_t min, size_t max, char lowest, char highest) {
  auto size = *rc::gen::inRange(min, max + 1);
  return *rc::gen::container<std::string>(
    size, rc::gen::inRange<char>(lowest, static_cast<char>(highest + 1)));
}

log_event arbitrary_event() {
  log_event e;
  e.type = text_of(1, event_type_bytes_max, 'a', 'z');
  e.version = *rc::gen::inRange<uint32_t>(1, std::numeric_limits<uint32_t>::max());
  // Any bytes: the frame does not care what a payload holds.
  e.payload = *rc::gen::resize(64, rc::gen::arbitrary<std::string>());
  e.at_ms = *rc::gen::inRange<int64_t>(0, std::numeric_limits<int64_t>::max());
  return e;
}

log_record arbitrary_record(uint64_t position) {
  log_record r;
  r.stream = text_of(1, 8, 'a', 'z') + "/" + text_of(1, 40, '0', 'z');
  auto count = *rc::gen::inRange<size_t>(0, 5);
  for (size_t i = 0; i < count; ++i)
    r.events.push_back(arbitrary_event());
  r.first_seq = *rc::gen::inRange<uint64_t>(1, std::numeric_limits<uint64_t>::max() - 8);
  if (count == 0 || *rc::gen::arbitrary<bool>())
    r.request = request_record{text_of(1, request_id_bytes_max, '!', '~'),
                               *rc::gen::resize(64, rc::gen::arbitrary<std::string>())};
  if (r.request)
    r.request_at_ms = *rc::gen::inRange<int64_t>(0, std::numeric_limits<int64_t>::max());
  if (*rc::gen::arbitrary<bool>())
    r.open_work = *rc::gen::arbitrary<bool>();
  r.previous_position = *rc::gen::inRange<uint64_t>(0, position);
  return r;
}

log_frame arbitrary_frame() {
  log_frame f;
  f.position = *rc::gen::oneOf(rc::gen::just<uint64_t>(1),
                               rc::gen::inRange<uint64_t>(2, std::numeric_limits<uint64_t>::max()));
  if (f.position > 1)
    for (auto& b : f.previous)
      b = *rc::gen::arbitrary<uint8_t>();
  auto count = *rc::gen::inRange<size_t>(0, 9);
  for (size_t i = 0; i < count; ++i)
    f.records.push_back(arbitrary_record(f.position));
  return f;
}

frame_bytes encoded(const log_frame& f) {
  auto bytes = encode(f);
  RC_ASSERT(bool(bytes));
  return std::move(*bytes);
}

} // namespace

TEST_CASE("any frame decodes to itself and encodes again to the same bytes") {
  CHECK(rc::check("frames round-trip", [] {
    auto f = arbitrary_frame();
    auto bytes = encoded(f);
    auto back = decode_log_frame(bytes);
    RC_ASSERT(bool(back));
    RC_ASSERT(*back == f);
    RC_ASSERT(encoded(*back) == bytes);
  }));
}

TEST_CASE("any changed byte or truncation of a frame is refused") {
  CHECK(rc::check("changed or truncated frames are refused", [] {
    auto bytes = encoded(arbitrary_frame());
    auto changed = bytes;
    auto at = *rc::gen::inRange<size_t>(0, bytes.size());
    changed[at] ^= *rc::gen::inRange<uint8_t>(1, 255);
    auto damaged = decode_log_frame(changed);
    RC_ASSERT_FALSE(bool(damaged));
    RC_ASSERT(code_of(damaged.error()) == errc::journal_failure);
    auto cut = *rc::gen::inRange<size_t>(0, bytes.size());
    auto truncated = decode_log_frame(std::span{bytes}.first(cut));
    RC_ASSERT_FALSE(bool(truncated));
    RC_ASSERT(code_of(truncated.error()) == errc::journal_failure);
  }));
}

TEST_CASE("random bytes, sealed or not, are refused or decode to a frame that encodes to them") {
  CHECK(rc::check("random bytes are refused or canonical", [] {
    auto bytes = *rc::gen::container<frame_bytes>(rc::gen::arbitrary<uint8_t>());
    if (auto raw = decode_log_frame(bytes))
      RC_ASSERT(encoded(*raw) == bytes);
    // Sealed: a valid version, length and CRC, so the body is parsed.
    if (bytes.size() < 50)
      bytes.resize(50);
    bytes[0] = log_frame_format_version;
    reseal(bytes);
    auto f = decode_log_frame(bytes);
    if (f)
      RC_ASSERT(encoded(*f) == bytes);
  }));
}

TEST_CASE("a frame changed and resealed is refused or decodes to a frame that encodes to it") {
  // The body parser on inputs close to valid frames: any byte changed, the
  // length and CRC made to match. Decoding accepts only canonical bytes.
  CHECK(rc::check("resealed frames are refused or canonical", [] {
    auto bytes = encoded(arbitrary_frame());
    auto at = *rc::gen::inRange<size_t>(45, bytes.size() - 4);
    bytes[at] ^= *rc::gen::inRange<uint8_t>(1, 255);
    if (*rc::gen::arbitrary<bool>())
      bytes.erase(bytes.begin() + static_cast<ptrdiff_t>(*rc::gen::inRange<size_t>(45, bytes.size() - 4)));
    reseal(bytes);
    auto f = decode_log_frame(bytes);
    if (f)
      RC_ASSERT(encoded(*f) == bytes);
    else
      RC_ASSERT(code_of(f.error()) == errc::journal_failure);
  }));
}

TEST_CASE("in a chain with one frame changed, verify_chain names that frame, or the next when "
          "it was resealed") {
  CHECK(rc::check("verify_chain names the changed frame", [] {
    chain_builder chain;
    auto n = *rc::gen::inRange<size_t>(2, 9);
    for (size_t i = 0; i < n; ++i) {
      auto records = *rc::gen::resize(
        6, rc::gen::container<std::vector<std::pair<int, size_t>>>(
             rc::gen::pair(rc::gen::inRange(0, 4), rc::gen::inRange<size_t>(0, 3))));
      chain.add(records);
    }
    RC_ASSERT_FALSE(verify_chain(chain.frames()).has_value());
    auto k = *rc::gen::inRange<size_t>(0, n);
    auto frames = chain.frames();
    if (*rc::gen::arbitrary<bool>()) {
      // Damaged: its own CRC names it.
      auto at = *rc::gen::inRange<size_t>(0, frames[k].size());
      frames[k][at] ^= *rc::gen::inRange<uint8_t>(1, 255);
      auto b = verify_chain(frames);
      RC_ASSERT(b.has_value());
      RC_ASSERT(b->position == k + 1);
    } else {
      // Rewritten with a valid CRC: the next frame's hash names the change;
      // nothing given vouches for the last frame.
      auto f = chain.decoded()[k];
      f.records.push_back(log_record{"wallet/forged", 1, {a_log_event(1)}, std::nullopt,
                                     std::nullopt, 0});
      frames[k] = encoded(f);
      auto b = verify_chain(frames);
      if (k + 1 == n) {
        RC_ASSERT_FALSE(b.has_value());
      } else {
        RC_ASSERT(b.has_value());
        RC_ASSERT(b->position == k + 2);
      }
    }
  }));
}

namespace {

// What record_list::covering answers, from a plain vector.
std::vector<record_location> covering_by_scan(const std::vector<record_location>& records,
                                              uint64_t from, uint64_t last_seq, uint64_t count) {
  std::vector<record_location> out;
  if (records.empty() || from > last_seq || count == 0 || from < records.front().first_seq)
    return out;
  size_t i = 0;
  while (i + 1 < records.size() && records[i + 1].first_seq <= from)
    ++i;
  uint64_t covered = 0;
  for (; i < records.size() && covered < count; ++i) {
    auto end = i + 1 < records.size() ? records[i + 1].first_seq : last_seq + 1;
    covered += end - std::max(from, records[i].first_seq);
    out.push_back(records[i]);
  }
  return out;
}

} // namespace

TEST_CASE("a stream's compact record list answers every lookup as the plain list does") {
  CHECK(rc::check("record_list::covering equals a scan", [] {
    // Records from seq 1, each of 1 to 5 events (or sometimes many), each in
    // the same frame as the one before or a later one (sometimes far).
    auto n = *rc::gen::inRange<size_t>(0, 400);
    std::vector<record_location> records;
    record_list list;
    uint64_t seq = 1;
    uint64_t position = *rc::gen::inRange<uint64_t>(1, 1u << 20);
    for (size_t i = 0; i < n; ++i) {
      records.push_back(record_location{seq, position});
      list.push_back(records.back());
      seq += *rc::gen::weightedOneOf<uint64_t>(
        {{9, rc::gen::inRange<uint64_t>(1, 6)}, {1, rc::gen::inRange<uint64_t>(6, 70000)}});
      position += *rc::gen::weightedOneOf<uint64_t>(
        {{3, rc::gen::just<uint64_t>(0)}, {6, rc::gen::inRange<uint64_t>(1, 300)},
         {1, rc::gen::inRange<uint64_t>(300, uint64_t{1} << 40)}});
    }
    RC_ASSERT(list.size() == n);
    auto last_seq = seq - 1;
    for (int probe = 0; probe < 20; ++probe) {
      auto from = *rc::gen::inRange<uint64_t>(0, last_seq + 3);
      auto count = *rc::gen::weightedOneOf<uint64_t>(
        {{3, rc::gen::inRange<uint64_t>(0, 4)}, {1, rc::gen::inRange<uint64_t>(4, 5000)}});
      RC_ASSERT(list.covering(from, last_seq, count) ==
                covering_by_scan(records, from, last_seq, count));
    }
  }));
}
