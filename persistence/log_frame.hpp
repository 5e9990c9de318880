#pragma once

// The frame of the ordered log: what one group commit appends at the end of
// the journal (DESIGN.md, "Persistence: event sourcing on an ordered log").
// A frame holds the records of one batch, its position in the log, and the
// SHA-256 of the frame before it, so the log is a hash chain: changing,
// removing or reordering a frame breaks the link to the next one.
//
// Frames are encoded in a compact, versioned binary form with a CRC32C over
// every byte before the CRC. encode() refuses a frame that decode_log_frame()
// would refuse, and decode_log_frame() checks every length against the bytes
// left and the bounds below before it reads or allocates, so a damaged or
// hostile frame is refused, never read out of bounds.
//
// Nothing here touches the disk: this is the format, shared by the writer
// that appends frames, the readers that rebuild entities and the verifier
// (log_chain.hpp checks a run of frames).
//
// Byte layout, format version 1
// -----------------------------
// u8, u32 and u64 are unsigned, fixed width, little-endian. varint is
// unsigned LEB128: 7 bits a byte, least significant group first, the high
// bit set on every byte but the last; at most 10 bytes, and canonical (no
// last byte 0x00 after the first, the 10th byte 0 or 1), so every value has
// one encoding and a decoded frame encodes to the bytes it came from.
// bytes(max) is a varint length n <= max followed by n bytes.
//
//   frame:
//     offset 0   u8      format version, 1
//     offset 1   u32     length of the whole frame in bytes, this header and
//                        the CRC included; equals the size of the blob,
//                        at most log_frame_bytes_max
//     offset 5   u64     position, >= 1
//     offset 13  32 B    previous: SHA-256 of the previous frame's bytes (all
//                        of them, its CRC included); zeros at position 1
//     offset 45  varint  record count, <= log_frame_records_max
//                record  x count
//     length-4   u32     CRC32C (Castagnoli: polynomial 0x1EDC6F41,
//                        reflected, initial value and final xor 0xFFFFFFFF)
//                        of bytes [0, length - 4)
//
//   record:
//     bytes(stream_bytes_max)  stream, "kind/key" (valid_stream_name)
//     varint                   first_seq, >= 1; first_seq + event count
//                              does not overflow 64 bits
//     varint                   previous_position, < the frame's position
//     u8                       flags: 0x01 a request follows the events,
//                              0x02 open_work is set, 0x04 its value (only
//                              with 0x02); other bits 0
//     varint                   event count, <= log_record_events_max; 0
//                              only with a request
//     event x count
//     if flags & 0x01:
//       bytes(request_id_bytes_max)  request id, not empty
//       bytes(log_result_bytes_max)  request result
//       varint                       request_at_ms, 0..2^63-1
//
//   event:
//     bytes(event_type_bytes_max)  type, not empty
//     varint                       version, 1..2^32-1
//     bytes(log_payload_bytes_max) payload
//     varint                       at_ms, 0..2^63-1
//
// A reader checks, in this order: the version byte, the size (at least 50
// bytes, the least a frame takes, and equal to the length field), the CRC,
// then the fields in order, each length against its bound and the bytes
// left, and last that no bytes follow the last record. A newer format
// changes the version byte; a reader refuses a version it does not know.

#include "wager/persistence/event.hpp"
#include "wager/persistence/journal.hpp"

#include <caf/expected.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

namespace wager {

// --- bounds ----------------------------------------------------------------
//
// The largest values any valid journal_options allows (journal_options.cpp),
// so every append a configured journal accepts fits in a frame.

inline constexpr uint8_t log_frame_format_version = 1;
// events_per_append_max is at most 65536; so is batch_max.
inline constexpr uint32_t log_record_events_max = 65536;
inline constexpr uint32_t log_frame_records_max = 65536;
// event_bytes_max is at most 64 MiB, request_result_bytes_max 16 MiB.
inline constexpr uint32_t log_payload_bytes_max = 64u << 20;
inline constexpr uint32_t log_result_bytes_max = 16u << 20;
// SQLite's default SQLITE_MAX_LENGTH: the largest blob a row holds. A frame
// is one row, so a batch that would encode larger must be split.
inline constexpr uint32_t log_frame_bytes_max = 1'000'000'000;

// --- the frame -------------------------------------------------------------

using frame_hash = std::array<uint8_t, 32>; // SHA-256
using frame_bytes = std::vector<uint8_t>;   // one encoded frame

struct log_event {
  std::string type;     // 1..event_type_bytes_max bytes
  uint32_t version = 1; // >= 1
  std::string payload;  // opaque bytes, at most log_payload_bytes_max
  int64_t at_ms = 0;    // ms since the epoch, >= 0

  friend bool operator==(const log_event&, const log_event&) = default;
};

// One append: the events it gave a stream, the request it answered, and
// where the stream's previous record is.
struct log_record {
  std::string stream;                    // "kind/key" (valid_stream_name)
  uint64_t first_seq = 1;                // seq of events[0]; with no events,
                                         // the seq the next event will get
  std::vector<log_event> events;         // at most log_record_events_max
  std::optional<request_record> request; // idempotency record
  std::optional<bool> open_work;         // unset: the stream's mark stays
  // Position of the previous frame holding a record of this stream, 0 if
  // none: an entity's records after a checkpoint are found by following
  // these back from its last record, without scanning the whole log.
  uint64_t previous_position = 0;        // < the frame's position
  // When the request was answered (ms since the epoch, >= 0): the
  // retention of idempotency records counts from it. Encoded only with a
  // request.
  int64_t request_at_ms = 0;

  friend bool operator==(const log_record&, const log_record&) = default;
};

struct log_frame {
  uint64_t position = 1;  // 1 for the first frame of the log, then +1 each
  frame_hash previous{};  // SHA-256 of the frame before; zeros before the first
  std::vector<log_record> records; // at most log_frame_records_max

  friend bool operator==(const log_frame&, const log_frame&) = default;
};

// --- the codec -------------------------------------------------------------

// The frame's bytes. Refused when it breaks a bound or an invariant above
// (errc::too_large for sizes, errc::invalid_field otherwise), the same
// checks decode_log_frame applies, so whatever is encoded decodes.
caf::expected<frame_bytes> encode(const log_frame& frame);

// The frame in `bytes`, which must be exactly one frame. Refused with
// errc::journal_failure, the message naming the frame's position (as its
// header says, when the header is there) and what is wrong: truncated,
// trailing bytes, bad CRC, unknown format version, a field over its bound,
// a malformed varint, a broken invariant.
caf::expected<log_frame> decode_log_frame(std::span<const uint8_t> bytes);

// CRC32C (Castagnoli, as iSCSI and ext4 use it) of `bytes`.
uint32_t crc32c(std::span<const uint8_t> bytes) noexcept;

// The CRC32C that `bytes` end with (u32, little-endian): a frame's, which
// the log table keeps in its crc column beside it, or an index
// checkpoint's. 0 when there are fewer than 4 bytes. Read, not checked.
uint32_t trailing_crc32c(std::span<const uint8_t> bytes) noexcept;

// SHA-256 of a frame's bytes (all of them, its CRC included): what the next
// frame holds as `previous`.
frame_hash hash_of_frame(std::span<const uint8_t> bytes);

} // namespace wager
