// http_session over plain TCP, compiled apart from the TLS one (see
// http_session.hpp).

#include "wager/gateway/http_session.hpp"

namespace wager::detail {

void start_tcp_session(tcp::socket&& socket, const http_server_options& options,
                       const http_handler& handler, std::shared_ptr<io_gate> gate) {
  std::make_shared<http_session<beast::tcp_stream>>(beast::tcp_stream{std::move(socket)},
                                                    options, handler, std::move(gate))
    ->start();
}

} // namespace wager::detail
