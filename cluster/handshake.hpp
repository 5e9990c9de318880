#pragma once

// The cryptography of the join handshake (protocol.hpp): nonces, and the
// HMAC-SHA256 each side computes to prove it holds the cluster secret.

#include <string>
#include <string_view>

namespace wager {

// Shorter secrets are refused at start (runtime/config.cpp checks the same).
inline constexpr size_t cluster_secret_min = 16;

// 32 random bytes from OpenSSL's CSPRNG, hex-encoded.
std::string make_join_nonce();

// Who computes the proof: the acceptor answers a hello, the joiner answers
// the acceptor. Distinct, so one side's proof is never valid as the other's.
enum class join_role { acceptor, joiner };

// HMAC-SHA256(secret, role | own nonce | peer nonce | own id | peer id), hex.
std::string join_proof(std::string_view secret, join_role role, std::string_view own_nonce,
                       std::string_view peer_nonce, std::string_view own_id,
                       std::string_view peer_id);

// Compares two proofs in time independent of where they differ.
bool same_proof(std::string_view a, std::string_view b) noexcept;

} // namespace wager
