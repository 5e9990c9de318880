#pragma once

// The server side of TLS for the client port, for http_server.cpp only (it
// pulls in Asio's ssl headers). TLS 1.2 and 1.3, forward-secret AEAD suites
// only, no compression, no renegotiation.

#include <boost/asio/ssl/context.hpp>

#include <memory>
#include <string>

namespace wager {

// Loads and checks the certificate chain and key (PEM). On failure returns
// null and sets `error` to one line naming the file and the reason.
std::shared_ptr<boost::asio::ssl::context> make_server_tls_context(const std::string& cert_file,
                                                                   const std::string& key_file,
                                                                   std::string& error);

} // namespace wager
