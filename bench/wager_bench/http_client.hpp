#pragma once

// HTTP/1.1 keep-alive clients for --mode http: a blocking one for setup and
// the feed, and the source addresses connections bind to.
//
// Every connection binds its own loopback source address (127.x.y.z; the
// whole 127/8 is loopback on Linux), because the gateway rate-limits per
// client address: one address for all connections would measure the
// limiter, not the node. Each connection then stands for one client.

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>

#include <atomic>
#include <optional>
#include <string>

namespace wager::bench {

struct endpoint_address {
  std::string host;
  uint16_t port = 0;
};

// "http://HOST:PORT[/]" -> host and port; nullopt for anything else.
std::optional<endpoint_address> parse_http_url(const std::string& url);

// Hands out distinct loopback source addresses, starting at a random point
// so that runs against one node do not reuse each other's rate buckets.
class source_addresses {
public:
  explicit source_addresses(uint64_t seed);
  boost::asio::ip::address_v4 next();

private:
  std::atomic<uint32_t> next_;
};

// One request and its answer on an open keep-alive stream, asynchronously:
// writes `req`, reads the answer into `res`, then calls `done(error)` (the
// first step's error, or none). The caller keeps stream, buffer, request
// and response alive until then (a shared_from_this in `done`).
template <class Request, class Response, class Done>
void exchange(boost::beast::tcp_stream& stream, boost::beast::flat_buffer& buffer, Request& req,
              Response& res, Done done) {
  boost::beast::http::async_write(
    stream, req,
    [&stream, &buffer, &res, done = std::move(done)](boost::beast::error_code e,
                                                     size_t) mutable {
      if (e)
        return done(e);
      res = {};
      boost::beast::http::async_read(
        stream, buffer, res,
        [done = std::move(done)](boost::beast::error_code e2, size_t) mutable { done(e2); });
    });
}

struct http_reply {
  int status = 0; // 0: the connection failed
  std::string body;
};

// One keep-alive connection from one source address; reconnects once when
// the server closed it.
class blocking_client {
public:
  blocking_client(endpoint_address to, boost::asio::ip::address_v4 from);
  http_reply request(const std::string& method, const std::string& target,
                     const std::string& body, const std::string& bearer = {});

private:
  bool connect();

  endpoint_address to_;
  boost::asio::ip::address_v4 from_;
  boost::asio::io_context ioc_;
  boost::beast::tcp_stream stream_;
  boost::beast::flat_buffer buffer_;
  bool connected_ = false;
};

// `text` as a JSON string literal, quotes included.
std::string json_string(const std::string& text);

} // namespace wager::bench
