#pragma once

// One HTTP connection of http_server (the http_session template), for the
// gateway's .cpp files only: it pulls in Beast. The template is instantiated
// once per stream type, each in its own translation unit
// (http_session_tcp.cpp, http_session_tls.cpp), and the WebSocket
// stream_socket likewise (stream_socket_tcp.cpp, stream_socket_tls.cpp):
// together they are the costliest code in the build to compile, and split
// this way two cores compile them side by side.

#include "wager/gateway/http_server.hpp"
#include "wager/gateway/stream_socket.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <memory>
#include <optional>
#include <string>
#include <type_traits>

namespace wager::detail {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Every answer carries these; a handler's own headers replace them (a page
// that must be framed or cached says so itself). The Server header names the
// product, never its version.
inline http::response<http::string_body> to_beast(http_response&& r, unsigned version,
                                           bool keep_alive, bool tls) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "wager");
  res.set(http::field::content_type, r.content_type);
  res.set("X-Content-Type-Options", "nosniff");
  res.set(http::field::cache_control, "no-store");
  res.set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'");
  res.set("X-Frame-Options", "DENY");
  res.set("Referrer-Policy", "no-referrer");
  // Browsers honour HSTS only over HTTPS; a year, renewed by every answer.
  if (tls)
    res.set(http::field::strict_transport_security, "max-age=31536000");
  for (auto& [name, value] : r.headers)
    res.set(name, value);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

// Hands an upgraded connection to a stream_socket, which answers the
// upgrade. Each is defined in its own .cpp (stream_socket_tcp.cpp,
// stream_socket_tls.cpp), apart from the session code.
void accept_websocket(beast::tcp_stream&& stream, const http_server_options& options,
                      http_request request, std::shared_ptr<io_gate> gate,
                      http::request<http::string_body>&& upgrade);
void accept_websocket(beast::ssl_stream<beast::tcp_stream>&& stream,
                      const http_server_options& options, http_request request,
                      std::shared_ptr<io_gate> gate, http::request<http::string_body>&& upgrade);

template <class Stream>
class http_session : public std::enable_shared_from_this<http_session<Stream>> {
public:
  http_session(Stream&& stream, const http_server_options& options, const http_handler& handler,
          std::shared_ptr<detail::io_gate> gate)
    : stream_(std::move(stream)), options_(options), handler_(handler), gate_(std::move(gate)) {
    beast::error_code ec;
    auto ep = beast::get_lowest_layer(stream_).socket().remote_endpoint(ec);
    if (!ec)
      remote_ = ep.address().to_string();
  }

  void start() {
    if constexpr (is_tls) {
      // A client gets read_timeout for its handshake, like for a request.
      lowest().expires_after(options_.read_timeout);
      stream_.async_handshake(net::ssl::stream_base::server,
                              [self = this->shared_from_this()](beast::error_code ec) {
                                if (ec)
                                  return self->close(); // no answer in the clear
                                self->wait_for_request();
                              });
    } else {
      wait_for_request();
    }
  }

private:
  static constexpr bool is_tls = !std::is_same_v<Stream, beast::tcp_stream>;
  // What one read of a TLS stream takes at most while waiting for a request.
  static constexpr size_t read_chunk_bytes = 4096;

  beast::tcp_stream& lowest() { return beast::get_lowest_layer(stream_); }

  bool bytes_buffered() {
    if (buffer_.size() > 0)
      return true;
    if constexpr (is_tls)
      return SSL_pending(stream_.native_handle()) > 0;
    return false;
  }

  // A keep-alive connection may sit idle for idle_timeout; once a request
  // starts arriving, all of it must arrive within read_timeout.
  void wait_for_request() {
    if (bytes_buffered())
      return read_request();
    lowest().expires_after(options_.idle_timeout);
    if constexpr (is_tls) {
      // The TLS engine may already hold the request's bytes, read from the
      // socket together with the handshake's last flight (a client that
      // sends its request at once): waiting on the socket would then wait
      // for bytes that never come. Read through the stream instead.
      stream_.async_read_some(buffer_.prepare(read_chunk_bytes),
                              [self = this->shared_from_this()](beast::error_code ec, size_t n) {
                                if (ec)
                                  return self->close();
                                self->buffer_.commit(n);
                                self->read_request();
                              });
    } else {
      lowest().socket().async_wait(tcp::socket::wait_read,
                                   [self = this->shared_from_this()](beast::error_code ec) {
                                     if (ec)
                                       return self->close();
                                     self->read_request();
                                   });
    }
  }

  void read_request() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit_bytes);
    parser_->header_limit(options_.header_limit_bytes);
    lowest().expires_after(options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = this->shared_from_this()](beast::error_code ec, size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout
        || ec == net::error::operation_aborted || ec == net::error::connection_reset
        || ec == net::error::eof || ec == net::ssl::error::stream_truncated)
      return close();
    if (ec == http::error::body_limit)
      return reply_and_close(error_response(413, "too_large",
                                            "the body is over the size limit"));
    if (ec == http::error::header_limit)
      return reply_and_close(error_response(431, "too_large",
                                            "the request headers are over the size limit"));
    if (ec)
      // shared/API.md's 400 codes name what is wrong with a request's
      // parts; a request line or header HTTP cannot parse is such a part.
      return reply_and_close(error_response(400, "invalid_field",
                                            "malformed HTTP request: " + ec.message()));
    auto& msg = parser_->get();
    http_request req;
    req.method = std::string{msg.method_string()};
    req.target = std::string{msg.target()};
    auto q = req.target.find('?');
    req.path = req.target.substr(0, q);
    if (q != std::string::npos)
      req.query = req.target.substr(q + 1);
    req.body = std::move(msg.body());
    req.authorization = std::string{msg[http::field::authorization]};
    req.content_type = std::string{msg[http::field::content_type]};
    req.remote_address = remote_;
    version_ = msg.version();
    keep_alive_ = msg.keep_alive();
    if (options_.websocket && req.path == options_.websocket_path) {
      if (!beast::websocket::is_upgrade(msg)) {
        gate_->response_opened();
        return write(error_response(426, "upgrade_required",
                                    "this path speaks WebSocket only"),
                     keep_alive_);
      }
      // The connection now belongs to the stream; this session ends.
      return accept_websocket(std::move(stream_), options_, std::move(req), gate_,
                              parser_->release());
    }
    // No deadline while the platform works on the answer.
    lowest().expires_never();
    handler_(std::move(req), responder());
  }

  // The connection waits in the gate, not in the responder: an actor may
  // hold a responder past stop(), and then must not hold the socket and the
  // strand past their io_context. Dropping the responder unanswered ends
  // the connection.
  http_responder responder() {
    struct ticket {
      std::shared_ptr<detail::io_gate> gate;
      uint64_t id = 0;
      ~ticket() {
        if (gate)
          gate->abandon(id);
      }
    };
    auto t = std::make_shared<ticket>();
    t->id = gate_->park(this->shared_from_this());
    t->gate = gate_;
    return [t](http_response res) {
      t->gate->unpark(t->id, [&res](std::shared_ptr<void> connection) {
        auto self = std::static_pointer_cast<http_session>(std::move(connection));
        auto executor = self->stream_.get_executor();
        net::post(executor, [self = std::move(self), res = std::move(res)]() mutable {
          self->write(std::move(res), self->keep_alive_);
        });
      });
    };
  }

  void reply_and_close(http_response res) {
    version_ = 11;
    gate_->response_opened();
    write(std::move(res), false);
  }

  // REQUIRES: the answer was counted open (park or response_opened); the
  // write's end closes it. A server that is stopping answers and closes.
  void write(http_response&& res, bool keep_alive) {
    keep_alive = keep_alive && !gate_->is_stopping();
    auto on_sent = std::move(res.on_sent);
    auto out = std::make_shared<http::response<http::string_body>>(
      to_beast(std::move(res), version_, keep_alive, is_tls));
    lowest().expires_after(options_.read_timeout);
    http::async_write(stream_, *out,
                      [self = this->shared_from_this(), out, keep_alive,
                       on_sent = std::move(on_sent)](beast::error_code ec, size_t) {
                        if (ec || !keep_alive)
                          self->close();
                        else
                          self->wait_for_request();
                        // After the bytes are with the kernel, before stop()
                        // may go on: whatever on_sent starts finds the answer out.
                        if (on_sent)
                          on_sent();
                        self->gate_->response_closed();
                      });
  }

  void close() {
    beast::error_code ec;
    lowest().socket().shutdown(tcp::socket::shutdown_send, ec);
    lowest().socket().close(ec);
  }

  Stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const http_server_options& options_;
  const http_handler& handler_;
  std::shared_ptr<detail::io_gate> gate_;
  std::string remote_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
};

// Start serving an accepted connection; each is defined in its own .cpp.
void start_tcp_session(tcp::socket&& socket, const http_server_options& options,
                       const http_handler& handler, std::shared_ptr<io_gate> gate);
void start_tls_session(tcp::socket&& socket, net::ssl::context& tls,
                       const http_server_options& options, const http_handler& handler,
                       std::shared_ptr<io_gate> gate);

} // namespace wager::detail
