#include "support/ws_client.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/ssl.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <variant>

namespace wager::test {

namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace net = boost::asio;
namespace ssl = net::ssl;
using tcp = net::ip::tcp;

using plain_ws = websocket::stream<beast::tcp_stream>;
using tls_ws = websocket::stream<beast::ssl_stream<beast::tcp_stream>>;

struct ws_client::impl {
  std::string host;
  uint16_t port;
  ws_client_options options;
  net::io_context ioc;
  ssl::context ctx{ssl::context::tls_client};
  std::unique_ptr<plain_ws> plain;
  std::unique_ptr<tls_ws> tls;
  beast::flat_buffer buffer;
  bool closed = false;
  std::string reason;
  int rcvbuf = 0;

  // Runs one async operation to completion or the deadline.
  template <class Start>
  beast::error_code run(Start&& start, std::chrono::milliseconds deadline) {
    beast::error_code result = net::error::would_block;
    bool done = false;
    start([&](beast::error_code ec, auto&&...) {
      result = ec;
      done = true;
    });
    ioc.restart();
    ioc.run_for(deadline);
    if (!done) {
      with([](auto& ws) { beast::get_lowest_layer(ws).cancel(); });
      ioc.restart();
      ioc.run();
      return beast::error::timeout;
    }
    return result;
  }

  template <class F>
  auto with(F&& f) {
    if (plain)
      return f(*plain);
    return f(*tls);
  }
};

ws_client::ws_client(std::string host, uint16_t port, ws_client_options options)
  : impl_(std::make_unique<impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->options = std::move(options);
}

ws_client::~ws_client() = default;

void ws_client::set_receive_buffer(int bytes) {
  impl_->rcvbuf = bytes;
}

std::string ws_client::connect(const std::string& target) {
  auto& d = *impl_;
  beast::error_code ec;
  tcp::socket socket{d.ioc};
  socket.open(tcp::v4(), ec);
  if (d.rcvbuf > 0)
    socket.set_option(net::socket_base::receive_buffer_size(d.rcvbuf), ec);
  socket.connect({net::ip::make_address(d.host), d.port}, ec);
  if (ec)
    return "connect: " + ec.message();
  if (d.options.tls) {
    d.ctx.set_verify_mode(ssl::verify_peer);
    d.ctx.load_verify_file(d.options.ca_file, ec);
    if (ec)
      return "ca file: " + ec.message();
    d.tls = std::make_unique<tls_ws>(beast::tcp_stream{std::move(socket)}, d.ctx);
    SSL_set_tlsext_host_name(d.tls->next_layer().native_handle(), "localhost");
    d.tls->next_layer().set_verify_callback(ssl::host_name_verification("localhost"));
    ec = d.run([&](auto h) { d.tls->next_layer().async_handshake(ssl::stream_base::client, h); },
               d.options.timeout);
    if (ec)
      return "tls handshake: " + ec.message();
  } else {
    d.plain = std::make_unique<plain_ws>(beast::tcp_stream{std::move(socket)});
  }
  ec = d.with([&](auto& ws) {
    return d.run([&](auto h) { ws.async_handshake(d.host, target, h); }, d.options.timeout);
  });
  if (ec)
    return "websocket handshake: " + ec.message();
  return {};
}

bool ws_client::send(const std::string& text) {
  auto& d = *impl_;
  auto ec = d.with([&](auto& ws) {
    ws.text(true);
    return d.run([&](auto h) { ws.async_write(net::buffer(text), h); }, d.options.timeout);
  });
  return !ec;
}

std::optional<std::string> ws_client::read(std::chrono::milliseconds deadline) {
  auto& d = *impl_;
  if (d.closed)
    return std::nullopt;
  auto ec = d.with(
    [&](auto& ws) { return d.run([&](auto h) { ws.async_read(d.buffer, h); }, deadline); });
  if (ec) {
    if (ec != beast::error::timeout) {
      d.closed = true;
      d.reason = d.with([](auto& ws) { return std::string{ws.reason().reason.c_str()}; });
    }
    return std::nullopt;
  }
  auto text = beast::buffers_to_string(d.buffer.data());
  d.buffer.consume(d.buffer.size());
  return text;
}

bool ws_client::closed() const {
  return impl_->closed;
}

std::string ws_client::close_reason() const {
  return impl_->reason;
}

} // namespace wager::test
