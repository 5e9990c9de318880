#include "wager/gateway/http_server.hpp"

#include "wager/gateway/http_session.hpp"
#include "wager/gateway/tls_context.hpp"
#include "wager/runtime/log.hpp"

#include <boost/asio.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/json.hpp>

#include <future>
#include <mutex>
#include <optional>
#include <thread>

namespace wager {

namespace {
namespace beast = boost::beast;
namespace net = boost::asio;
using tcp = net::ip::tcp;
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
    if (tls)
      detail::start_tls_session(std::move(socket), *tls, options, handler, gate);
    else
      detail::start_tcp_session(std::move(socket), options, handler, gate);
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
