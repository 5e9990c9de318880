#pragma once

// The gateway's security primitives: password hashing (PBKDF2-HMAC-SHA256),
// unguessable tokens, TOTP (RFC 6238), constant-time comparison, a bounded
// per-key rate limiter and the small worker pool that runs the slow parts
// (hashing, journal reads) off the actor and I/O threads.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

namespace wager {

// OWASP (2023) for PBKDF2-HMAC-SHA256.
inline constexpr uint32_t pbkdf2_iterations_default = 600'000;

// "pbkdf2-sha256$<iterations>$<salt hex>$<hash hex>", with a random salt.
std::string hash_password(std::string_view password, uint32_t iterations);

// Recomputes with the stored parameters and compares in constant time. A
// malformed stored hash never verifies.
bool verify_password(std::string_view password, std::string_view stored);

// `bytes` random bytes (RAND_bytes) as lower-case hex.
std::string random_hex(size_t bytes);

std::string sha256_hex(std::string_view data);

// Constant-time for equal lengths (CRYPTO_memcmp).
bool constant_time_equal(std::string_view a, std::string_view b);

// RFC 4648 base32 without padding, upper case.
std::string base32_encode(std::string_view bytes);
std::optional<std::string> base32_decode(std::string_view text);

// A new TOTP secret: 20 random bytes, base32.
std::string new_totp_secret();

// RFC 6238 with SHA-1, 30 s steps: the 6-digit code for `unix_seconds`.
// `digits` is 6 for the API; 8 only for the RFC's test vectors.
std::string totp_code(std::string_view secret_bytes, int64_t unix_seconds, int digits = 6);

// Accepts the code of the current step or of one step either side (clock
// drift); `code` must be exactly 6 digits.
bool totp_verify(std::string_view secret_base32, std::string_view code, int64_t unix_seconds);

// A token bucket per key: `burst` tokens, refilled at `per_second`. At most
// `keys_max` keys are tracked. A new key past that evicts one bucket, the one
// that is full again soonest (a full one if any): dropping it hands its key
// the fewest unearned tokens. A spray of fresh keys, each one token down,
// so evicts its own buckets before the empty bucket of a key being guessed
// (issue #20: the table used to be cleared, resetting every limit). Memory
// stays bounded and a take costs O(log keys_max).
class rate_limiter {
public:
  rate_limiter(double burst, double per_second, size_t keys_max);

  // Takes one token. Returns 0 when allowed, else the seconds until a token
  // is back (for Retry-After, at least 1).
  int64_t take(const std::string& key);

  // Keys tracked now; never more than keys_max.
  size_t keys() const;

private:
  using time_point = std::chrono::steady_clock::time_point;
  // Every bucket by the time it is full again, earliest first; the keys
  // point into buckets_, whose nodes do not move.
  using refill_order = std::multimap<time_point, const std::string*>;
  struct bucket {
    double tokens;
    time_point at;
    refill_order::iterator full_at; // this bucket's entry in by_full_at_
  };
  void refill(bucket& b, time_point now) const;
  time_point full_at(const bucket& b) const;
  void evict_soonest_full();

  double burst_;
  double per_second_;
  size_t keys_max_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, bucket> buckets_; // REQUIRES: mutex_ is held
  refill_order by_full_at_;                         // REQUIRES: mutex_ is held
};

// A fixed number of threads over a bounded queue, for blocking work.
class worker_pool {
public:
  worker_pool(uint32_t threads, size_t queue_max);
  ~worker_pool(); // runs what is queued, then joins
  worker_pool(const worker_pool&) = delete;
  worker_pool& operator=(const worker_pool&) = delete;

  // False when the queue is full or the pool is stopping.
  bool post(std::function<void()> work);

private:
  void run();

  size_t queue_max_;
  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace wager
