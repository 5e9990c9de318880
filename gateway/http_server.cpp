#include "wager/gateway/http_server.hpp"

#include "wager/gateway/stream_socket.hpp"
#include "wager/gateway/tls_context.hpp"
#include "wager/runtime/log.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <future>
#include <mutex>
#include <optional>
#include <thread>

namespace wager {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

// Every answer carries these; a handler's own headers replace them (a page
// that must be framed or cached says so itself). The Server header names the
// product, never its version.
http::response<http::string_body> to_beast(http_response&& r, unsigned version,
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

template <class Stream>
class session : public std::enable_shared_from_this<session<Stream>> {
public:
  session(Stream&& stream, const http_server_options& options, const http_handler& handler,
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
      auto ws = std::make_shared<detail::stream_socket<Stream>>(std::move(stream_), options_,
                                                                std::move(req), gate_);
      return ws->accept(parser_->release());
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
        auto self = std::static_pointer_cast<session>(std::move(connection));
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

} // namespace

struct http_server::impl {
  http_server_options options;
  http_handler handler;
  std::optional<net::io_context> ioc{std::in_place};
  std::optional<tcp::acceptor> acceptor{std::in_place, net::make_strand(*ioc)};
  // Keeps the I/O threads running when nothing is pending: once stop()
  // closed the acceptor, a connection waiting for its handler's answer has
  // no operation in flight, and the answer must still find a thread.
  std::optional<net::executor_work_guard<net::io_context::executor_type>> busy;
  std::shared_ptr<detail::io_gate> gate = std::make_shared<detail::io_gate>();
  std::shared_ptr<net::ssl::context> tls;
  std::vector<std::thread> threads;
  uint16_t port = 0;

  void accept() {
    acceptor->async_accept(net::make_strand(*ioc), [this](beast::error_code ec,
                                                          tcp::socket socket) {
      if (ec == net::error::operation_aborted || !acceptor->is_open())
        return;
      if (!ec)
        start_session(std::move(socket));
      accept();
    });
  }

  void start_session(tcp::socket&& socket) {
    if (tls) {
      using ssl_stream = beast::ssl_stream<beast::tcp_stream>;
      std::make_shared<session<ssl_stream>>(ssl_stream{std::move(socket), *tls}, options,
                                            handler, gate)
        ->start();
    } else {
      std::make_shared<session<beast::tcp_stream>>(beast::tcp_stream{std::move(socket)},
                                                   options, handler, gate)
        ->start();
    }
  }
};

http_server::http_server(http_server_options options, http_handler handler)
  : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  impl_->handler = std::move(handler);
}

http_server::~http_server() {
  stop();
}

std::string http_server::start() {
  auto& d = *impl_;
  if (!d.options.tls_cert_file.empty() || !d.options.tls_key_file.empty()) {
    if (d.options.tls_cert_file.empty() || d.options.tls_key_file.empty())
      return "TLS needs both a certificate and a key file";
    std::string error;
    d.tls = make_server_tls_context(d.options.tls_cert_file, d.options.tls_key_file, error);
    if (!d.tls)
      return error;
  }
  beast::error_code ec;
  auto address = net::ip::make_address(d.options.host, ec);
  if (ec)
    return "invalid HTTP host '" + d.options.host + "'";
  tcp::endpoint ep{address, d.options.port};
  d.acceptor->open(ep.protocol(), ec);
  if (!ec)
    d.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    d.acceptor->bind(ep, ec);
  if (!ec)
    d.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return "cannot listen on " + d.options.host + ":" + std::to_string(d.options.port)
           + ": " + ec.message();
  d.port = d.acceptor->local_endpoint().port();
  {
    std::lock_guard lock{d.gate->mutex};
    d.gate->ioc = &*d.ioc;
  }
  d.busy.emplace(d.ioc->get_executor());
  d.accept();
  for (uint32_t i = 0; i < std::max<uint32_t>(1, d.options.threads); ++i)
    d.threads.emplace_back([ioc = &*d.ioc] { ioc->run(); });
  return {};
}

uint16_t http_server::port() const {
  return impl_->port;
}

void http_server::stop() {
  auto& d = *impl_;
  if (d.threads.empty())
    return;
  // No new connections; answers already owed are written (within the grace)
  // before any connection closes, so a request that got through is answered.
  // Every answer from here on says Connection: close, also one written
  // before the acceptor has closed.
  d.gate->begin_stopping();
  std::promise<void> closed;
  net::post(d.acceptor->get_executor(), [&d, &closed] {
    beast::error_code ec;
    d.acceptor->close(ec);
    closed.set_value();
  });
  closed.get_future().wait();
  if (!d.gate->finish_answers(d.options.stop_grace))
    log().warn("http server stopping with answers still unwritten after {} ms",
               d.options.stop_grace.count());
  d.busy.reset();
  d.ioc->stop();
  for (auto& t : d.threads)
    t.join();
  d.threads.clear();
  // Everything that holds a socket or a strand dies before the context:
  // first the connections waiting for an answer (late answers now find the
  // gate closed), then the acceptor, then, with the context, every pending
  // handler and so every other connection (WebSocket owners hear on_closed).
  d.gate->close().clear();
  d.acceptor.reset();
  d.ioc.reset();
}

http_response error_response(int status, std::string_view code, std::string_view message,
                             std::string_view field) {
  boost::json::object error{{"code", code}, {"message", message}};
  if (!field.empty())
    error["field"] = field;
  http_response res;
  res.status = status;
  res.body = boost::json::serialize(boost::json::object{{"error", std::move(error)}});
  return res;
}

} // namespace wager
