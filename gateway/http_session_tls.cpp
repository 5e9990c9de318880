// http_session over TLS, compiled apart from the plain one (see
// http_session.hpp).

#include "wager/gateway/http_session.hpp"

#include <boost/beast/ssl.hpp>

namespace wager::detail {

void start_tls_session(tcp::socket&& socket, net::ssl::context& tls,
                       const http_server_options& options, const http_handler& handler,
                       std::shared_ptr<io_gate> gate) {
  using ssl_stream = beast::ssl_stream<beast::tcp_stream>;
  std::make_shared<http_session<ssl_stream>>(ssl_stream{std::move(socket), tls}, options,
                                             handler, std::move(gate))
    ->start();
}

} // namespace wager::detail
