#include "http_client.hpp"

#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <sys/socket.h>
#include <sys/time.h>

namespace wager::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

// How long one setup or feed request may wait for its answer before the
// connection counts as failed.
inline constexpr int blocking_request_timeout_s = 60;

std::optional<endpoint_address> parse_http_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind(scheme, 0) != 0)
    return std::nullopt;
  auto rest = url.substr(scheme.size());
  if (auto slash = rest.find('/'); slash != std::string::npos)
    rest.resize(slash);
  auto colon = rest.rfind(':');
  if (colon == std::string::npos)
    return endpoint_address{rest, 80};
  try {
    auto port = std::stoi(rest.substr(colon + 1));
    if (port <= 0 || port > 65535)
      return std::nullopt;
    return endpoint_address{rest.substr(0, colon), static_cast<uint16_t>(port)};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

source_addresses::source_addresses(uint64_t seed)
  : next_(static_cast<uint32_t>(seed % 200) * 65536) {}

asio::ip::address_v4 source_addresses::next() {
  // 127.(10..249).(0..255).(1..250): about 12 million addresses.
  auto i = next_++;
  auto a = 10 + (i / (256 * 250)) % 240;
  auto b = (i / 250) % 256;
  auto c = 1 + i % 250;
  return asio::ip::address_v4{(127u << 24) | (a << 16) | (b << 8) | c};
}

blocking_client::blocking_client(endpoint_address to, asio::ip::address_v4 from)
  : to_(std::move(to)), from_(from), stream_(ioc_) {}

bool blocking_client::connect() {
  beast::error_code ec;
  auto& s = stream_.socket();
  s.close(ec);
  s.open(tcp::v4(), ec);
  if (!ec)
    s.bind({from_, 0}, ec);
  if (!ec)
    s.connect({asio::ip::make_address(to_.host, ec), to_.port}, ec);
  if (!ec)
    s.set_option(tcp::no_delay{true}, ec);
  if (!ec) {
    timeval tv{blocking_request_timeout_s, 0};
    ::setsockopt(s.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  buffer_.clear();
  connected_ = !ec;
  return connected_;
}

http_reply blocking_client::request(const std::string& method, const std::string& target,
                                    const std::string& body, const std::string& bearer) {
  http::request<http::string_body> req{http::string_to_verb(method), target, 11};
  req.set(http::field::host, to_.host);
  req.keep_alive(true);
  if (!bearer.empty())
    req.set(http::field::authorization, "Bearer " + bearer);
  if (!body.empty()) {
    req.set(http::field::content_type, "application/json");
    req.body() = body;
  }
  req.prepare_payload();
  // A keep-alive connection the server closed fails on first use: retry once
  // on a fresh one.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (!connected_ && !connect())
      continue;
    beast::error_code ec;
    http::write(stream_.socket(), req, ec);
    http::response<http::string_body> res;
    if (!ec)
      http::read(stream_.socket(), buffer_, res, ec);
    if (ec) {
      connected_ = false;
      continue;
    }
    if (!res.keep_alive())
      connected_ = false;
    return {static_cast<int>(res.result_int()), std::move(res.body())};
  }
  return {};
}

std::string json_string(const std::string& text) {
  return boost::json::serialize(boost::json::value{text});
}

} // namespace wager::bench
