// The ordered log's frame format: its bytes and the checks decoding makes.

#include "log_frame_support.hpp"

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

// The message decode_log_frame refuses `bytes` with.
std::string refusal(const frame_bytes& bytes) {
  auto f = decode_log_frame(bytes);
  REQUIRE_FALSE(f);
  CHECK(code_of(f.error()) == errc::journal_failure);
  return message_of(f.error());
}

bool contains(const std::string& text, std::string_view part) {
  return text.find(part) != std::string::npos;
}

errc refused_encoding(const log_frame& f) {
  auto bytes = encode(f);
  return bytes ? errc::none : code_of(bytes.error());
}

std::span<const uint8_t> bytes_of(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

} // namespace

TEST_CASE("a frame decodes to what was encoded, and encodes again to the same bytes") {
  auto f = a_log_frame(42, 3);
  f.records[1].open_work.reset();
  f.records[2].request.reset();
  f.records.push_back(log_record{"market/m1", 5, {}, request_record{"settle-1", ""}, true, 0});
  auto bytes = encoded(f);
  auto back = decode_log_frame(bytes);
  REQUIRE_MESSAGE(back, message_of(back.error()));
  CHECK(*back == f);
  CHECK(encoded(*back) == bytes);
}

TEST_CASE("CRC32C is the Castagnoli CRC and the frame hash is SHA-256") {
  CHECK(crc32c(bytes_of("123456789")) == 0xE3069283u);
  CHECK(crc32c({}) == 0u);
  // RFC 3720 (iSCSI), B.4: 32 bytes of zeros, of ones, ascending, descending;
  // then every length and alignment around the 8-byte steps against a
  // bit-by-bit reference.
  std::vector<uint8_t> v(32, 0);
  CHECK(crc32c(v) == 0x8A9136AAu);
  std::fill(v.begin(), v.end(), 0xFF);
  CHECK(crc32c(v) == 0x62A8AB43u);
  for (size_t i = 0; i < 32; ++i)
    v[i] = static_cast<uint8_t>(i);
  CHECK(crc32c(v) == 0x46DD794Eu);
  for (size_t i = 0; i < 32; ++i)
    v[i] = static_cast<uint8_t>(31 - i);
  CHECK(crc32c(v) == 0x113FDB5Cu);
  auto reference = [](std::span<const uint8_t> bytes) {
    uint32_t crc = 0xFFFFFFFFu;
    for (auto b : bytes) {
      crc ^= b;
      for (int k = 0; k < 8; ++k)
        crc = (crc >> 1) ^ (0x82F63B78u & (0u - (crc & 1u)));
    }
    return crc ^ 0xFFFFFFFFu;
  };
  std::vector<uint8_t> data(64);
  for (size_t i = 0; i < data.size(); ++i)
    data[i] = static_cast<uint8_t>(i * 37 + 11);
  for (size_t from = 0; from < 9; ++from)
    for (size_t n = 0; from + n <= data.size(); ++n) {
      auto part = std::span{data}.subspan(from, n);
      CHECK(crc32c(part) == reference(part));
    }
  auto h = hash_of_frame(bytes_of("abc"));
  // FIPS 180-2, appendix B.1.
  frame_hash expected{0xba, 0x78, 0x16, 0xbf, 0x8f, 0x01, 0xcf, 0xea, 0x41, 0x41, 0x40,
                      0xde, 0x5d, 0xae, 0x22, 0x23, 0xb0, 0x03, 0x61, 0xa3, 0x96, 0x17,
                      0x7a, 0x9c, 0xb4, 0x10, 0xff, 0x61, 0xf2, 0x00, 0x15, 0xad};
  CHECK(h == expected);
}

TEST_CASE("the byte layout of a frame is the one the header documents") {
  log_frame f;
  f.position = 0x0102030405060708;
  f.previous.fill(0xcd);
  f.records.push_back(log_record{"a/b", 300, {log_event{"t", 2, "xy", 129}}, std::nullopt, false, 5});
  auto bytes = encoded(f);
  // clang-format off
  frame_bytes expected{
    0x01,                                           // format version
    0x43, 0x00, 0x00, 0x00,                         // length: 67 bytes
    0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // position
  };
  expected.insert(expected.end(), 32, 0xcd);        // previous frame's hash
  frame_bytes body{
    0x01,                                           // one record
    0x03, 'a', '/', 'b',                            // stream
    0xac, 0x02,                                     // first seq 300
    0x05,                                           // back-pointer
    0x02,                                           // flags: open_work set, false
    0x01,                                           // one event
    0x01, 't',                                      // type
    0x02,                                           // version
    0x02, 'x', 'y',                                 // payload
    0x81, 0x01,                                     // at_ms 129
  };
  // clang-format on
  expected.insert(expected.end(), body.begin(), body.end());
  auto crc = crc32c(expected);
  for (int i = 0; i < 4; ++i)
    expected.push_back(static_cast<uint8_t>(crc >> (8 * i)));
  CHECK(bytes == expected);
}

TEST_CASE("an empty frame is its header, a record count of zero and its CRC") {
  auto bytes = encoded(log_frame{});
  CHECK(bytes.size() == 50u);
  auto back = decode_log_frame(bytes);
  REQUIRE(back);
  CHECK(back->position == 1u);
  CHECK(back->records.empty());
}

TEST_CASE("encode refuses what decode would refuse") {
  auto one = [](auto change) {
    auto f = a_log_frame(9, 2);
    change(f);
    return refused_encoding(f);
  };
  CHECK(one([](log_frame&) {}) == errc::none);
  CHECK(one([](log_frame& f) { f.position = 0; }) == errc::invalid_field);
  CHECK(refused_encoding([] {
          auto f = a_log_frame(1, 1);
          f.previous[3] = 1;
          return f;
        }()) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].stream = "nokind"; }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].stream = "w/" + std::string(255, 'k'); })
        == errc::too_large);
  CHECK(one([](log_frame& f) { f.records[0].first_seq = 0; }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].first_seq = UINT64_MAX; }) == errc::invalid_field);
  CHECK(one([](log_frame& f) {
          f.records[0].events.clear();
          f.records[0].request.reset();
        }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[1].previous_position = 9; }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].events[0].type.clear(); }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].events[0].type.assign(65, 't'); }) == errc::too_large);
  CHECK(one([](log_frame& f) { f.records[0].events[0].version = 0; }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].events[0].at_ms = -1; }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].events[0].payload.assign(log_payload_bytes_max + 1, 'p'); })
        == errc::too_large);
  CHECK(one([](log_frame& f) { f.records[0].request->request_id.clear(); }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].request_at_ms = -1; }) == errc::invalid_field);
  CHECK(one([](log_frame& f) {
          f.records[0].request.reset();
          f.records[0].request_at_ms = 7;
        }) == errc::invalid_field);
  CHECK(one([](log_frame& f) { f.records[0].request->request_id.assign(129, 'r'); })
        == errc::too_large);
  CHECK(one([](log_frame& f) { f.records[0].request->result.assign(log_result_bytes_max + 1, 'x'); })
        == errc::too_large);
  CHECK(one([](log_frame& f) {
          f.records[0].events.assign(log_record_events_max + 1, log_event{"t", 1, "", 0});
        }) == errc::too_large);
  CHECK(one([](log_frame& f) {
          f.records.assign(log_frame_records_max + 1, log_record{"a/b", 1, {}, request_record{"r", ""}});
        }) == errc::too_large);
}

TEST_CASE("decode refuses a frame whose size is not the one its header says") {
  auto bytes = encoded(a_log_frame(17, 2));
  auto shorter = bytes;
  shorter.pop_back();
  auto message = refusal(shorter);
  CHECK(contains(message, "log frame at position 17"));
  CHECK(contains(message, "truncated"));
  CHECK(contains(refusal(frame_bytes(bytes.begin(), bytes.begin() + 20)), "truncated"));
  CHECK(contains(refusal(frame_bytes(bytes.begin(), bytes.begin() + 3)), "log frame of 3 bytes"));
  CHECK(contains(refusal({}), "empty"));
  auto longer = bytes;
  longer.push_back(0);
  CHECK(contains(refusal(longer), "followed by 1 more"));
}

TEST_CASE("decode refuses a frame with a bad CRC or an unknown version") {
  auto bytes = encoded(a_log_frame(17, 2));
  auto flipped = bytes;
  flipped[60] ^= 0x10;
  auto message = refusal(flipped);
  CHECK(contains(message, "position 17"));
  CHECK(contains(message, "bad CRC"));
  auto newer = bytes;
  newer[0] = 2;
  CHECK(contains(refusal(newer), "unknown format version 2"));
}

TEST_CASE("decode refuses a sealed frame whose fields break their bounds") {
  // A frame with one record "a/b" and nothing else, so offsets are known:
  // the stream's length is at 46, its first seq at 50.
  log_frame f;
  f.position = 3;
  f.records.push_back(log_record{"a/b", 1, {}, request_record{"r", ""}});
  auto good = encoded(f);
  REQUIRE(good[46] == 3);

  SUBCASE("an over-long field") {
    auto bytes = good;
    bytes[46] = 0x81; // 257 bytes, over stream_bytes_max
    bytes.insert(bytes.begin() + 47, 0x02);
    reseal(bytes);
    auto message = refusal(bytes);
    CHECK(contains(message, "position 3"));
    CHECK(contains(message, "stream name of 257 bytes is over its bound 256"));
  }
  SUBCASE("a length beyond the frame") {
    auto bytes = good;
    bytes[46] = 100;
    reseal(bytes);
    CHECK(contains(refusal(bytes), "truncated in stream name"));
  }
  SUBCASE("a varint with a trailing zero byte") {
    auto bytes = good;
    bytes[50] = 0x81;
    bytes.insert(bytes.begin() + 51, 0x00);
    reseal(bytes);
    CHECK(contains(refusal(bytes), "non-canonical varint in first seq"));
  }
  SUBCASE("a varint of more than 64 bits") {
    auto bytes = good;
    bytes[50] = 0xff;
    bytes.insert(bytes.begin() + 51, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f});
    reseal(bytes);
    CHECK(contains(refusal(bytes), "over-long varint in first seq"));
  }
  SUBCASE("unknown record flags") {
    auto bytes = good;
    bytes[52] |= 0x40;
    reseal(bytes);
    CHECK(contains(refusal(bytes), "unknown record flags"));
  }
  SUBCASE("a back-pointer not before the frame") {
    auto bytes = good;
    bytes[51] = 3;
    reseal(bytes);
    CHECK(contains(refusal(bytes), "back-pointer 3 is not before the frame"));
  }
  SUBCASE("bytes after the last record") {
    auto bytes = good;
    bytes.insert(bytes.end() - 4, 0x00);
    reseal(bytes);
    CHECK(contains(refusal(bytes), "1 bytes after its last record"));
  }
  SUBCASE("more records than the frame holds") {
    auto bytes = good;
    bytes[45] = 2;
    reseal(bytes);
    CHECK(contains(refusal(bytes), "record 1: truncated"));
  }
}
