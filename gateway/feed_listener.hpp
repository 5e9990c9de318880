#pragma once

// The feed's TCP listener: producers connect and send newline-delimited JSON
// (shared/API.md, "Feed"). Each complete line goes to the sink in the order
// it arrived on its connection; what a line means is the feed ingest's
// business, not the listener's.

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

namespace wager {

struct feed_listener_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8090; // 0: any free port

  // A line longer than this is skipped up to its newline and reported to the
  // sink as oversized, so one bad producer cannot grow memory without bound.
  uint32_t line_max_bytes = 1024 * 1024;
};

// Called on the listener's thread for every line; `connection` numbers the
// producer connection. `oversized` lines arrive empty.
using feed_line_sink =
  std::function<void(uint64_t connection, std::string_view line, bool oversized)>;

class feed_listener {
public:
  feed_listener(feed_listener_options options, feed_line_sink sink);
  ~feed_listener();
  feed_listener(const feed_listener&) = delete;
  feed_listener& operator=(const feed_listener&) = delete;

  // Binds and starts. Returns an error line, or "" on success.
  std::string start();
  uint16_t port() const;
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace wager
