#pragma once

// The HTTP/1.1 edge (Boost.Beast), kept out of this header so that only
// http_server.cpp pays Beast's compile cost. Handlers never run long on the
// I/O threads: a handler turns the request into a message and answers later,
// from any thread, through its responder; the answer is posted back to the
// connection's strand.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace wager {

struct http_request {
  std::string method;   // "GET", "POST", ...
  std::string target;   // path and query as sent
  std::string path;     // target up to '?'
  std::string query;    // after '?', undecoded
  std::string body;
  std::string authorization;
  std::string content_type;
  std::string remote_address;
};

struct http_response {
  int status = 200;
  std::string content_type = "application/json";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
  // Runs on an I/O thread once the whole response is written to the socket
  // (or the write failed), before http_server::stop() can close it: for an
  // answer that must be out before what it announces starts (a drain).
  // Must not block.
  std::function<void()> on_sent;
};

class stream_outbox; // gateway/stream_outbox.hpp

// What a WebSocket connection tells its owner. Both run on the connection's
// strand and must not block: turn them into messages.
struct websocket_callbacks {
  std::function<void(std::string text)> on_text;
  std::function<void()> on_closed; // exactly once
};

// Takes over an upgraded connection: the request that asked for it, and the
// outbox whose messages the server writes to the socket.
using websocket_handler =
  std::function<websocket_callbacks(const http_request&, std::shared_ptr<stream_outbox>)>;

// Answers one request. Callable once, from any thread.
using http_responder = std::function<void(http_response)>;

using http_handler = std::function<void(http_request, http_responder)>;

struct http_server_options {
  std::string host = "127.0.0.1";
  uint16_t port = 8080; // 0: any free port; port() tells which

  // I/O threads. One keeps up with the actor side on two cores; more only
  // pays off with TLS.
  uint32_t threads = 1;

  // Bodies over this get 413 too_large (shared/API.md).
  uint32_t body_limit_bytes = 64 * 1024;

  // A request line plus headers over this is refused (431).
  uint32_t header_limit_bytes = 16 * 1024;

  // A client must send a whole request within this, so slow or stalled
  // clients cannot pin a connection.
  std::chrono::milliseconds read_timeout{10'000};

  // A keep-alive connection with no request for this long is closed.
  std::chrono::milliseconds idle_timeout{60'000};

  // stop() waits this long at most for answers already owed (a handler
  // still working, a response being written) before it closes connections.
  // 0: close at once. Ten seconds covers a journal commit under load
  // without letting a stuck handler hold a drain for ever.
  std::chrono::milliseconds stop_grace{10'000};

  // PEM files. With both set the port speaks only TLS (1.2 or 1.3, AEAD
  // ciphers, no compression or renegotiation): HTTPS and WSS. A plain
  // request fails the handshake and is closed without an answer.
  std::string tls_cert_file;
  std::string tls_key_file;

  // Upgrade requests for websocket_path go to websocket (when set); a plain
  // GET there is 426. Without a handler the path is an ordinary route.
  std::string websocket_path = "/v1/stream";
  websocket_handler websocket;
  // A bigger client frame closes the connection (1009).
  uint32_t websocket_message_max_bytes = 16 * 1024;
  // Bounds of each connection's send queue (see stream_outbox.hpp).
  size_t websocket_reliable_max = 4096;
  // The kernel's send buffer per WebSocket (0: the kernel's default, which
  // on loopback grows to megabytes). Smaller makes a slow reader's backlog
  // land in the conflating outbox rather than in kernel memory.
  int websocket_send_buffer_bytes = 0;
};

class http_server {
public:
  http_server(http_server_options options, http_handler handler);
  ~http_server(); // stops
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds and starts serving. Returns an error line, or "" on success.
  std::string start();

  // The bound port (after start).
  uint16_t port() const;

  // Stops accepting new connections, lets every request already read get
  // its answer written (at most stop_grace; requests read meanwhile are
  // still handled, and each answer then closes its connection), then closes
  // every connection and joins the I/O threads. Never from a handler or an
  // I/O thread.
  void stop();

private:
  struct impl;
  std::unique_ptr<impl> impl_;
};

// {"error":{"code":...,"message":...,"field":...}} with the status the API
// gives the code.
http_response error_response(int status, std::string_view code, std::string_view message,
                             std::string_view field = {});

} // namespace wager
