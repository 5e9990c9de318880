#pragma once

// Frames for the log frame suites: a typical frame, a chain of frames with
// consistent back-pointers and seqs, and resealing (a frame's bytes changed
// on purpose, with its length and CRC made to match again).

#include <wager/persistence/log_frame.hpp>

#include <map>
#include <string>
#include <vector>

namespace wager::test {

inline log_event a_log_event(int i) {
  return log_event{"stake_held", 1,
                   R"({"request_id":"c64-12-)" + std::to_string(i) +
                     R"(","stake":2550,"price":"3.75"})",
                   1764900000000 + i};
}

// A bet's record: one event, a request, the wallet's work left open.
inline log_record a_log_record(int i, uint64_t position) {
  log_record r;
  r.stream = "wallet/w" + std::to_string(i);
  r.first_seq = 7 + static_cast<uint64_t>(i);
  r.events = {a_log_event(i)};
  r.request = request_record{"c64-12-" + std::to_string(i), R"({"bet_id":"b-0123456789"})"};
  r.open_work = i % 2 == 0;
  r.previous_position = position > 1 ? position - 1 : 0;
  return r;
}

inline log_frame a_log_frame(uint64_t position, size_t records) {
  log_frame f;
  f.position = position;
  if (position > 1)
    f.previous.fill(0xab);
  for (size_t i = 0; i < records; ++i)
    f.records.push_back(a_log_record(static_cast<int>(i), position));
  return f;
}

// Writes the length and CRC a frame's bytes should have, as an encoder that
// wrote these bytes would.
inline void reseal(frame_bytes& bytes) {
  auto size = static_cast<uint32_t>(bytes.size());
  for (size_t i = 0; i < 4; ++i)
    bytes[1 + i] = static_cast<uint8_t>(size >> (8 * i));
  auto crc = crc32c(std::span{bytes}.first(bytes.size() - 4));
  for (size_t i = 0; i < 4; ++i)
    bytes[bytes.size() - 4 + i] = static_cast<uint8_t>(crc >> (8 * i));
}

// Encodes frames 1..n, each holding records for the streams `streams[k]`
// lists (indices into "wallet/s<i>"), each record one event per entry of
// `events`, with back-pointers and seqs as a writer would set them.
class chain_builder {
public:
  // Appends a frame with one record per (stream, event count) pair.
  void add(const std::vector<std::pair<int, size_t>>& records) {
    log_frame f;
    f.position = frames_.size() + 1;
    if (!frames_.empty())
      f.previous = hash_of_frame(frames_.back());
    std::map<std::string, uint64_t> before; // back-pointers within this frame
    for (auto& [stream, count] : records) {
      log_record r;
      r.stream = "wallet/s" + std::to_string(stream);
      auto& t = trail_[r.stream];
      if (t.last != f.position) {
        t.before = t.last;
        t.last = f.position;
      }
      r.previous_position = t.before;
      r.first_seq = t.next_seq;
      for (size_t i = 0; i < count; ++i)
        r.events.push_back(a_log_event(static_cast<int>(t.next_seq + i)));
      if (count == 0)
        r.request = request_record{"r" + std::to_string(t.next_seq), "{}"};
      t.next_seq += count;
      f.records.push_back(std::move(r));
    }
    auto bytes = encode(f);
    if (!bytes)
      throw std::runtime_error{"chain_builder: a frame did not encode"};
    frames_.push_back(std::move(*bytes));
    decoded_.push_back(std::move(f));
  }

  std::vector<frame_bytes>& frames() { return frames_; }
  const std::vector<log_frame>& decoded() const { return decoded_; }

private:
  struct trail {
    uint64_t last = 0;
    uint64_t before = 0;
    uint64_t next_seq = 1;
  };
  std::map<std::string, trail> trail_;
  std::vector<frame_bytes> frames_;
  std::vector<log_frame> decoded_;
};

} // namespace wager::test
