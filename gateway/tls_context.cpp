#include "wager/gateway/tls_context.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include <filesystem>

namespace wager {

namespace {

namespace ssl = boost::asio::ssl;

// TLS 1.2 suites: ECDHE key exchange and AEAD only. TLS 1.3 suites are all
// AEAD and keep OpenSSL's default order.
constexpr const char* tls12_ciphers = "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"
                                      "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"
                                      "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305";

std::string openssl_reason(const boost::system::error_code& ec) {
  auto code = ERR_get_error();
  if (code == 0)
    return ec.message();
  char buf[256];
  ERR_error_string_n(code, buf, sizeof buf);
  ERR_clear_error();
  return buf;
}

} // namespace

std::shared_ptr<ssl::context> make_server_tls_context(const std::string& cert_file,
                                                      const std::string& key_file,
                                                      std::string& error) {
  for (auto* f : {&cert_file, &key_file}) {
    std::error_code fec;
    if (!std::filesystem::is_regular_file(*f, fec)) {
      error = "TLS file '" + *f + "' is missing or not a regular file";
      return nullptr;
    }
  }
  auto ctx = std::make_shared<ssl::context>(ssl::context::tls_server);
  ctx->set_options(ssl::context::default_workarounds | ssl::context::no_sslv2
                   | ssl::context::no_sslv3 | ssl::context::no_tlsv1
                   | ssl::context::no_tlsv1_1 | ssl::context::no_compression
                   | ssl::context::single_dh_use);
  auto* native = ctx->native_handle();
  SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
  SSL_CTX_set_options(native, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE
                                | SSL_OP_NO_COMPRESSION);
  // Key exchange groups of at least 128-bit strength (no ffdhe2048).
  if (SSL_CTX_set1_groups_list(native, "X25519:P-256:P-384:X448:P-521") != 1) {
    error = "TLS: no usable key exchange group";
    return nullptr;
  }
  if (SSL_CTX_set_cipher_list(native, tls12_ciphers) != 1) {
    error = "TLS: no usable cipher suite";
    return nullptr;
  }
  boost::system::error_code ec;
  ctx->use_certificate_chain_file(cert_file, ec);
  if (ec) {
    error = "TLS certificate '" + cert_file + "' cannot be used: " + openssl_reason(ec);
    return nullptr;
  }
  ctx->use_private_key_file(key_file, ssl::context::pem, ec);
  if (ec) {
    error = "TLS key '" + key_file + "' cannot be used: " + openssl_reason(ec);
    return nullptr;
  }
  if (SSL_CTX_check_private_key(native) != 1) {
    error = "TLS key '" + key_file + "' does not match certificate '" + cert_file + "'";
    ERR_clear_error();
    return nullptr;
  }
  return ctx;
}

} // namespace wager
