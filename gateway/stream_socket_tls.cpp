// The WebSocket stream_socket over TLS, compiled apart from the plain one
// (see http_session.hpp).

#include "wager/gateway/http_session.hpp"
#include "wager/gateway/stream_socket.hpp"

#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

namespace wager::detail {

void accept_websocket(beast::ssl_stream<beast::tcp_stream>&& stream,
                      const http_server_options& options, http_request request,
                      std::shared_ptr<io_gate> gate,
                      http::request<http::string_body>&& upgrade) {
  using stream_type = beast::ssl_stream<beast::tcp_stream>;
  std::make_shared<stream_socket<stream_type>>(std::move(stream), options, std::move(request),
                                               std::move(gate))
    ->accept(std::move(upgrade));
}

} // namespace wager::detail
