#pragma once

// How the feed listener (feed_listener.hpp) cuts one connection's bytes into
// lines, apart from the socket so that fuzz/feed_line_fuzz.cpp can drive it
// with any bytes in any chunks. Not a public header.

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace wager {

class feed_line_framer {
public:
  // Called for every complete line: the line without its newline, trailing
  // '\r' and ' ' trimmed, never empty; or, for a line over the bound, once
  // with an empty line and `oversized` set.
  using emit_fn = std::function<void(std::string_view line, bool oversized)>;

  explicit feed_line_framer(uint32_t line_max_bytes) : line_max_bytes_(line_max_bytes) {}

  // Takes the connection's next bytes, however the reads cut them. Blank
  // lines are dropped; bytes after the last newline wait for the next call.
  // A line counts against the bound before it is trimmed, and an oversized
  // one is skipped up to its newline without being held, so memory stays
  // within line_max_bytes whatever a producer sends.
  void consume(std::string_view data, const emit_fn& emit);

private:
  uint32_t line_max_bytes_;
  std::string line_;
  bool skipping_ = false;
};

} // namespace wager
