#include "wager/persistence/log_chain.hpp"

#include "wager/runtime/errors.hpp"

#include <unordered_map>

namespace wager {

namespace {

// What verify_chain knows of a stream from the frames it has read.
struct stream_trail {
  uint64_t last = 0;     // the last frame holding a record of it
  uint64_t before = 0;   // the frame before `last` holding one (its back-pointer)
  uint64_t next_seq = 0; // the seq its next event gets
};

std::string hex(const frame_hash& h) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string s;
  for (auto b : h) {
    s += digits[b >> 4];
    s += digits[b & 0xf];
  }
  return s;
}

// The problem with `r` in frame `position`, given what earlier frames said
// of its stream; empty when it follows on.
std::string check_trail(const log_record& r, uint64_t position, uint64_t start,
                        std::unordered_map<std::string, stream_trail>& trails) {
  auto [it, first_seen] = trails.try_emplace(r.stream);
  auto& t = it->second;
  std::string problem;
  if (first_seen) {
    // Its previous record, if any, is before the frames given.
    if (r.previous_position >= start)
      problem = r.stream + ": back-pointer " + std::to_string(r.previous_position) +
                " names a frame without a record of it";
    t.before = r.previous_position;
  } else {
    auto expected = t.last == position ? t.before : t.last;
    if (r.previous_position != expected)
      problem = r.stream + ": back-pointer " + std::to_string(r.previous_position) +
                ", but its previous record is in frame " + std::to_string(expected);
    else if (r.first_seq != t.next_seq)
      problem = r.stream + ": first seq " + std::to_string(r.first_seq) + ", but its seqs went on at " +
                std::to_string(t.next_seq);
    if (t.last != position)
      t.before = t.last;
  }
  t.last = position;
  t.next_seq = r.first_seq + r.events.size();
  return problem;
}

} // namespace

std::optional<chain_break> verify_chain(std::span<const frame_bytes> frames,
                                        const chain_start& start) {
  std::unordered_map<std::string, stream_trail> trails;
  auto previous = start.previous;
  for (size_t i = 0; i < frames.size(); ++i) {
    auto expected = start.position + i;
    auto frame = decode_log_frame(frames[i]);
    if (!frame)
      return chain_break{expected, message_of(frame.error())};
    if (frame->position != expected)
      return chain_break{expected, "frame holds position " + std::to_string(frame->position)};
    if (frame->previous != previous)
      return chain_break{expected,
                         "previous hash " + hex(frame->previous) + " is not " + hex(previous) +
                           ", the SHA-256 of frame " + std::to_string(expected - 1) +
                           ": that frame or this one was changed"};
    for (auto& r : frame->records)
      if (auto problem = check_trail(r, expected, start.position, trails); !problem.empty())
        return chain_break{expected, problem};
    previous = hash_of_frame(frames[i]);
  }
  return std::nullopt;
}

} // namespace wager
