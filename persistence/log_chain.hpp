#pragma once

// The ordered log as a hash chain: each frame holds the SHA-256 of the frame
// before it (log_frame.hpp), and each record the position of its stream's
// record before it. verify_chain checks a run of frames against both and
// names the first frame that does not match: the tamper evidence of the log
// (DESIGN.md, "Persistence").

#include "wager/persistence/log_frame.hpp"

#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace wager {

// Where a run of frames begins: the position of its first frame and the
// hash that frame must hold. The default is the start of the log.
struct chain_start {
  uint64_t position = 1;
  frame_hash previous{};
};

// The first frame that does not match.
struct chain_break {
  uint64_t position = 0; // where that frame should be in the log
  std::string problem;
};

// Checks `frames`, consecutive and in position order from `start`: each
// decodes (CRC, bounds), holds the position it is expected at and the
// SHA-256 of the frame before it, and each record's previous_position names
// the frame of the stream's record before it, with seqs going on from
// there. A frame changed and resealed with a valid CRC is caught by the
// next frame's hash: the break names that next frame. Nothing vouches for
// the last frame given but a hash of it kept elsewhere.
//
// Memory: one entry per stream seen, for the back-pointer check.
std::optional<chain_break> verify_chain(std::span<const frame_bytes> frames,
                                        const chain_start& start = {});

} // namespace wager
