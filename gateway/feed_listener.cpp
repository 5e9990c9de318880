#include "wager/gateway/feed_listener.hpp"

#include "wager/gateway/feed_line_framer.hpp"

#include <boost/asio.hpp>

#include <array>
#include <thread>

namespace wager {

namespace {

namespace net = boost::asio;
using tcp = net::ip::tcp;

class feed_connection : public std::enable_shared_from_this<feed_connection> {
public:
  feed_connection(tcp::socket socket, uint64_t id, const feed_listener_options& options,
                  const feed_line_sink& sink)
    : socket_(std::move(socket)), id_(id), sink_(sink), framer_(options.line_max_bytes) {}

  void read() {
    socket_.async_read_some(net::buffer(chunk_),
                            [self = shared_from_this()](boost::system::error_code ec,
                                                        size_t n) {
                              if (ec)
                                return;
                              self->consume({self->chunk_.data(), n});
                              self->read();
                            });
  }

private:
  void consume(std::string_view data) {
    framer_.consume(data, [this](std::string_view line, bool oversized) {
      sink_(id_, line, oversized);
    });
  }

  tcp::socket socket_;
  uint64_t id_;
  const feed_line_sink& sink_;
  std::array<char, 16 * 1024> chunk_;
  feed_line_framer framer_;
};

} // namespace

struct feed_listener::impl {
  feed_listener_options options;
  feed_line_sink sink;
  net::io_context ioc;
  tcp::acceptor acceptor{ioc};
  std::thread thread;
  uint16_t port = 0;
  uint64_t next_connection = 1;

  void accept() {
    acceptor.async_accept([this](boost::system::error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted)
        return;
      if (!ec)
        std::make_shared<feed_connection>(std::move(socket), next_connection++, options,
                                          sink)
          ->read();
      accept();
    });
  }
};

feed_listener::feed_listener(feed_listener_options options, feed_line_sink sink)
  : impl_(std::make_unique<impl>()) {
  impl_->options = std::move(options);
  impl_->sink = std::move(sink);
}

feed_listener::~feed_listener() {
  stop();
}

std::string feed_listener::start() {
  auto& d = *impl_;
  boost::system::error_code ec;
  auto address = net::ip::make_address(d.options.host, ec);
  if (ec)
    return "invalid feed host '" + d.options.host + "'";
  tcp::endpoint ep{address, d.options.port};
  d.acceptor.open(ep.protocol(), ec);
  if (!ec)
    d.acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec)
    d.acceptor.bind(ep, ec);
  if (!ec)
    d.acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    return "cannot listen on " + d.options.host + ":" + std::to_string(d.options.port)
           + " (feed): " + ec.message();
  d.port = d.acceptor.local_endpoint().port();
  d.accept();
  d.thread = std::thread{[&d] { d.ioc.run(); }};
  return {};
}

uint16_t feed_listener::port() const {
  return impl_->port;
}

void feed_listener::stop() {
  auto& d = *impl_;
  if (!d.thread.joinable())
    return;
  d.ioc.stop();
  d.thread.join();
  boost::system::error_code ec;
  d.acceptor.close(ec);
}

} // namespace wager
