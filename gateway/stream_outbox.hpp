#pragma once

// The bounded send queue of one WebSocket connection, shared by the stream
// session actor (producer, any thread) and the socket's writer (consumer, the
// connection's strand). A slow client cannot grow it without bound:
//
// - price messages conflate per market: a newer one merges the older one's
//   prices (latest wins per selection), takes its version and moves to the
//   back, so the client still sees versions increase (with a gap);
// - everything else (market snapshots, status, bet, wallet, error) is
//   reliable: never dropped. When more than reliable_max of them wait, the
//   client is too slow; the outbox drops its queue and closes with a reason.

#include <cstdint>
#include <functional>
#include <list>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

namespace wager {

struct stream_outbox_limits {
  // Reliable messages waiting before the connection is closed as too slow.
  size_t reliable_max = 4096;
  // Markets with a conflated price waiting (one entry each).
  size_t price_markets_max = 1024;
};

class stream_outbox {
public:
  explicit stream_outbox(stream_outbox_limits limits = {});

  // The writer registers how to wake itself (posts to its strand). Called
  // outside the lock whenever something new is ready.
  void on_ready(std::function<void()> wake);

  // A reliable text frame. Returns false (and closes) when the queue is full.
  bool push(std::string text);

  // A price change of `market`; conflates with one still waiting.
  bool push_price(const std::string& market, uint64_t version,
                  const std::map<std::string, std::string>& prices);

  // Closes after the queued messages are sent (graceful) or at once.
  void close(std::string reason, bool graceful = true);

  struct item {
    std::string text;   // empty with close set: send the close frame
    bool close = false;
    std::string reason;
  };
  // The next frame for the writer, or nullopt when nothing waits.
  std::optional<item> take();

  bool closed() const;
  size_t size() const;           // frames waiting
  size_t high_water() const;     // the most frames that ever waited
  uint64_t conflated() const;    // price messages merged into newer ones

private:
  struct entry {
    bool is_price = false;
    std::string text;
    std::string market;
    uint64_t version = 0;
    std::map<std::string, std::string> prices;
  };
  void wake();

  stream_outbox_limits limits_;
  mutable std::mutex mutex_;
  std::list<entry> queue_;
  std::unordered_map<std::string, std::list<entry>::iterator> pending_price_;
  size_t reliable_ = 0;
  size_t high_water_ = 0;
  uint64_t conflated_ = 0;
  bool closing_ = false;
  bool close_now_ = false;
  bool close_sent_ = false;
  std::string reason_;
  std::function<void()> wake_;
};

// {"type":"price","market_id":...,"version":...,"prices":{...}}
std::string price_message(const std::string& market, uint64_t version,
                          const std::map<std::string, std::string>& prices);

} // namespace wager
