#include "wager/gateway/auth.hpp"

#include <doctest/doctest.h>

#include <atomic>

using namespace wager;

TEST_CASE("TOTP codes match the RFC 6238 SHA-1 test vectors") {
  std::string secret = "12345678901234567890";
  CHECK(totp_code(secret, 59, 8) == "94287082");
  CHECK(totp_code(secret, 1111111109, 8) == "07081804");
  CHECK(totp_code(secret, 1234567890, 8) == "89005924");
  CHECK(totp_code(secret, 20000000000, 8) == "65353130");
  CHECK(totp_code(secret, 59) == "287082");
}

TEST_CASE("TOTP verification accepts one step of drift and nothing else") {
  auto secret = new_totp_secret();
  auto raw = *base32_decode(secret);
  int64_t now = 1'800'000'000;
  CHECK(totp_verify(secret, totp_code(raw, now), now));
  CHECK(totp_verify(secret, totp_code(raw, now - 30), now));
  CHECK(totp_verify(secret, totp_code(raw, now + 30), now));
  CHECK_FALSE(totp_verify(secret, totp_code(raw, now - 90), now));
  CHECK_FALSE(totp_verify(secret, "12345", now));
  CHECK_FALSE(totp_verify(secret, "abcdef", now));
}

TEST_CASE("base32 round-trips and refuses foreign characters") {
  CHECK(base32_encode("foobar") == "MZXW6YTBOI");
  CHECK(*base32_decode("MZXW6YTBOI") == "foobar");
  CHECK_FALSE(base32_decode("MZ!W"));
}

TEST_CASE("a password verifies against its hash and nothing else does") {
  auto stored = hash_password("correct horse battery", 1000);
  CHECK(stored.rfind("pbkdf2-sha256$1000$", 0) == 0);
  CHECK(verify_password("correct horse battery", stored));
  CHECK_FALSE(verify_password("correct horse batterY", stored));
  CHECK_FALSE(verify_password("correct horse battery", "pbkdf2-sha256$0$00$00"));
  CHECK_FALSE(verify_password("x", "garbage"));
  // Salted: the same password hashes differently every time.
  CHECK(hash_password("same", 1000) != hash_password("same", 1000));
}

TEST_CASE("the default password hashing is at OWASP strength") {
  CHECK(pbkdf2_iterations_default >= 600'000);
}

TEST_CASE("random tokens are long and distinct") {
  auto a = random_hex(32), b = random_hex(32);
  CHECK(a.size() == 64);
  CHECK(a != b);
}

TEST_CASE("the rate limiter allows a burst, then asks to wait") {
  rate_limiter limiter{3, 0.1, 100};
  CHECK(limiter.take("k") == 0);
  CHECK(limiter.take("k") == 0);
  CHECK(limiter.take("k") == 0);
  auto wait = limiter.take("k");
  CHECK(wait >= 1);
  CHECK(wait <= 10);
  CHECK(limiter.take("other") == 0);
}

TEST_CASE("the rate limiter's memory stays bounded under many keys") {
  rate_limiter limiter{1, 1, 10};
  for (int i = 0; i < 1000; ++i)
    CHECK(limiter.take("key" + std::to_string(i)) == 0);
  CHECK(limiter.keys() == 10);
}

// Issue #20: a full table used to be cleared, so spraying usernames reset the
// limit of the one being guessed.
TEST_CASE("a limited key stays limited while a spray of other keys overflows the table") {
  // A token back every 100 s: nothing refills while the test runs.
  rate_limiter limiter{3, 0.01, 100};
  for (int i = 0; i < 3; ++i)
    REQUIRE(limiter.take("login-user:victim") == 0);
  REQUIRE(limiter.take("login-user:victim") >= 1);
  // Each sprayed key spends one token of three: closer to full than the
  // victim's empty bucket, so they are the ones evicted.
  for (int i = 0; i < 1000; ++i)
    CHECK(limiter.take("login-user:spray" + std::to_string(i)) == 0);
  CHECK(limiter.take("login-user:victim") >= 1);
  CHECK(limiter.keys() == 100);
}

TEST_CASE("a new key past the table's bound evicts the bucket that is full again soonest") {
  rate_limiter limiter{3, 0.01, 2};
  REQUIRE(limiter.take("a") == 0); // two tokens left
  REQUIRE(limiter.take("b") == 0);
  REQUIRE(limiter.take("b") == 0); // one token left
  REQUIRE(limiter.take("c") == 0); // evicts a
  CHECK(limiter.keys() == 2);
  // b kept its bucket: one token, then a wait.
  CHECK(limiter.take("b") == 0);
  CHECK(limiter.take("b") >= 1);
}

TEST_CASE("the worker pool runs everything queued before it stops") {
  std::atomic<int> ran{0};
  {
    worker_pool pool{2, 1000};
    for (int i = 0; i < 100; ++i)
      CHECK(pool.post([&] { ++ran; }));
  }
  CHECK(ran == 100);
}
