#include "wager/persistence/event.hpp"

#include "wager/runtime/assert.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace wager {

event event::make(std::string type, uint32_t version, const boost::json::value& payload) {
  return event{std::move(type), version, boost::json::serialize(payload)};
}

boost::json::value event::json() const {
  boost::system::error_code ec;
  auto value = boost::json::parse(payload, ec);
  WAGER_ASSERT(!ec, "event payload is not JSON: " + type);
  return value;
}

std::string_view kind_of(std::string_view stream) noexcept {
  auto slash = stream.find('/');
  if (slash == std::string_view::npos)
    return {};
  return stream.substr(0, slash);
}

bool valid_stream_name(std::string_view stream) noexcept {
  if (stream.empty() || stream.size() > stream_bytes_max)
    return false;
  auto slash = stream.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == stream.size())
    return false;
  for (unsigned char c : stream)
    if (c < 0x20 || c == 0x7f)
      return false;
  return true;
}

namespace {

constexpr uint64_t fnv_offset = 14695981039346656037ull;
constexpr uint64_t fnv_prime = 1099511628211ull;

uint64_t fnv(uint64_t h, std::string_view bytes) noexcept {
  for (unsigned char c : bytes) {
    h ^= c;
    h *= fnv_prime;
  }
  return h;
}

uint64_t fnv(uint64_t h, uint64_t number) noexcept {
  for (int i = 0; i < 8; ++i) {
    h ^= (number >> (8 * i)) & 0xff;
    h *= fnv_prime;
  }
  return h;
}

} // namespace

uint64_t row_checksum(std::string_view stream, uint64_t seq, std::string_view type,
                      uint32_t version, std::string_view payload) noexcept {
  // Lengths go in too, so moving bytes between fields changes the sum.
  auto h = fnv(fnv_offset, stream.size());
  h = fnv(h, stream);
  h = fnv(h, seq);
  h = fnv(h, type.size());
  h = fnv(h, type);
  h = fnv(h, version);
  h = fnv(h, payload.size());
  return fnv(h, payload);
}

} // namespace wager
