#include "support/http_client.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <optional>

namespace wager::test {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;

struct http_client::impl {
  std::string host;
  uint16_t port;
  std::chrono::milliseconds timeout;
  std::string source;
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
  beast::flat_buffer buffer;

  bool connect() {
    if (stream)
      return true;
    stream.emplace(ioc);
    stream->expires_after(timeout);
    beast::error_code ec;
    if (!source.empty()) {
      // Any 127.0.0.0/8 address is this machine's: a second client address
      // without a second machine.
      stream->socket().open(tcp::v4(), ec);
      if (!ec)
        stream->socket().bind({net::ip::make_address(source), 0}, ec);
    }
    if (!ec)
      stream->socket().connect({net::ip::make_address(host), port}, ec);
    if (ec) {
      stream.reset();
      return false;
    }
    return true;
  }
};

http_client::http_client(std::string host, uint16_t port, std::chrono::milliseconds timeout)
  : impl_(std::make_unique<impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->timeout = timeout;
}

http_client& http_client::from(std::string source_address) {
  impl_->source = std::move(source_address);
  impl_->stream.reset();
  return *this;
}

http_client::~http_client() = default;
http_client::http_client(http_client&&) noexcept = default;
http_client& http_client::operator=(http_client&&) noexcept = default;

http_result http_client::request(const std::string& method, const std::string& target,
                                 const std::string& body, const std::string& bearer) {
  auto& d = *impl_;
  http_result result;
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!d.connect())
      return result;
    http::request<http::string_body> req{http::string_to_verb(method), target, 11};
    req.set(http::field::host, d.host);
    req.keep_alive(true);
    if (!bearer.empty())
      req.set(http::field::authorization, "Bearer " + bearer);
    if (!body.empty() || method == "POST" || method == "PUT") {
      req.set(http::field::content_type, "application/json");
      req.body() = body;
    }
    req.prepare_payload();
    beast::error_code ec;
    d.stream->expires_after(d.timeout);
    http::write(*d.stream, req, ec);
    http::response_parser<http::string_body> parser;
    parser.body_limit(64 * 1024 * 1024);
    if (!ec)
      http::read(*d.stream, d.buffer, parser, ec);
    if (ec) {
      // A keep-alive connection the server closed: reconnect once.
      d.stream.reset();
      d.buffer.clear();
      continue;
    }
    auto& res = parser.get();
    result.status = static_cast<int>(res.result_int());
    result.body = res.body();
    for (auto& field : res) {
      std::string name{field.name_string()};
      for (auto& c : name)
        c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      result.headers[name] = std::string{field.value()};
    }
    if (!res.keep_alive())
      d.stream.reset();
    return result;
  }
  return result;
}

std::pair<std::string, uint16_t> split_address(const std::string& address) {
  auto colon = address.rfind(':');
  return {address.substr(0, colon),
          static_cast<uint16_t>(std::stoi(address.substr(colon + 1)))};
}

} // namespace wager::test
