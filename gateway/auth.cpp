#include "wager/gateway/auth.hpp"

#include "wager/runtime/assert.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <algorithm>
#include <cmath>

namespace wager {

namespace {

constexpr size_t salt_bytes = 16;
constexpr size_t hash_bytes = 32;
// Stored hashes with absurd parameters are refused rather than run.
constexpr uint32_t pbkdf2_iterations_max = 10'000'000;
constexpr int64_t totp_step_s = 30;
// A rate limiter bucket further than this from full (about 31 years) is
// treated as full then.
constexpr double refill_horizon_s = 1e9;

std::string to_hex(const unsigned char* data, size_t n) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out;
  out.reserve(n * 2);
  for (size_t i = 0; i < n; ++i) {
    out.push_back(digits[data[i] >> 4]);
    out.push_back(digits[data[i] & 0xf]);
  }
  return out;
}

std::optional<std::string> from_hex(std::string_view hex) {
  if (hex.size() % 2 != 0)
    return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    return -1;
  };
  std::string out;
  for (size_t i = 0; i < hex.size(); i += 2) {
    int hi = nibble(hex[i]), lo = nibble(hex[i + 1]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    out.push_back(static_cast<char>(hi * 16 + lo));
  }
  return out;
}

std::string random_bytes(size_t n) {
  std::string out(n, '\0');
  auto ok = RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(n));
  WAGER_ASSERT(ok == 1, "the CSPRNG works");
  return out;
}

std::string pbkdf2(std::string_view password, std::string_view salt, uint32_t iterations) {
  unsigned char out[hash_bytes];
  auto ok = PKCS5_PBKDF2_HMAC(password.data(), static_cast<int>(password.size()),
                              reinterpret_cast<const unsigned char*>(salt.data()),
                              static_cast<int>(salt.size()), static_cast<int>(iterations),
                              EVP_sha256(), sizeof out, out);
  WAGER_ASSERT(ok == 1, "PBKDF2 works");
  return std::string(reinterpret_cast<char*>(out), sizeof out);
}

} // namespace

std::string hash_password(std::string_view password, uint32_t iterations) {
  auto salt = random_bytes(salt_bytes);
  auto hash = pbkdf2(password, salt, iterations);
  return "pbkdf2-sha256$" + std::to_string(iterations) + "$"
         + to_hex(reinterpret_cast<const unsigned char*>(salt.data()), salt.size()) + "$"
         + to_hex(reinterpret_cast<const unsigned char*>(hash.data()), hash.size());
}

bool verify_password(std::string_view password, std::string_view stored) {
  std::vector<std::string_view> parts;
  size_t from = 0;
  for (;;) {
    auto at = stored.find('$', from);
    parts.push_back(stored.substr(from, at == std::string_view::npos ? at : at - from));
    if (at == std::string_view::npos)
      break;
    from = at + 1;
  }
  if (parts.size() != 4 || parts[0] != "pbkdf2-sha256" || parts[1].empty()
      || parts[1].size() > 8)
    return false;
  uint32_t iterations = 0;
  for (char c : parts[1]) {
    if (c < '0' || c > '9')
      return false;
    iterations = iterations * 10 + static_cast<uint32_t>(c - '0');
  }
  auto salt = from_hex(parts[2]);
  auto expected = from_hex(parts[3]);
  if (iterations == 0 || iterations > pbkdf2_iterations_max || !salt || !expected
      || expected->size() != hash_bytes)
    return false;
  return constant_time_equal(pbkdf2(password, *salt, iterations), *expected);
}

std::string random_hex(size_t bytes) {
  auto raw = random_bytes(bytes);
  return to_hex(reinterpret_cast<const unsigned char*>(raw.data()), raw.size());
}

std::string sha256_hex(std::string_view data) {
  unsigned char out[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), out);
  return to_hex(out, sizeof out);
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string base32_encode(std::string_view bytes) {
  static constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (unsigned char c : bytes) {
    buffer = (buffer << 8) | c;
    bits += 8;
    while (bits >= 5) {
      out.push_back(alphabet[(buffer >> (bits - 5)) & 31]);
      bits -= 5;
    }
  }
  if (bits > 0)
    out.push_back(alphabet[(buffer << (5 - bits)) & 31]);
  return out;
}

std::optional<std::string> base32_decode(std::string_view text) {
  std::string out;
  uint32_t buffer = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a';
    else if (c >= '2' && c <= '7')
      v = c - '2' + 26;
    else if (c == '=')
      break;
    else
      return std::nullopt;
    buffer = (buffer << 5) | static_cast<uint32_t>(v);
    bits += 5;
    if (bits >= 8) {
      out.push_back(static_cast<char>((buffer >> (bits - 8)) & 0xff));
      bits -= 8;
    }
  }
  return out;
}

std::string new_totp_secret() {
  return base32_encode(random_bytes(20));
}

std::string totp_code(std::string_view secret_bytes, int64_t unix_seconds, int digits) {
  auto counter = static_cast<uint64_t>(unix_seconds / totp_step_s);
  unsigned char msg[8];
  for (int i = 7; i >= 0; --i, counter >>= 8)
    msg[i] = static_cast<unsigned char>(counter & 0xff);
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int mac_len = 0;
  HMAC(EVP_sha1(), secret_bytes.data(), static_cast<int>(secret_bytes.size()), msg,
       sizeof msg, mac, &mac_len);
  int offset = mac[mac_len - 1] & 0x0f;
  uint32_t bin = (static_cast<uint32_t>(mac[offset] & 0x7f) << 24)
                 | (static_cast<uint32_t>(mac[offset + 1]) << 16)
                 | (static_cast<uint32_t>(mac[offset + 2]) << 8) | mac[offset + 3];
  uint32_t mod = 1;
  for (int i = 0; i < digits; ++i)
    mod *= 10;
  auto code = std::to_string(bin % mod);
  return std::string(static_cast<size_t>(digits) - code.size(), '0') + code;
}

bool totp_verify(std::string_view secret_base32, std::string_view code, int64_t unix_seconds) {
  if (code.size() != 6 || !std::all_of(code.begin(), code.end(),
                                       [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  auto secret = base32_decode(secret_base32);
  if (!secret || secret->empty())
    return false;
  bool ok = false;
  for (int64_t drift = -1; drift <= 1; ++drift)
    ok |= constant_time_equal(totp_code(*secret, unix_seconds + drift * totp_step_s), code);
  return ok;
}

// -- rate_limiter ------------------------------------------------------------

rate_limiter::rate_limiter(double burst, double per_second, size_t keys_max)
  : burst_(burst), per_second_(per_second), keys_max_(keys_max) {
  WAGER_ASSERT(burst >= 1 && per_second > 0 && keys_max > 0, "a usable rate limit");
}

void rate_limiter::refill(bucket& b, time_point now) const {
  std::chrono::duration<double> elapsed = now - b.at;
  b.tokens = std::min(burst_, b.tokens + elapsed.count() * per_second_);
  b.at = now;
}

rate_limiter::time_point rate_limiter::full_at(const bucket& b) const {
  // Capped so that the time point stays representable whatever the rate.
  auto seconds = std::min((burst_ - b.tokens) / per_second_, refill_horizon_s);
  return b.at + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                  std::chrono::duration<double>(seconds));
}

void rate_limiter::evict_soonest_full() {
  auto soonest = by_full_at_.begin();
  auto victim = buckets_.find(*soonest->second);
  WAGER_ASSERT(victim != buckets_.end(), "every refill entry has its bucket");
  by_full_at_.erase(soonest);
  buckets_.erase(victim);
}

int64_t rate_limiter::take(const std::string& key) {
  auto now = std::chrono::steady_clock::now();
  std::lock_guard lock{mutex_};
  auto i = buckets_.find(key);
  if (i == buckets_.end()) {
    if (buckets_.size() >= keys_max_)
      evict_soonest_full();
    i = buckets_.emplace(key, bucket{burst_, now, {}}).first;
    i->second.full_at = by_full_at_.emplace(now, &i->first);
  }
  auto& b = i->second;
  refill(b, now);
  int64_t wait_s = 0;
  if (b.tokens >= 1)
    b.tokens -= 1;
  else
    wait_s = std::max<int64_t>(1, static_cast<int64_t>(std::ceil((1 - b.tokens) / per_second_)));
  // Moved, not reallocated: the entry's node gets its new time.
  auto entry = by_full_at_.extract(b.full_at);
  entry.key() = full_at(b);
  b.full_at = by_full_at_.insert(std::move(entry));
  WAGER_ASSERT(buckets_.size() <= keys_max_ && by_full_at_.size() == buckets_.size(),
               "the limiter's table is bounded and indexed whole");
  return wait_s;
}

size_t rate_limiter::keys() const {
  std::lock_guard lock{mutex_};
  return buckets_.size();
}

// -- worker_pool -------------------------------------------------------------

worker_pool::worker_pool(uint32_t threads, size_t queue_max) : queue_max_(queue_max) {
  WAGER_ASSERT(threads > 0, "a pool has threads");
  for (uint32_t i = 0; i < threads; ++i)
    threads_.emplace_back([this] { run(); });
}

worker_pool::~worker_pool() {
  {
    std::lock_guard lock{mutex_};
    stopping_ = true;
  }
  wake_.notify_all();
  for (auto& t : threads_)
    t.join();
}

bool worker_pool::post(std::function<void()> work) {
  {
    std::lock_guard lock{mutex_};
    if (stopping_ || queue_.size() >= queue_max_)
      return false;
    queue_.push_back(std::move(work));
  }
  wake_.notify_one();
  return true;
}

void worker_pool::run() {
  for (;;) {
    std::function<void()> work;
    {
      std::unique_lock lock{mutex_};
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (queue_.empty())
        return;
      work = std::move(queue_.front());
      queue_.pop_front();
    }
    work();
  }
}

} // namespace wager
