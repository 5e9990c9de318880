#include "wager/persistence/log_frame.hpp"

#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/crc.hpp>
#include <openssl/evp.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#include <algorithm>
#include <cstring>
#include <limits>
#include <string_view>

namespace wager {

namespace {

// Byte layout (all fixed-width integers little-endian; log_frame.hpp
// describes every field):
//   header:  version u8 | length u32 | position u64 | previous 32 bytes
//   body:    record count varint | records
//   trailer: CRC32C u32 of every byte before it
constexpr size_t length_offset = 1;
constexpr size_t position_offset = 5;
constexpr size_t previous_offset = 13;
constexpr size_t header_bytes = 45;
constexpr size_t crc_bytes = 4;
constexpr size_t frame_bytes_min = header_bytes + 1 + crc_bytes;

// The fewest bytes an encoded record or event takes ("k/v", empty payload):
// bounds what a count read from a frame may reserve.
constexpr size_t record_bytes_min = 8;
constexpr size_t event_bytes_min = 5;

// Record flags. Every other bit is zero, and open_work_value only goes with
// open_work_set, so each record has exactly one encoding.
constexpr uint8_t flag_request = 0x01;
constexpr uint8_t flag_open_work_set = 0x02;
constexpr uint8_t flag_open_work_value = 0x04;
constexpr uint8_t flags_known = flag_request | flag_open_work_set | flag_open_work_value;

constexpr size_t varint_bytes_max = 10;

// --- checks shared by encode and decode -------------------------------------

struct flaw {
  errc code;
  std::string what;
};

std::optional<flaw> oversized(std::string what, size_t size, size_t max) {
  return flaw{errc::too_large, what + " is " + std::to_string(size) + " bytes, more than " +
                                 std::to_string(max)};
}

std::optional<flaw> invalid(std::string what) {
  return flaw{errc::invalid_field, std::move(what)};
}

std::optional<flaw> check_event(const log_event& e) {
  if (e.type.empty())
    return invalid("an event has an empty type");
  if (e.type.size() > event_type_bytes_max)
    return oversized("event type", e.type.size(), event_type_bytes_max);
  if (e.version == 0)
    return invalid("event " + e.type + " has version 0 (they start at 1)");
  if (e.payload.size() > log_payload_bytes_max)
    return oversized("payload of event " + e.type, e.payload.size(), log_payload_bytes_max);
  if (e.at_ms < 0)
    return invalid("event " + e.type + " has a negative timestamp");
  return std::nullopt;
}

std::optional<flaw> check_record(const log_record& r, uint64_t position) {
  if (r.stream.size() > stream_bytes_max)
    return oversized("stream name", r.stream.size(), stream_bytes_max);
  if (!valid_stream_name(r.stream))
    return invalid("stream name '" + r.stream + "' is not kind/key");
  if (r.first_seq == 0)
    return invalid(r.stream + ": first seq is 0 (seqs start at 1)");
  if (r.events.size() > log_record_events_max)
    return flaw{errc::too_large, r.stream + ": " + std::to_string(r.events.size()) +
                                   " events, more than " + std::to_string(log_record_events_max)};
  if (r.first_seq > std::numeric_limits<uint64_t>::max() - r.events.size())
    return invalid(r.stream + ": seqs from " + std::to_string(r.first_seq) + " overflow");
  if (r.events.empty() && !r.request)
    return invalid(r.stream + ": a record with neither events nor a request");
  if (r.previous_position >= position)
    return invalid(r.stream + ": back-pointer " + std::to_string(r.previous_position) +
                   " is not before the frame");
  for (auto& e : r.events)
    if (auto f = check_event(e))
      return flaw{f->code, r.stream + ": " + f->what};
  if (auto& q = r.request) {
    if (q->request_id.empty())
      return invalid(r.stream + ": empty request id");
    if (q->request_id.size() > request_id_bytes_max)
      return oversized(r.stream + ": request id", q->request_id.size(), request_id_bytes_max);
    if (q->result.size() > log_result_bytes_max)
      return oversized(r.stream + ": request result", q->result.size(), log_result_bytes_max);
    if (r.request_at_ms < 0)
      return invalid(r.stream + ": negative request timestamp");
  } else if (r.request_at_ms != 0) {
    return invalid(r.stream + ": a request timestamp without a request");
  }
  return std::nullopt;
}

std::optional<flaw> check_header(uint64_t position, const frame_hash& previous) {
  if (position == 0)
    return invalid("position 0 (positions start at 1)");
  if (position == 1 && previous != frame_hash{})
    return invalid("the first frame's previous hash is not zeros");
  return std::nullopt;
}

// --- encoding ----------------------------------------------------------------

size_t varint_size(uint64_t v) {
  size_t n = 1;
  for (; v >= 0x80; v >>= 7)
    ++n;
  return n;
}

size_t text_size(size_t length) {
  return varint_size(length) + length;
}

// Exact, so encode allocates once. Fields are checked first, so the sum
// stays far below 2^64 (65536 records of 65536 events of 64 MiB).
uint64_t record_size(const log_record& r) {
  uint64_t n = text_size(r.stream.size()) + varint_size(r.first_seq) +
               varint_size(r.previous_position) + 1 + varint_size(r.events.size());
  for (auto& e : r.events)
    n += text_size(e.type.size()) + varint_size(e.version) + text_size(e.payload.size()) +
         varint_size(static_cast<uint64_t>(e.at_ms));
  if (r.request)
    n += text_size(r.request->request_id.size()) + text_size(r.request->result.size()) +
         varint_size(static_cast<uint64_t>(r.request_at_ms));
  return n;
}

class frame_writer {
public:
  explicit frame_writer(frame_bytes& out) : out_(out) {}

  void u8(uint8_t v) { out_.push_back(v); }

  template <class T>
  void fixed(T v) {
    for (size_t i = 0; i < sizeof(T); ++i)
      out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }

  void varint(uint64_t v) {
    for (; v >= 0x80; v >>= 7)
      out_.push_back(static_cast<uint8_t>(v | 0x80));
    out_.push_back(static_cast<uint8_t>(v));
  }

  void text(std::string_view s) {
    varint(s.size());
    out_.insert(out_.end(), s.begin(), s.end());
  }

private:
  frame_bytes& out_;
};

uint8_t flags_of(const log_record& r) {
  uint8_t flags = r.request ? flag_request : 0;
  if (r.open_work)
    flags |= flag_open_work_set | (*r.open_work ? flag_open_work_value : 0);
  return flags;
}

void write_record(frame_writer& w, const log_record& r) {
  w.text(r.stream);
  w.varint(r.first_seq);
  w.varint(r.previous_position);
  w.u8(flags_of(r));
  w.varint(r.events.size());
  for (auto& e : r.events) {
    w.text(e.type);
    w.varint(e.version);
    w.text(e.payload);
    w.varint(static_cast<uint64_t>(e.at_ms));
  }
  if (r.request) {
    w.text(r.request->request_id);
    w.text(r.request->result);
    w.varint(static_cast<uint64_t>(r.request_at_ms));
  }
}

// --- decoding ----------------------------------------------------------------

// Reads the body of a frame whose length and CRC have been checked. Every
// read checks the bytes left first; the first failure is kept in problem().
class frame_reader {
public:
  frame_reader(std::span<const uint8_t> in, size_t at) : in_(in), at_(at) {}

  const std::string& problem() const { return problem_; }
  size_t left() const { return in_.size() - at_; }
  bool done() const { return at_ == in_.size(); }

  bool fail(std::string problem) {
    if (problem_.empty())
      problem_ = std::move(problem);
    return false;
  }

  bool u8(uint8_t& v, const char* what) {
    if (left() < 1)
      return fail(std::string{"truncated in "} + what);
    v = in_[at_++];
    return true;
  }

  // Unsigned LEB128, canonical: at most 10 bytes, no value bits beyond 64,
  // no trailing zero byte (so each value has one encoding, and a frame
  // re-encodes to the bytes it was read from).
  bool varint(uint64_t& v, const char* what) {
    v = 0;
    for (size_t i = 0; i < varint_bytes_max; ++i) {
      if (left() < 1)
        return fail(std::string{"truncated in "} + what);
      uint8_t b = in_[at_++];
      if (i == varint_bytes_max - 1 && b > 1)
        return fail(std::string{"over-long varint in "} + what);
      v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
      if ((b & 0x80) == 0) {
        if (b == 0 && i > 0)
          return fail(std::string{"non-canonical varint in "} + what);
        return true;
      }
    }
    return fail(std::string{"over-long varint in "} + what); // unreachable: b > 1 above
  }

  bool bounded(uint64_t& v, uint64_t max, const char* what) {
    if (!varint(v, what))
      return false;
    if (v > max)
      return fail(std::string{what} + " " + std::to_string(v) + " is over its bound " +
                  std::to_string(max));
    return true;
  }

  bool text(std::string& s, size_t max, const char* what) {
    uint64_t n = 0;
    if (!varint(n, what))
      return false;
    if (n > max)
      return fail(std::string{what} + " of " + std::to_string(n) + " bytes is over its bound " +
                  std::to_string(max));
    if (n > left())
      return fail(std::string{"truncated in "} + what);
    s.assign(reinterpret_cast<const char*>(in_.data() + at_), n);
    at_ += n;
    return true;
  }

  bool event(log_event& e) {
    uint64_t version = 0;
    uint64_t at = 0;
    if (!text(e.type, event_type_bytes_max, "event type")
        || !bounded(version, std::numeric_limits<uint32_t>::max(), "event version")
        || !text(e.payload, log_payload_bytes_max, "event payload")
        || !bounded(at, std::numeric_limits<int64_t>::max(), "event timestamp"))
      return false;
    e.version = static_cast<uint32_t>(version);
    e.at_ms = static_cast<int64_t>(at);
    return true;
  }

  bool record(log_record& r) {
    uint8_t flags = 0;
    uint64_t count = 0;
    if (!text(r.stream, stream_bytes_max, "stream name") || !varint(r.first_seq, "first seq")
        || !varint(r.previous_position, "back-pointer") || !u8(flags, "record flags"))
      return false;
    if ((flags & ~flags_known) != 0
        || ((flags & flag_open_work_value) != 0 && (flags & flag_open_work_set) == 0))
      return fail(r.stream + ": unknown record flags " + std::to_string(flags));
    if (!bounded(count, log_record_events_max, "event count"))
      return false;
    r.events.reserve(std::min<size_t>(count, left() / event_bytes_min));
    for (uint64_t i = 0; i < count; ++i)
      if (!event(r.events.emplace_back()))
        return false;
    if ((flags & flag_open_work_set) != 0)
      r.open_work = (flags & flag_open_work_value) != 0;
    if ((flags & flag_request) != 0) {
      auto& q = r.request.emplace();
      uint64_t at = 0;
      if (!text(q.request_id, request_id_bytes_max, "request id")
          || !text(q.result, log_result_bytes_max, "request result")
          || !bounded(at, std::numeric_limits<int64_t>::max(), "request timestamp"))
        return false;
      r.request_at_ms = static_cast<int64_t>(at);
    }
    return true;
  }

private:
  std::span<const uint8_t> in_;
  size_t at_;
  std::string problem_;
};

template <class T>
T read_fixed(std::span<const uint8_t> bytes, size_t at) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i)
    v |= static_cast<T>(static_cast<T>(bytes[at + i]) << (8 * i));
  return v;
}

caf::error refused(std::span<const uint8_t> bytes, const std::string& problem) {
  // The position as the header says: trusted only once the CRC holds, but
  // the best name there is for a frame the CRC refuses.
  auto name = bytes.size() >= previous_offset
                ? "log frame at position " + std::to_string(read_fixed<uint64_t>(bytes, position_offset))
                : "log frame of " + std::to_string(bytes.size()) + " bytes";
  return make_error(errc::journal_failure, name + ": " + problem);
}

// The length, version and CRC of a frame, before any of its body is read.
std::string check_envelope(std::span<const uint8_t> bytes) {
  if (bytes.empty())
    return "empty";
  if (bytes[0] != log_frame_format_version)
    return "unknown format version " + std::to_string(bytes[0]) + " (this build reads " +
           std::to_string(log_frame_format_version) + ")";
  if (bytes.size() < frame_bytes_min)
    return "truncated: " + std::to_string(bytes.size()) + " bytes, a frame has at least " +
           std::to_string(frame_bytes_min);
  auto length = read_fixed<uint32_t>(bytes, length_offset);
  if (length > log_frame_bytes_max)
    return "length " + std::to_string(length) + " is over its bound " +
           std::to_string(log_frame_bytes_max);
  if (length > bytes.size())
    return "truncated: " + std::to_string(bytes.size()) + " of its " + std::to_string(length) +
           " bytes";
  if (length < bytes.size())
    return "its " + std::to_string(length) + " bytes are followed by " +
           std::to_string(bytes.size() - length) + " more";
  auto stored = read_fixed<uint32_t>(bytes, bytes.size() - crc_bytes);
  auto computed = crc32c(bytes.first(bytes.size() - crc_bytes));
  if (stored != computed)
    return "bad CRC (stored " + std::to_string(stored) + ", computed " +
           std::to_string(computed) + ")";
  return {};
}

} // namespace

namespace {

#if defined(__x86_64__)
// SSE 4.2's CRC32 instruction computes CRC32C (the Castagnoli polynomial),
// 8 bytes at a time: about thirty times the table-driven code below.
__attribute__((target("sse4.2"))) uint32_t crc32c_sse42(const uint8_t* p, size_t n) noexcept {
  uint64_t crc = 0xFFFFFFFFu;
  for (; n >= 8; p += 8, n -= 8) {
    uint64_t word;
    std::memcpy(&word, p, 8);
    crc = _mm_crc32_u64(crc, word);
  }
  auto c = static_cast<uint32_t>(crc);
  for (; n > 0; ++p, --n)
    c = _mm_crc32_u8(c, *p);
  return c ^ 0xFFFFFFFFu;
}
#endif

} // namespace

uint32_t crc32c(std::span<const uint8_t> bytes) noexcept {
#if defined(__x86_64__)
  static const bool hardware = __builtin_cpu_supports("sse4.2");
  if (hardware)
    return crc32c_sse42(bytes.data(), bytes.size());
#endif
  boost::crc_optimal<32, 0x1EDC6F41, 0xFFFFFFFF, 0xFFFFFFFF, true, true> crc;
  crc.process_bytes(bytes.data(), bytes.size());
  return crc.checksum();
}

uint32_t trailing_crc32c(std::span<const uint8_t> bytes) noexcept {
  return bytes.size() < crc_bytes ? 0 : read_fixed<uint32_t>(bytes, bytes.size() - crc_bytes);
}

frame_hash hash_of_frame(std::span<const uint8_t> bytes) {
  frame_hash h{};
  unsigned int size = 0;
  // EVP_Digest fails only when OpenSSL cannot allocate or has no SHA-256,
  // neither of which a caller could react to.
  auto ok = EVP_Digest(bytes.data(), bytes.size(), h.data(), &size, EVP_sha256(), nullptr);
  WAGER_ASSERT(ok == 1 && size == h.size(), "SHA-256 of a log frame");
  return h;
}

caf::expected<frame_bytes> encode(const log_frame& frame) {
  auto name = "log frame at position " + std::to_string(frame.position) + ": ";
  if (auto f = check_header(frame.position, frame.previous))
    return make_error(f->code, name + f->what);
  if (frame.records.size() > log_frame_records_max)
    return make_error(errc::too_large, name + std::to_string(frame.records.size()) +
                                         " records, more than " +
                                         std::to_string(log_frame_records_max));
  uint64_t size = header_bytes + varint_size(frame.records.size()) + crc_bytes;
  for (auto& r : frame.records) {
    if (auto f = check_record(r, frame.position))
      return make_error(f->code, name + f->what);
    size += record_size(r);
  }
  if (size > log_frame_bytes_max)
    return make_error(errc::too_large, name + std::to_string(size) + " bytes, more than " +
                                         std::to_string(log_frame_bytes_max));
  frame_bytes out;
  out.reserve(size);
  frame_writer w{out};
  w.u8(log_frame_format_version);
  w.fixed(static_cast<uint32_t>(size));
  w.fixed(frame.position);
  out.insert(out.end(), frame.previous.begin(), frame.previous.end());
  w.varint(frame.records.size());
  for (auto& r : frame.records)
    write_record(w, r);
  w.fixed(crc32c(out));
  WAGER_ASSERT(out.size() == size, "log frame size computed before encoding");
  return out;
}

caf::expected<log_frame> decode_log_frame(std::span<const uint8_t> bytes) {
  if (auto problem = check_envelope(bytes); !problem.empty())
    return refused(bytes, problem);
  log_frame frame;
  frame.position = read_fixed<uint64_t>(bytes, position_offset);
  std::copy_n(bytes.begin() + previous_offset, frame.previous.size(), frame.previous.begin());
  if (auto f = check_header(frame.position, frame.previous))
    return refused(bytes, f->what);
  frame_reader in{bytes.first(bytes.size() - crc_bytes), header_bytes};
  uint64_t count = 0;
  if (!in.bounded(count, log_frame_records_max, "record count"))
    return refused(bytes, in.problem());
  frame.records.reserve(std::min<size_t>(count, in.left() / record_bytes_min));
  for (uint64_t i = 0; i < count; ++i) {
    auto& r = frame.records.emplace_back();
    if (!in.record(r))
      return refused(bytes, "record " + std::to_string(i) + ": " + in.problem());
    if (auto f = check_record(r, frame.position))
      return refused(bytes, "record " + std::to_string(i) + ": " + f->what);
  }
  if (!in.done())
    return refused(bytes, std::to_string(in.left()) + " bytes after its last record");
  return frame;
}

} // namespace wager
