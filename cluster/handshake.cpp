#include "wager/cluster/handshake.hpp"

#include "wager/runtime/assert.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <array>

namespace wager {

namespace {

std::string hex(const unsigned char* data, size_t size) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 0xf]);
  }
  return out;
}

} // namespace

std::string make_join_nonce() {
  std::array<unsigned char, 32> bytes{};
  WAGER_ASSERT(RAND_bytes(bytes.data(), static_cast<int>(bytes.size())) == 1,
               "OpenSSL's random generator failed");
  return hex(bytes.data(), bytes.size());
}

std::string join_proof(std::string_view secret, join_role role, std::string_view own_nonce,
                       std::string_view peer_nonce, std::string_view own_id,
                       std::string_view peer_id) {
  // Fields are separated by a newline, which no nonce (hex) or node id
  // ([A-Za-z0-9_.:-]) contains, so two different field lists never give the
  // same text.
  std::string text = role == join_role::acceptor ? "wager-join-accept" : "wager-join-prove";
  for (auto field : {own_nonce, peer_nonce, own_id, peer_id}) {
    text.push_back('\n');
    text.append(field);
  }
  std::array<unsigned char, EVP_MAX_MD_SIZE> mac{};
  unsigned int size = 0;
  auto* out = HMAC(EVP_sha256(), secret.data(), static_cast<int>(secret.size()),
                   reinterpret_cast<const unsigned char*>(text.data()), text.size(), mac.data(),
                   &size);
  WAGER_ASSERT(out != nullptr, "HMAC-SHA256 failed");
  return hex(mac.data(), size);
}

bool same_proof(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

} // namespace wager
