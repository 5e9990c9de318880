#include "wager/gateway/http_server.hpp"

#include "wager/runtime/log.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <optional>
#include <thread>

namespace wager {

namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

http::response<http::string_body> to_beast(http_response&& r, unsigned version,
                                           bool keep_alive) {
  http::response<http::string_body> res{static_cast<http::status>(r.status), version};
  res.set(http::field::server, "wager");
  res.set(http::field::content_type, r.content_type);
  for (auto& [name, value] : r.headers)
    res.set(name, value);
  res.body() = std::move(r.body);
  res.keep_alive(keep_alive);
  res.prepare_payload();
  return res;
}

class session : public std::enable_shared_from_this<session> {
public:
  session(tcp::socket&& socket, const http_server_options& options,
          const http_handler& handler, std::shared_ptr<net::io_context> ioc)
    : stream_(std::move(socket)), options_(options), handler_(handler),
      ioc_(std::move(ioc)) {
    beast::error_code ec;
    auto ep = stream_.socket().remote_endpoint(ec);
    if (!ec)
      remote_ = ep.address().to_string();
  }

  void start() { wait_for_request(); }

private:
  // A keep-alive connection may sit idle for idle_timeout; once a request
  // starts arriving, all of it must arrive within read_timeout.
  void wait_for_request() {
    if (buffer_.size() > 0)
      return read_request();
    stream_.expires_after(options_.idle_timeout);
    stream_.socket().async_wait(tcp::socket::wait_read,
                                [self = shared_from_this()](beast::error_code ec) {
                                  if (ec)
                                    return self->close();
                                  self->read_request();
                                });
  }

  void read_request() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit_bytes);
    parser_->header_limit(options_.header_limit_bytes);
    stream_.expires_after(options_.read_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, size_t) {
                       self->on_read(ec);
                     });
  }

  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout
        || ec == net::error::operation_aborted || ec == net::error::connection_reset)
      return close();
    if (ec == http::error::body_limit)
      return reply_and_close(error_response(413, "too_large",
                                            "the body is over the size limit"));
    if (ec == http::error::header_limit)
      return reply_and_close(error_response(431, "too_large",
                                            "the request headers are over the size limit"));
    if (ec)
      return reply_and_close(error_response(400, "bad_request",
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
    // No deadline while the platform works on the answer.
    stream_.expires_never();
    auto executor = stream_.get_executor();
    handler_(std::move(req),
             [self = shared_from_this(), executor, ioc = ioc_](http_response res) {
               net::post(executor, [self, res = std::move(res)]() mutable {
                 self->write(std::move(res), self->keep_alive_);
               });
             });
  }

  void reply_and_close(http_response res) {
    version_ = 11;
    write(std::move(res), false);
  }

  void write(http_response&& res, bool keep_alive) {
    auto out = std::make_shared<http::response<http::string_body>>(
      to_beast(std::move(res), version_, keep_alive));
    stream_.expires_after(options_.read_timeout);
    http::async_write(stream_, *out,
                      [self = shared_from_this(), out, keep_alive](beast::error_code ec,
                                                                   size_t) {
                        if (ec || !keep_alive)
                          return self->close();
                        self->wait_for_request();
                      });
  }

  void close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  const http_server_options& options_;
  const http_handler& handler_;
  std::shared_ptr<net::io_context> ioc_;
  std::string remote_;
  unsigned version_ = 11;
  bool keep_alive_ = true;
};

} // namespace

struct http_server::impl {
  http_server_options options;
  http_handler handler;
  std::shared_ptr<net::io_context> ioc = std::make_shared<net::io_context>();
  tcp::acceptor acceptor{net::make_strand(*ioc)};
  std::vector<std::thread> threads;
  uint16_t port = 0;

  void accept() {
    acceptor.async_accept(net::make_strand(*ioc),
                          [this](beast::error_code ec, tcp::socket socket) {
                            if (ec == net::error::operation_aborted)
                              return;
                            if (!ec)
                              std::make_shared<session>(std::move(socket), options,
                                                        handler, ioc)
                                ->start();
                            accept();
                          });
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
  beast::error_code ec;
  auto address = net::ip::make_address(d.options.host, ec);
  if (ec)
    return "invalid HTTP host '" + d.options.host + "'";
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
           + ": " + ec.message();
  d.port = d.acceptor.local_endpoint().port();
  d.accept();
  for (uint32_t i = 0; i < std::max<uint32_t>(1, d.options.threads); ++i)
    d.threads.emplace_back([ioc = d.ioc] { ioc->run(); });
  return {};
}

uint16_t http_server::port() const {
  return impl_->port;
}

void http_server::stop() {
  auto& d = *impl_;
  if (d.threads.empty())
    return;
  d.ioc->stop();
  for (auto& t : d.threads)
    t.join();
  d.threads.clear();
  beast::error_code ec;
  d.acceptor.close(ec);
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
