#include "wagerctl_http.hpp"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <charconv>

namespace wager::ctl {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using asio::use_awaitable;

// An admin answer is small (health, drain); anything larger is not a node.
constexpr uint64_t answer_bytes_max = 1 << 20;

std::optional<node_url> parse_node_url(std::string_view text, std::string& error) {
  node_url url;
  if (text.starts_with("http://")) {
    text.remove_prefix(7);
  } else if (text.starts_with("https://")) {
    url.tls = true;
    text.remove_prefix(8);
  } else {
    error = "the URL must start with http:// or https://";
    return std::nullopt;
  }
  auto slash = text.find('/');
  auto authority = text.substr(0, slash);
  if (slash != std::string_view::npos) {
    url.base_path = std::string{text.substr(slash)};
    while (!url.base_path.empty() && url.base_path.back() == '/')
      url.base_path.pop_back();
  }
  auto colon = authority.rfind(':');
  if (colon == std::string_view::npos || authority.find(']', colon) != std::string_view::npos) {
    url.host = std::string{authority};
    url.port = url.tls ? "443" : "80";
  } else {
    url.host = std::string{authority.substr(0, colon)};
    url.port = std::string{authority.substr(colon + 1)};
    unsigned port = 0;
    auto [end, ec] = std::from_chars(url.port.data(), url.port.data() + url.port.size(), port);
    if (ec != std::errc{} || end != url.port.data() + url.port.size() || port == 0
        || port > 65535) {
      error = "bad port '" + url.port + "' in the URL";
      return std::nullopt;
    }
  }
  if (url.host.size() > 2 && url.host.front() == '[' && url.host.back() == ']')
    url.host = url.host.substr(1, url.host.size() - 2);
  if (url.host.empty()) {
    error = "the URL has no host";
    return std::nullopt;
  }
  return url;
}

namespace {

http::request<http::string_body> make_request(const node_url& url, const http_call& call) {
  auto method = http::string_to_verb(call.method);
  http::request<http::string_body> req{method, url.base_path + call.path, 11};
  req.set(http::field::host, url.host);
  req.set(http::field::user_agent, "wagerctl");
  req.set(http::field::accept, "application/json");
  if (!call.bearer.empty())
    req.set(http::field::authorization, "Bearer " + call.bearer);
  if (!call.body.empty())
    req.set(http::field::content_type, "application/json");
  req.body() = call.body;
  req.prepare_payload();
  return req;
}

template <class Stream>
asio::awaitable<void> exchange(Stream& stream, beast::tcp_stream& tcp, const node_url& url,
                               const http_call& call, http_answer& answer) {
  tcp.expires_after(call.timeout);
  auto req = make_request(url, call);
  co_await http::async_write(stream, req, use_awaitable);
  beast::flat_buffer buffer;
  http::response_parser<http::string_body> parser;
  parser.body_limit(answer_bytes_max);
  co_await http::async_read(stream, buffer, parser, use_awaitable);
  answer.status = static_cast<int>(parser.get().result_int());
  answer.body = std::move(parser.get().body());
}

asio::awaitable<void> run(const node_url& url, const http_call& call, asio::ssl::context* tls,
                          http_answer& answer) {
  auto executor = co_await asio::this_coro::executor;
  asio::ip::tcp::resolver resolver{executor};
  auto endpoints = co_await resolver.async_resolve(url.host, url.port, use_awaitable);
  if (tls == nullptr) {
    beast::tcp_stream stream{executor};
    stream.expires_after(call.timeout);
    co_await stream.async_connect(endpoints, use_awaitable);
    co_await exchange(stream, stream, url, call, answer);
    beast::error_code ignored;
    stream.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream{executor, *tls};
  // SNI, and the name the certificate must carry.
  if (!SSL_set_tlsext_host_name(stream.native_handle(), url.host.c_str()))
    throw beast::system_error{beast::error_code{static_cast<int>(::ERR_get_error()),
                                                asio::error::get_ssl_category()}};
  stream.set_verify_callback(asio::ssl::host_name_verification{url.host});
  auto& tcp = beast::get_lowest_layer(stream);
  tcp.expires_after(call.timeout);
  co_await tcp.async_connect(endpoints, use_awaitable);
  tcp.expires_after(call.timeout);
  co_await stream.async_handshake(asio::ssl::stream_base::client, use_awaitable);
  co_await exchange(stream, tcp, url, call, answer);
  // The answer is complete; a peer that closes without close_notify is fine.
}

} // namespace

http_answer send(const node_url& url, const http_call& call) {
  http_answer answer;
  try {
    asio::io_context io;
    std::optional<asio::ssl::context> tls;
    if (url.tls) {
      tls.emplace(asio::ssl::context::tls_client);
      tls->set_default_verify_paths();
      if (!call.ca_file.empty())
        tls->load_verify_file(call.ca_file);
      tls->set_verify_mode(asio::ssl::verify_peer);
    }
    std::exception_ptr failure;
    asio::co_spawn(io, run(url, call, tls ? &*tls : nullptr, answer),
                   [&](std::exception_ptr e) { failure = e; });
    io.run();
    if (failure)
      std::rethrow_exception(failure);
  } catch (const beast::system_error& e) {
    answer.status = 0;
    answer.error = e.code() == beast::error::timeout
                     ? "no answer within " + std::to_string(call.timeout.count()) + " ms"
                     : e.code().message();
  } catch (const std::exception& e) {
    answer.status = 0;
    answer.error = e.what();
  }
  return answer;
}

} // namespace wager::ctl
