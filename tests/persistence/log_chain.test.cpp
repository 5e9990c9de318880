// The ordered log's hash chain: verify_chain over runs of frames, intact and
// broken in each way it names.

#include "log_frame_support.hpp"

#include <wager/persistence/log_chain.hpp>
#include <wager/runtime/errors.hpp>

#include <doctest/doctest.h>

#include <string_view>

using namespace wager;
using namespace wager::test;

namespace {

frame_bytes encoded(const log_frame& f) {
  auto bytes = encode(f);
  REQUIRE_MESSAGE(bytes, message_of(bytes.error()));
  return std::move(*bytes);
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

} // namespace

TEST_CASE("a chain of frames with matching hashes, back-pointers and seqs verifies") {
  chain_builder chain;
  chain.add({{1, 1}, {2, 1}});
  chain.add({{1, 2}, {1, 0}, {3, 1}});
  chain.add({});
  chain.add({{2, 1}, {3, 3}});
  chain.add({{1, 1}});
  CHECK_FALSE(verify_chain(chain.frames()));
  // A tail of it, given the position and hash it starts from.
  auto& frames = chain.frames();
  std::vector<frame_bytes> tail(frames.begin() + 2, frames.end());
  CHECK_FALSE(verify_chain(tail, chain_start{3, hash_of_frame(frames[1])}));
  CHECK(verify_chain(tail));
  CHECK_FALSE(verify_chain({}));
}

TEST_CASE("verify_chain names the first frame that does not match") {
  chain_builder chain;
  for (int i = 0; i < 5; ++i)
    chain.add({{i % 2, 1}});
  auto frames = chain.frames();

  SUBCASE("a damaged frame is named by its CRC") {
    frames[2][50] ^= 1;
    auto b = verify_chain(frames);
    REQUIRE(b);
    CHECK(b->position == 3u);
    CHECK(contains(b->problem, "bad CRC"));
  }
  SUBCASE("a frame changed and resealed is named by the next frame's hash") {
    auto f = chain.decoded()[2];
    f.records[0].events[0].payload = R"({"stake":1})";
    frames[2] = encoded(f);
    auto b = verify_chain(frames);
    REQUIRE(b);
    CHECK(b->position == 4u);
    CHECK(contains(b->problem, "SHA-256 of frame 3"));
  }
  SUBCASE("a missing frame") {
    frames.erase(frames.begin() + 1);
    auto b = verify_chain(frames);
    REQUIRE(b);
    CHECK(b->position == 2u);
    CHECK(contains(b->problem, "holds position 3"));
  }
  SUBCASE("a back-pointer that skips a frame of its stream") {
    auto f = chain.decoded()[4];
    f.records[0].previous_position = 1;
    frames[4] = encoded(f);
    auto b = verify_chain(frames);
    REQUIRE(b);
    CHECK(b->position == 5u);
    CHECK(contains(b->problem, "its previous record is in frame 3"));
  }
  SUBCASE("seqs that do not go on") {
    auto f = chain.decoded()[3];
    f.records[0].first_seq += 1;
    frames[3] = encoded(f);
    auto b = verify_chain(frames);
    REQUIRE(b);
    CHECK(b->position == 4u);
    CHECK(contains(b->problem, "first seq 3, but its seqs went on at 2"));
  }
}
