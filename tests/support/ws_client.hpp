#pragma once

// A real WebSocket client over a real socket (plain or TLS), for tests:
// blocking calls, each with a deadline.

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

namespace wager::test {

struct ws_client_options {
  bool tls = false;
  // With tls: the PEM certificate the server must present (verified).
  std::string ca_file;
  std::chrono::milliseconds timeout{10'000};
};

class ws_client {
public:
  ws_client(std::string host, uint16_t port, ws_client_options options = {});
  ~ws_client();

  // Connects and upgrades at `target`; returns an error line or "".
  std::string connect(const std::string& target = "/v1/stream");

  bool send(const std::string& text);

  // The next text frame, or nullopt on close, error or deadline.
  std::optional<std::string> read(std::chrono::milliseconds deadline = std::chrono::seconds{10});

  // After read() returned nullopt: whether the server closed the socket, and
  // the reason of its close frame.
  bool closed() const;
  std::string close_reason() const;

  // The kernel's receive buffer for this socket, in bytes (set before
  // connect to make a slow reader's socket fill quickly).
  void set_receive_buffer(int bytes);

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

} // namespace wager::test
