#include "wager/persistence/pg_journal.hpp"

#include "wager/persistence/journal_metrics.hpp"
#include "wager/persistence/journal_store.hpp"
#include "wager/persistence/journal_writer.hpp"
#include "wager/persistence/log_frame.hpp"
#include "wager/persistence/pg_db.hpp"
#include "wager/persistence/reader_pool.hpp"
#include "wager/persistence/shard_leases.hpp"
#include "wager/runtime/entity.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <cstring>
#include <unordered_map>

namespace wager {

// The helpers have a namespace of their own: the library is built as a
// unity build, where the anonymous namespaces of its files meet.
namespace pgj {
namespace {

// Every statement below names its tables as the schema has them.
const char* const create_schema_sql = R"(
CREATE TABLE wager_journal (
  id integer PRIMARY KEY CHECK (id = 1),
  application text NOT NULL,
  schema_version integer NOT NULL,
  log_position bigint NOT NULL,
  log_hash bytea NOT NULL
);
CREATE TABLE streams (
  stream text COLLATE "C" PRIMARY KEY,
  kind text COLLATE "C" NOT NULL,
  last_seq bigint NOT NULL,
  open_work boolean NOT NULL DEFAULT false
);
CREATE INDEX streams_by_kind ON streams (kind, stream);
CREATE TABLE events (
  stream text COLLATE "C" NOT NULL,
  seq bigint NOT NULL CHECK (seq > 0),
  position bigint NOT NULL,
  ord integer NOT NULL,
  type text NOT NULL,
  version integer NOT NULL,
  payload text NOT NULL,
  at_ms bigint NOT NULL,
  checksum bigint NOT NULL,
  PRIMARY KEY (stream, seq)
);
CREATE INDEX events_by_position ON events (position, ord);
CREATE TABLE frames (
  position bigint PRIMARY KEY,
  hash bytea NOT NULL,
  at_ms bigint NOT NULL
);
CREATE TABLE requests (
  stream text COLLATE "C" NOT NULL,
  request_id text COLLATE "C" NOT NULL,
  seq bigint NOT NULL,
  result text NOT NULL,
  at_ms bigint NOT NULL,
  checksum bigint NOT NULL,
  PRIMARY KEY (stream, request_id)
);
CREATE INDEX requests_by_age ON requests (at_ms);
CREATE TABLE snapshots (
  stream text COLLATE "C" PRIMARY KEY,
  seq bigint NOT NULL,
  version integer NOT NULL,
  state text NOT NULL,
  at_ms bigint NOT NULL,
  checksum bigint NOT NULL
);
)";

// Version 2, on top of version 1: who owns each shard and since when (a
// take raises the epoch, and is logged with the log position it follows),
// the nodes' member rows, and the node that wrote each frame.
const char* const schema_v2_sql = R"(
CREATE TABLE wager_leases (
  shard integer PRIMARY KEY CHECK (shard >= 0),
  owner text COLLATE "C",
  epoch bigint NOT NULL CHECK (epoch >= 0)
);
CREATE TABLE wager_lease_takes (
  shard integer NOT NULL,
  epoch bigint NOT NULL,
  owner text COLLATE "C" NOT NULL,
  position bigint NOT NULL,
  taken_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (shard, epoch)
);
CREATE TABLE wager_members (
  member text COLLATE "C" PRIMARY KEY,
  node text COLLATE "C" NOT NULL,
  address text NOT NULL,
  incarnation bigint NOT NULL,
  status text NOT NULL,
  last_seen timestamptz NOT NULL
);
ALTER TABLE frames ADD COLUMN node text COLLATE "C";
)";

// A node's member row, refreshed.
const char* const member_upsert_sql =
  "INSERT INTO wager_members (member, node, address, incarnation, status, last_seen) VALUES "
  "($1, $2, $3, $4, $5, now()) ON CONFLICT (member) DO UPDATE SET address = excluded.address, "
  "incarnation = excluded.incarnation, status = excluded.status, last_seen = excluded.last_seen";

constexpr std::string_view application = "WAGR";
// Taken while the schema is checked or created, so that nodes starting
// together on an empty database create it once.
constexpr std::string_view schema_lock = "SELECT pg_advisory_xact_lock(2003464530)";

// The seq cache is dropped whole when it outgrows this: a miss costs one
// indexed read.
constexpr size_t seq_cache_max = 1 << 18;

caf::error corrupt(const std::string& what) {
  return make_error(errc::journal_failure, "journal is corrupt: " + what);
}

uint64_t as_unsigned(int64_t v) {
  return static_cast<uint64_t>(v);
}

pg::param bytea(std::span<const uint8_t> bytes) {
  static constexpr char digits[] = "0123456789abcdef";
  std::string out = "\\x";
  out.reserve(2 + bytes.size() * 2);
  for (auto b : bytes) {
    out += digits[b >> 4];
    out += digits[b & 15];
  }
  return out;
}

// A bytea column in the server's hex output ("\x..."), as 32 bytes.
std::optional<frame_hash> hash_of(std::string_view text) {
  if (!text.starts_with("\\x") || text.size() != 2 + 64)
    return std::nullopt;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9')
      return c - '0';
    if (c >= 'a' && c <= 'f')
      return c - 'a' + 10;
    return -1;
  };
  frame_hash h{};
  for (size_t i = 0; i < h.size(); ++i) {
    auto hi = nibble(text[2 + 2 * i]);
    auto lo = nibble(text[3 + 2 * i]);
    if (hi < 0 || lo < 0)
      return std::nullopt;
    h[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return h;
}

void put_u64(std::vector<uint8_t>& out, uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<uint8_t>(v >> shift));
}

// A one-dimensional array parameter in PostgreSQL's text form: {1,2} or
// {"a","b"}, elements quoted with '"' and '\\' escaped.
class pg_array {
public:
  void number(int64_t v) { add(std::to_string(v)); }
  void text(std::string_view v) {
    std::string quoted = "\"";
    for (char c : v) {
      if (c == '"' || c == '\\')
        quoted += '\\';
      quoted += c;
    }
    add(quoted + "\"");
  }
  pg::param done() { return out_ + "}"; }

private:
  void add(const std::string& element) {
    out_ += out_.size() == 1 ? "" : ",";
    out_ += element;
  }
  std::string out_ = "{";
};

// The frame's hash: SHA-256 over the previous frame's hash, the position,
// and each event's stream, seq and row checksum in the order written. The
// checksums cover the events' content, so the chain covers the log.
struct frame_digest {
  std::vector<uint8_t> bytes;

  void start(const frame_hash& previous, uint64_t position) {
    sizes.clear();
    bytes.assign(previous.begin(), previous.end());
    put_u64(bytes, position);
  }
  void add(std::string_view stream, uint64_t seq, uint64_t checksum) {
    sizes.push_back(bytes.size());
    bytes.insert(bytes.end(), stream.begin(), stream.end());
    bytes.push_back(0);
    put_u64(bytes, seq);
    put_u64(bytes, checksum);
  }
  // Takes the last `count` events back out (a write that did not happen).
  void drop(size_t count) {
    if (count == 0)
      return;
    bytes.resize(sizes[sizes.size() - count]);
    sizes.resize(sizes.size() - count);
  }
  std::vector<size_t> sizes; // where each event's part begins
  frame_hash finish() const { return hash_of_frame(bytes); }
};

caf::expected<pg::connection> connect(const journal_options& options, const char* role) {
  auto c = pg::connection::open(options.url, std::string{"wager-journal-"} + role,
                                options.connect_timeout_s);
  if (!c)
    return c.error();
  // A batch waits for another node's batch at most busy_timeout_ms, as on
  // SQLite (lock_not_available is then errc::unavailable).
  auto timeout = std::max<uint32_t>(options.busy_timeout_ms, 1);
  if (auto err = c->exec("SET lock_timeout = " + std::to_string(timeout), "setting lock_timeout"))
    return err;
  // A writer that stops halfway through a batch (its host cut off, the
  // process frozen) must not hold the head's lock, and with it every node's
  // writes, until TCP notices: the server ends such a session after half
  // the time the other nodes' batches wait for the lock (at least 1 s), so
  // theirs go on. A live writer never idles inside its transaction longer
  // than a round trip.
  if (std::string_view{role} == "writer") {
    auto idle = std::max<uint32_t>(timeout / 2, 1000);
    if (auto err = c->exec("SET idle_in_transaction_session_timeout = " + std::to_string(idle),
                           "setting idle_in_transaction_session_timeout"))
      return err;
  }
  return c;
}

// Checks the schema, creating it in an empty database: one transaction,
// under an advisory lock, so concurrent openings create it once.
caf::error prepare_schema(pg::connection& db, const journal_options& options) {
  auto where = pg::redacted(options.url);
  if (auto err = db.exec("BEGIN", "starting the schema check of " + where))
    return err;
  auto result = [&]() -> caf::error {
    if (auto err = db.exec(std::string{schema_lock}, "locking the schema of " + where))
      return err;
    auto exists = db.query("SELECT to_regclass('wager_journal') IS NOT NULL", {},
                           "reading the schema of " + where);
    if (!exists)
      return exists.error();
    if (exists->text(0, 0) != "t") {
      auto tables = db.query("SELECT count(*) FROM pg_catalog.pg_tables WHERE schemaname = "
                             "current_schema()",
                             {}, "reading the tables of " + where);
      if (!tables)
        return tables.error();
      if (tables->int64(0, 0) != 0)
        return make_error(errc::journal_failure,
                          "database " + where +
                            " holds other tables and no Wager journal: give the journal a "
                            "database (or schema) of its own");
      if (!options.create_if_missing)
        return make_error(errc::journal_failure, "database " + where + " holds no journal");
      if (auto err = db.exec(create_schema_sql, "creating the journal's tables in " + where))
        return err;
      if (auto err = db.exec(schema_v2_sql, "creating the lease tables in " + where))
        return err;
      auto head = db.query("INSERT INTO wager_journal (id, application, schema_version, "
                           "log_position, log_hash) VALUES (1, $1, $2, 0, $3)",
                           {std::string{application}, pg::text(pg_schema_version),
                            bytea(frame_hash{})},
                           "writing the journal's head in " + where);
      return head ? caf::error{} : head.error();
    }
    auto head = db.query("SELECT application, schema_version FROM wager_journal WHERE id = 1",
                         {}, "reading the journal's head in " + where);
    if (!head)
      return head.error();
    if (head->rows() != 1 || head->text(0, 0) != application)
      return make_error(errc::journal_failure, "database " + where + " is not a Wager journal");
    auto version = head->int64(0, 1);
    if (version > pg_schema_version)
      return make_error(errc::journal_failure,
                        "journal " + where + " has schema version " + std::to_string(version) +
                          ", newer than this release's " + std::to_string(pg_schema_version) +
                          ": run a newer release");
    // Migrations from older versions, in this transaction.
    if (version < 2) {
      if (auto err = db.exec(schema_v2_sql, "adding the lease tables to " + where))
        return err;
      auto bumped = db.query("UPDATE wager_journal SET schema_version = $1 WHERE id = 1",
                             {pg::text(pg_schema_version)},
                             "recording schema version 2 in " + where);
      if (!bumped)
        return bumped.error();
      log().info("journal {}: schema migrated from version {} to {}", where, version,
                 pg_schema_version);
    }
    return {};
  }();
  if (result) {
    db.exec("ROLLBACK", "rolling back the schema check");
    return result;
  }
  return db.exec("COMMIT", "committing the schema of " + where);
}

// A row per shard in the lease table, for the shard count of `leases`: a
// journal whose leases were made for another count belongs to another
// cluster layout, and is refused.
caf::error prepare_leases(pg::connection& db, const journal_options& options) {
  if (!options.leases)
    return {};
  auto where = pg::redacted(options.url);
  auto shards = static_cast<int64_t>(options.leases->shards());
  auto rows = db.query("SELECT count(*), coalesce(max(shard) + 1, 0) FROM wager_leases", {},
                       "reading the shard leases in " + where);
  if (!rows)
    return rows.error();
  auto count = rows->int64(0, 0);
  if (count != 0 && (count != shards || rows->int64(0, 1) != shards))
    return make_error(errc::invalid_field,
                      "journal " + where + " has leases for " + std::to_string(count) +
                        " shards, and this node is set for " + std::to_string(shards) +
                        ": every node of a cluster needs the same --shards");
  auto made = db.query("INSERT INTO wager_leases (shard, owner, epoch) SELECT s, NULL, 0 "
                       "FROM generate_series(0, $1::integer - 1) AS s ON CONFLICT DO NOTHING",
                       {pg::text(shards)}, "making the shard leases in " + where);
  return made ? caf::error{} : made.error();
}

// --- the writer's store ---

class pg_store final : public journal_store {
public:
  pg_store(const journal_options& options, journal_metrics* metrics)
    : options_(options), metrics_(metrics) {}

  caf::error begin() override {
    auto head = lock_head();
    // A connection that died while idle (the server restarted, a pooler or
    // NAT dropped it) shows only now: nothing was written, so once more on
    // a new one.
    if (!head && !db_.usable())
      head = lock_head();
    if (!head)
      return head.error();
    if (head->rows() != 1)
      return corrupt("the journal's head row is missing");
    position_ = head->int64(0, 0);
    auto h = hash_of(head->text(0, 1));
    if (!h)
      return corrupt("the journal's head holds a hash that is not 32 bytes");
    hash_ = *h;
    // Another node committed events since our last batch: our cached seqs
    // may be stale.
    if (position_ != cache_position_ || seq_cache_.size() > seq_cache_max)
      seq_cache_.clear();
    digest_.start(hash_, static_cast<uint64_t>(position_ + 1));
    frame_events_ = 0;
    return {};
  }

  // Connects if needed, then BEGIN and the lock on the head, in one round
  // trip.
  caf::expected<pg::result> lock_head() {
    if (!db_.usable()) {
      auto c = connect(options_, "writer");
      if (!c)
        return c.error();
      db_ = std::move(*c);
      seq_cache_.clear();
      cache_position_ = -1;
    }
    return db_.query_script("BEGIN; SELECT log_position, log_hash FROM wager_journal "
                            "WHERE id = 1 FOR UPDATE",
                            "starting a journal transaction");
  }

  // The leases of the shards the batch writes, locked for the transaction:
  // held here, taken here where this node may, refused otherwise
  // (shard_leases.hpp has the rules).
  caf::error admit(const std::vector<const std::string*>& streams) override {
    refused_.clear();
    taking_.clear();
    auto* leases = options_.leases.get();
    if (leases == nullptr || streams.empty())
      return {};
    node_ = leases->owner();
    std::vector<uint32_t> shards;
    for (auto* stream : streams)
      if (auto s = leases->shard_of_stream(*stream))
        shards.push_back(*s);
    std::sort(shards.begin(), shards.end());
    shards.erase(std::unique(shards.begin(), shards.end()), shards.end());
    if (shards.empty())
      return {};
    if (node_.empty()) {
      for (auto s : shards)
        refused_[s] = "this node has not joined its cluster yet";
      count_refusals(streams);
      return {};
    }
    pg_array wanted;
    for (auto s : shards)
      wanted.number(s);
    auto rows = db_.query(
      "SELECT l.shard, l.owner, l.epoch, coalesce(m.status = 'left' OR m.last_seen < "
      "now() - $2::bigint * interval '1 millisecond', true) FROM wager_leases l "
      "LEFT JOIN wager_members m ON m.member = l.owner WHERE l.shard = ANY($1::integer[]) "
      "ORDER BY l.shard FOR UPDATE OF l",
      {wanted.done(), pg::text(static_cast<int64_t>(leases->owner_silence.count()))},
      "reading the leases of " + std::to_string(shards.size()) + " shards");
    if (!rows)
      return rows.error();
    std::unordered_map<uint32_t, int> row_of;
    for (int i = 0; i < rows->rows(); ++i)
      row_of[static_cast<uint32_t>(rows->int64(i, 0))] = i;
    pg_array take;
    for (auto s : shards) {
      auto i = row_of.find(s);
      if (i == row_of.end()) {
        refused_[s] = "shard " + std::to_string(s) + " has no lease in the journal";
        continue;
      }
      auto owner = rows->is_null(i->second, 1) ? std::string{}
                                                : std::string{rows->text(i->second, 1)};
      auto epoch = as_unsigned(rows->int64(i->second, 2));
      bool gone = rows->text(i->second, 3) == "t";
      auto held = leases->held(s);
      if (held != 0 && owner == node_ && epoch == held) {
        leases->confirm(s);
        continue;
      }
      // Handed over from the owner the table names: taken from it.
      if (!owner.empty() && owner != node_ && leases->granted(s, owner)) {
        take.number(s);
        continue;
      }
      // Held here at an older epoch: another node took it; this node
      // drops it (and takes it again only by a later grant, or once that
      // node's row is silent, in a later batch).
      if (held == 0 && (owner.empty() || owner == node_ || gone)) {
        take.number(s);
        continue;
      }
      if (held != 0) {
        leases->lose(s);
        if (metrics_ != nullptr)
          metrics_->leases_lost.Increment();
        log().warn("journal: shard {} was taken by {} at epoch {}; this node held epoch {} and "
                   "no longer owns it",
                   s, owner, epoch, held);
      }
      refused_[s] = "shard " + std::to_string(s) + " is owned by node " + owner +
                    " (lease epoch " + std::to_string(epoch) + "), not this one: retry";
    }
    if (!refused_.empty())
      count_refusals(streams);
    if (auto list = take.done(); *list != "{}") {
      // A node that owns a lease has a member row, from its first take on:
      // without one, its shards would look free to every other node.
      auto m = leases->member();
      auto row = db_.query(member_upsert_sql,
                           {node_, m.node_id, m.address, pg::text(m.incarnation), m.status},
                           "writing the member row of " + node_);
      if (!row)
        return row.error();
      auto taken = db_.query(
        "WITH t AS (UPDATE wager_leases SET owner = $1, epoch = epoch + 1 "
        "WHERE shard = ANY($2::integer[]) RETURNING shard, epoch) "
        "INSERT INTO wager_lease_takes (shard, epoch, owner, position) "
        "SELECT shard, epoch, $1, $3 FROM t RETURNING shard, epoch",
        {node_, list, pg::text(position_)}, "taking shard leases");
      if (!taken)
        return taken.error();
      for (int i = 0; i < taken->rows(); ++i)
        taking_.emplace_back(static_cast<uint32_t>(taken->int64(i, 0)),
                             as_unsigned(taken->int64(i, 1)));
    }
    return {};
  }

  std::string refused(const std::string& stream) const override {
    if (refused_.empty())
      return {};
    auto s = options_.leases->shard_of_stream(stream);
    if (!s)
      return {};
    auto i = refused_.find(*s);
    return i == refused_.end() ? std::string{} : i->second;
  }

  caf::expected<uint64_t> last_seq(const std::string& stream) override {
    if (auto i = seq_cache_.find(stream); i != seq_cache_.end())
      return i->second;
    auto r = db_.query("SELECT last_seq FROM streams WHERE stream = $1", {stream},
                       "reading the last seq of " + stream);
    if (!r)
      return r.error();
    auto seq = r->rows() == 0 ? uint64_t{0} : as_unsigned(r->int64(0, 0));
    seq_cache_.emplace(stream, seq);
    return seq;
  }

  caf::expected<std::optional<uint64_t>> event_checksum(const std::string& stream,
                                                        uint64_t seq) override {
    auto r = db_.query("SELECT checksum FROM events WHERE stream = $1 AND seq = $2",
                       {stream, pg::text(seq)},
                       "reading event " + std::to_string(seq) + " of " + stream);
    if (!r)
      return r.error();
    if (r->rows() == 0)
      return std::optional<uint64_t>{};
    return std::optional<uint64_t>{as_unsigned(r->int64(0, 0))};
  }

  // One statement, one round trip: the stored request (if any), then, only
  // if it was new, the events and the stream's row. A request id already
  // stored writes nothing (request_taken).
  result write_append(const append_request& r, int64_t at_ms, caf::error& error) override {
    auto last = r.expected_seq + r.events.size();
    pg::param request_id;
    pg::param request_result;
    pg::param request_sum;
    if (r.request) {
      request_id = r.request->request_id;
      request_result = r.request->result;
      request_sum = pg::text(row_checksum(r.stream, last, r.request->request_id, 0,
                                          r.request->result));
    }
    pg_array seqs, ords, types, versions, payloads, sums;
    auto seq = r.expected_seq;
    for (auto& e : r.events) {
      ++seq;
      auto sum = row_checksum(r.stream, seq, e.type, e.version, e.payload);
      seqs.number(static_cast<int64_t>(seq));
      ords.number(frame_events_ + static_cast<int64_t>(seq - r.expected_seq) - 1);
      types.text(e.type);
      versions.number(e.version);
      payloads.text(e.payload);
      sums.number(static_cast<int64_t>(sum));
      digest_.add(r.stream, seq, sum);
    }
    pg::param open_work;
    if (r.open_work)
      open_work = *r.open_work ? "true" : "false";
    auto written = db_.query(
      "WITH req AS (INSERT INTO requests (stream, request_id, seq, result, at_ms, checksum) "
      "SELECT $1, $2, $3, $4, $5, $6 WHERE $2::text IS NOT NULL ON CONFLICT DO NOTHING "
      "RETURNING 1), "
      "go AS (SELECT $2::text IS NULL OR EXISTS (SELECT 1 FROM req) AS ok), "
      "ev AS (INSERT INTO events (stream, seq, position, ord, type, version, payload, at_ms, "
      "checksum) SELECT $1, e.seq, $7, e.ord, e.type, e.version, e.payload, $5, e.checksum "
      "FROM go, unnest($8::bigint[], $9::integer[], $10::text[], $11::integer[], $12::text[], "
      "$13::bigint[]) AS e(seq, ord, type, version, payload, checksum) WHERE go.ok RETURNING 1), "
      "st AS (INSERT INTO streams (stream, kind, last_seq, open_work) "
      "SELECT $1, $14, $3, coalesce($15::boolean, false) FROM go "
      "WHERE go.ok AND cardinality($8::bigint[]) > 0 ON CONFLICT (stream) DO UPDATE SET "
      "last_seq = excluded.last_seq, open_work = coalesce($15::boolean, streams.open_work) "
      "RETURNING 1) "
      "SELECT (SELECT ok FROM go), (SELECT count(*) FROM ev), (SELECT count(*) FROM st)",
      {r.stream, request_id, pg::text(last), request_result, pg::text(at_ms), request_sum,
       pg::text(static_cast<uint64_t>(position_ + 1)), seqs.done(), ords.done(), types.done(),
       versions.done(), payloads.done(), sums.done(), std::string{kind_of(r.stream)}, open_work},
      "writing " + std::to_string(r.events.size()) + " events of " + r.stream);
    if (!written) {
      digest_.drop(r.events.size());
      return failed(written.error(), error);
    }
    if (written->text(0, 0) != "t") {
      digest_.drop(r.events.size());
      return result::request_taken;
    }
    frame_events_ += static_cast<int32_t>(r.events.size());
    if (!r.events.empty())
      seq_cache_[r.stream] = last;
    return result::ok;
  }

  caf::expected<std::optional<uint64_t>> snapshot_seq(const std::string& stream) override {
    auto r = db_.query("SELECT seq FROM snapshots WHERE stream = $1", {stream},
                       "reading the snapshot of " + stream);
    if (!r)
      return r.error();
    if (r->rows() == 0)
      return std::optional<uint64_t>{};
    return std::optional<uint64_t>{as_unsigned(r->int64(0, 0))};
  }

  result write_snapshot(const snapshot& snap, int64_t at_ms, caf::error& error) override {
    auto sum = row_checksum(snap.stream, snap.seq, "snapshot", snap.version, snap.state);
    auto r = db_.query("INSERT INTO snapshots (stream, seq, version, state, at_ms, checksum) "
                       "VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (stream) DO UPDATE SET "
                       "seq = excluded.seq, version = excluded.version, state = excluded.state, "
                       "at_ms = excluded.at_ms, checksum = excluded.checksum",
                       {snap.stream, pg::text(snap.seq), pg::text(int64_t{snap.version}),
                        snap.state, pg::text(at_ms), pg::text(sum)},
                       "saving the snapshot of " + snap.stream);
    if (!r)
      return failed(r.error(), error);
    return result::ok;
  }

  caf::error commit(size_t writes) override {
    auto next = position_;
    // One round trip: the frame, the head, the commit. The values are
    // numbers and hex this code wrote, so they go into the text as literals.
    std::string script;
    if (frame_events_ > 0) {
      next = position_ + 1;
      auto h = *bytea(digest_.finish());
      script = "INSERT INTO frames (position, hash, at_ms, node) VALUES (" +
               std::to_string(next) + ", '" + h + "', " + std::to_string(journal_clock_ms()) +
               ", " + (node_.empty() ? std::string{"NULL"} : db_.literal(node_)) +
               "); UPDATE wager_journal SET log_position = " + std::to_string(next) +
               ", log_hash = '" + h + "' WHERE id = 1; ";
    }
    script += "COMMIT";
    auto done = db_.query_script(script, "committing a batch of " + std::to_string(writes) +
                                           " journal writes");
    if (!done)
      return done.error();
    cache_position_ = next;
    for (auto [s, epoch] : taking_) {
      options_.leases->hold(s, epoch);
      log().info("journal: node {} took shard {} at lease epoch {}", node_, s, epoch);
    }
    if (metrics_ != nullptr && options_.leases) {
      metrics_->lease_takes.Increment(static_cast<double>(taking_.size()));
      metrics_->leases_held.Set(static_cast<double>(options_.leases->held_count()));
    }
    taking_.clear();
    return {};
  }

  void rollback() override {
    taking_.clear();
    if (db_.usable() && !db_.idle())
      db_.exec("ROLLBACK", "rolling back a journal batch");
    seq_cache_.clear();
    cache_position_ = -1;
  }

  caf::expected<uint64_t> prune_requests(int64_t cutoff_ms, uint32_t max_count) override {
    if (!db_.usable()) {
      auto c = connect(options_, "writer");
      if (!c)
        return c.error();
      db_ = std::move(*c);
      seq_cache_.clear();
      cache_position_ = -1;
    }
    auto r = db_.query("DELETE FROM requests WHERE ctid IN (SELECT ctid FROM requests "
                       "WHERE at_ms < $1 ORDER BY at_ms LIMIT $2)",
                       {pg::text(cutoff_ms), pg::text(int64_t{max_count})},
                       "pruning stored requests");
    if (!r)
      return r.error();
    return r->changed();
  }

private:
  // A write the server refused for its own data (SQLSTATE class 22, a value
  // a column cannot hold; 23, a constraint) fails only this write; anything
  // else (the connection, the disk, a timeout) the batch.
  result failed(const caf::error& why, caf::error& error) const {
    error = why;
    auto& state = db_.last_sqlstate();
    bool own_data = state.starts_with("22") || state.starts_with("23");
    return own_data ? result::op_failed : result::storage_failed;
  }

  void count_refusals(const std::vector<const std::string*>& streams) {
    for (auto* stream : streams)
      if (!refused(*stream).empty()) {
        options_.leases->count_refusal();
        if (metrics_ != nullptr)
          metrics_->lease_refusals.Increment();
      }
    if (metrics_ != nullptr)
      metrics_->leases_held.Set(static_cast<double>(options_.leases->held_count()));
  }

  const journal_options& options_;
  journal_metrics* metrics_;
  pg::connection db_;
  // This node, as the leases name it; empty without leases.
  std::string node_;
  // The shards this attempt may not write, and why; those it took, with
  // their new epochs, held once the commit succeeds.
  std::unordered_map<uint32_t, std::string> refused_;
  std::vector<std::pair<uint32_t, uint64_t>> taking_;
  // The head as this batch locked it, and the frame it is building.
  int64_t position_ = 0;
  frame_hash hash_{};
  frame_digest digest_;
  int32_t frame_events_ = 0;
  // Last seq per stream, trusted while the log's head is where our last
  // commit left it (no other writer has committed events since).
  std::unordered_map<std::string, uint64_t> seq_cache_;
  int64_t cache_position_ = -1;
};

// --- reads ---

class pg_reader {
public:
  pg_reader(pg::connection db, std::shared_ptr<const upcaster_registry> upcasters)
    : db_(std::move(db)), upcasters_(std::move(upcasters)) {}

  bool usable() const { return db_.usable(); }
  pg::connection& connection() { return db_; }

  caf::expected<std::vector<recorded_event>> read_events(const std::string& stream,
                                                         uint64_t from_seq, uint32_t count) {
    auto from = std::max<uint64_t>(from_seq, 1);
    auto r = db_.query("SELECT seq, type, version, payload, at_ms, checksum FROM events "
                       "WHERE stream = $1 AND seq >= $2 ORDER BY seq LIMIT $3",
                       {stream, pg::text(from), pg::text(int64_t{count})},
                       "reading the events of " + stream);
    if (!r)
      return r.error();
    std::vector<recorded_event> out;
    out.reserve(static_cast<size_t>(r->rows()));
    for (int i = 0; i < r->rows(); ++i) {
      auto e = event_at(*r, i, 0, stream);
      if (!e)
        return e.error();
      if (e->seq != from + out.size())
        return corrupt(stream + " has no event " + std::to_string(from + out.size()) +
                       " before event " + std::to_string(e->seq));
      out.push_back(std::move(*e));
    }
    if (auto err = upcast(out))
      return err;
    return out;
  }

  caf::expected<uint64_t> last_seq(const std::string& stream) {
    auto r = db_.query("SELECT last_seq FROM streams WHERE stream = $1", {stream},
                       "reading the last seq of " + stream);
    if (!r)
      return r.error();
    return r->rows() == 0 ? uint64_t{0} : as_unsigned(r->int64(0, 0));
  }

  caf::expected<std::optional<snapshot>> load_snapshot(const std::string& stream) {
    auto r = db_.query("SELECT seq, version, state, at_ms, checksum FROM snapshots "
                       "WHERE stream = $1",
                       {stream}, "reading the snapshot of " + stream);
    if (!r)
      return r.error();
    if (r->rows() == 0)
      return std::optional<snapshot>{};
    snapshot s;
    s.stream = stream;
    s.seq = as_unsigned(r->int64(0, 0));
    s.version = static_cast<uint32_t>(r->int64(0, 1));
    s.state = std::string{r->text(0, 2)};
    s.at_ms = r->int64(0, 3);
    if (as_unsigned(r->int64(0, 4)) != row_checksum(stream, s.seq, "snapshot", s.version, s.state))
      return corrupt("checksum mismatch in the snapshot of " + stream);
    return std::optional<snapshot>{std::move(s)};
  }

  caf::expected<std::vector<std::string>> list(std::string_view kind, const std::string& after,
                                               uint32_t count, bool open_work_only) {
    auto r = db_.query(open_work_only
                         ? "SELECT stream FROM streams WHERE kind = $1 AND open_work AND "
                           "stream > $2 ORDER BY stream LIMIT $3"
                         : "SELECT stream FROM streams WHERE kind = $1 AND stream > $2 "
                           "ORDER BY stream LIMIT $3",
                       {std::string{kind}, after, pg::text(int64_t{count})},
                       "listing streams of kind " + std::string{kind});
    if (!r)
      return r.error();
    std::vector<std::string> out;
    for (int i = 0; i < r->rows(); ++i)
      out.emplace_back(r->text(i, 0));
    return out;
  }

  caf::expected<std::optional<stored_request>> find_request(const std::string& stream,
                                                            const std::string& request_id) {
    auto r = db_.query("SELECT seq, result, at_ms, checksum FROM requests "
                       "WHERE stream = $1 AND request_id = $2",
                       {stream, request_id},
                       "reading request " + request_id + " of " + stream);
    if (!r)
      return r.error();
    if (r->rows() == 0)
      return std::optional<stored_request>{};
    stored_request q;
    q.request_id = request_id;
    q.seq = as_unsigned(r->int64(0, 0));
    q.result = std::string{r->text(0, 1)};
    q.at_ms = r->int64(0, 2);
    if (as_unsigned(r->int64(0, 3)) != row_checksum(stream, q.seq, request_id, 0, q.result))
      return corrupt("checksum mismatch in request " + request_id + " of " + stream);
    return std::optional<stored_request>{std::move(q)};
  }

  caf::expected<log_page> read_log(uint64_t after, uint32_t max_frames, std::string_view kind) {
    // Every frame in the range, with its events (of `kind` when given) in
    // the order they were written; a frame without such events still moves
    // the page's end.
    auto r = db_.query(
      "SELECT f.position, f.hash, e.stream, e.seq, e.type, e.version, e.payload, e.at_ms, "
      "e.checksum FROM frames f LEFT JOIN events e ON e.position = f.position AND "
      "($3 = '' OR left(e.stream, length($3) + 1) = $3 || '/') "
      "WHERE f.position > $1 AND f.position <= $1 + $2 ORDER BY f.position, e.ord",
      {pg::text(after), pg::text(int64_t{max_frames}), std::string{kind}},
      "reading the log after frame " + std::to_string(after));
    if (!r)
      return r.error();
    log_page page;
    page.end = after;
    for (int i = 0; i < r->rows(); ++i) {
      auto position = as_unsigned(r->int64(i, 0));
      if (position != page.end) {
        if (position != page.end + 1)
          return corrupt("the log has no frame " + std::to_string(page.end + 1) +
                         " before frame " + std::to_string(position));
        auto h = hash_of(r->text(i, 1));
        if (!h)
          return corrupt("frame " + std::to_string(position) + " has a hash that is not 32 bytes");
        page.end = position;
        page.end_hash = *h;
      }
      if (r->is_null(i, 2))
        continue;
      std::string stream{r->text(i, 2)};
      auto e = event_at(*r, i, 3, stream);
      if (!e)
        return e.error();
      if (page.appends.empty() || page.appends.back().position != position ||
          page.appends.back().stream != stream)
        page.appends.push_back(logged_append{position, stream, {}});
      page.appends.back().events.push_back(std::move(*e));
    }
    for (auto& a : page.appends)
      if (auto err = upcast(a.events))
        return err;
    return page;
  }

  caf::expected<uint64_t> log_end() {
    auto r = db_.query("SELECT log_position FROM wager_journal WHERE id = 1", {},
                       "reading the end of the log");
    if (!r)
      return r.error();
    if (r->rows() != 1)
      return corrupt("the journal's head row is missing");
    return as_unsigned(r->int64(0, 0));
  }

private:
  // The event in columns first..first+5 of row i: seq, type, version,
  // payload, at_ms, checksum, checked.
  caf::expected<recorded_event> event_at(const pg::result& r, int i, int first,
                                         const std::string& stream) {
    recorded_event e;
    e.seq = as_unsigned(r.int64(i, first));
    e.data.type = std::string{r.text(i, first + 1)};
    e.data.version = static_cast<uint32_t>(r.int64(i, first + 2));
    e.data.payload = std::string{r.text(i, first + 3)};
    e.at_ms = r.int64(i, first + 4);
    auto sum = as_unsigned(r.int64(i, first + 5));
    if (sum != row_checksum(stream, e.seq, e.data.type, e.data.version, e.data.payload))
      return corrupt("checksum mismatch in event " + std::to_string(e.seq) + " of " + stream);
    return e;
  }

  caf::error upcast(std::vector<recorded_event>& events) {
    if (upcasters_ == nullptr || upcasters_->empty())
      return {};
    for (auto& e : events)
      if (auto err = upcasters_->upcast(e.data))
        return err;
    return {};
  }

  pg::connection db_;
  std::shared_ptr<const upcaster_registry> upcasters_;
};

class pg_journal final : public journal {
public:
  explicit pg_journal(journal_options options) : options_(std::move(options)) {
    if (options_.metrics_registry != nullptr)
      metrics_ = std::make_unique<journal_metrics>(*options_.metrics_registry);
    writer_ = std::make_unique<journal_writer>(std::make_unique<pg_store>(options_, metrics_.get()), options_,
                                               metrics_.get());
    readers_ = std::make_unique<reader_pool<pg_reader>>(
      options_, [this]() -> caf::expected<std::unique_ptr<pg_reader>> {
        auto c = connect(options_, "reader");
        if (!c)
          return c.error();
        return std::make_unique<pg_reader>(std::move(*c), options_.upcasters);
      });
    prober_ = std::thread{[this] { probe(); }};
    if (options_.leases)
      beater_ = std::thread{[this] { beat(); }};
  }

  ~pg_journal() override {
    {
      std::lock_guard lock{probe_mutex_};
      stopping_ = true;
    }
    probe_wake_.notify_all();
    prober_.join();
    // Writes first: their callbacks may still post reads.
    writer_->stop();
    readers_->stop();
    readers_.reset();
    writer_.reset();
    // Nothing more is written for this node: its member row says it left,
    // so its shards may be taken at once.
    {
      std::lock_guard lock{probe_mutex_};
      writes_done_ = true;
    }
    probe_wake_.notify_all();
    if (beater_.joinable())
      beater_.join();
  }

  caf::error append(append_request request, result_callback<append_ack> done) override {
    return writer_->append(std::move(request), std::move(done));
  }

  caf::error save_snapshot(snapshot snap, result_callback<snapshot_saved> done) override {
    return writer_->save_snapshot(std::move(snap), std::move(done));
  }

  caf::expected<std::vector<recorded_event>> read_events(const std::string& stream,
                                                         uint64_t from_seq,
                                                         uint32_t max_count) override {
    auto count = std::min(max_count, options_.read_page_max);
    return readers_->with_reader(
      [&](pg_reader& r) { return r.read_events(stream, from_seq, count); });
  }

  caf::expected<uint64_t> last_seq(const std::string& stream) override {
    return readers_->with_reader([&](pg_reader& r) { return r.last_seq(stream); });
  }

  caf::expected<std::optional<snapshot>> load_snapshot(const std::string& stream) override {
    return readers_->with_reader([&](pg_reader& r) { return r.load_snapshot(stream); });
  }

  caf::expected<std::vector<std::string>> list_streams(std::string_view kind,
                                                       const std::string& after,
                                                       uint32_t max_count) override {
    auto count = std::min(max_count, options_.read_page_max);
    return readers_->with_reader([&](pg_reader& r) { return r.list(kind, after, count, false); });
  }

  caf::expected<std::vector<std::string>> list_open_streams(std::string_view kind,
                                                            const std::string& after,
                                                            uint32_t max_count) override {
    auto count = std::min(max_count, options_.read_page_max);
    return readers_->with_reader([&](pg_reader& r) { return r.list(kind, after, count, true); });
  }

  caf::expected<std::optional<stored_request>>
  find_request(const std::string& stream, const std::string& request_id) override {
    return readers_->with_reader([&](pg_reader& r) { return r.find_request(stream, request_id); });
  }

  caf::expected<log_page> read_log(uint64_t after, uint32_t max_frames,
                                   std::string_view kind) override {
    auto count = std::min(max_frames, options_.read_page_max);
    return readers_->with_reader([&](pg_reader& r) { return r.read_log(after, count, kind); });
  }

  caf::expected<uint64_t> log_end() override {
    return readers_->with_reader([&](pg_reader& r) { return r.log_end(); });
  }

  // The writer's health, except that a journal whose last batch failed is
  // writable again once the prober has reached the server since that
  // failure: the next batch connects afresh. So a node that is not ready
  // because the server went away is ready again when it is back, without
  // waiting for a client's write to prove it.
  journal_health health() const override {
    auto h = writer_->health();
    if (!h.writable && h.failed_batches <= recovered_through_.load())
      h.writable = true;
    return h;
  }

  caf::error post_read(std::function<void()> work) override {
    return readers_->post(std::move(work));
  }

private:
  // While the writer is unhealthy, tries the server every probe_interval.
  void probe() {
    std::unique_lock lock{probe_mutex_};
    while (!stopping_) {
      probe_wake_.wait_for(lock, probe_interval, [this] { return stopping_; });
      if (stopping_)
        return;
      auto h = writer_->health();
      if (h.writable || h.failed_batches <= recovered_through_.load())
        continue;
      lock.unlock();
      // Recovered when a batch could start: the server answers and the
      // head's lock can be had within busy_timeout_ms.
      auto c = connect(options_, "probe");
      bool reached = c && !c->exec("BEGIN; SELECT 1 FROM wager_journal WHERE id = 1 FOR UPDATE; "
                                   "ROLLBACK",
                                   "probing");
      lock.lock();
      if (reached)
        recovered_through_ = h.failed_batches;
    }
  }

  // Keeps this node's member row fresh every leases->heartbeat, on a
  // connection of its own, until the writer has stopped; then marks it left.
  void beat() {
    auto& leases = *options_.leases;
    pg::connection db;
    std::unique_lock lock{probe_mutex_};
    for (;;) {
      bool last = writes_done_;
      lock.unlock();
      auto m = leases.member();
      if (last)
        m.status = "left";
      if (!m.node_id.empty()) {
        if (!db.usable()) {
          auto c = connect(options_, "members");
          if (c && !c->exec("SET synchronous_commit = off", "setting up the member row's writer"))
            db = std::move(*c);
        }
        if (db.usable()) {
          auto owner = leases.owner();
          auto r = db.query(member_upsert_sql,
                            {owner, m.node_id, m.address, pg::text(m.incarnation), m.status},
                            "refreshing the member row of " + owner);
          if (!r)
            log().debug("journal: {}", message_of(r.error()));
        }
      }
      lock.lock();
      if (last)
        return;
      probe_wake_.wait_for(lock, leases.heartbeat, [this] { return writes_done_; });
    }
  }

  static constexpr auto probe_interval = std::chrono::seconds{1};

  journal_options options_;
  std::mutex probe_mutex_;
  std::condition_variable probe_wake_;
  bool stopping_ = false;
  std::atomic<uint64_t> recovered_through_{0};
  std::thread prober_;
  bool writes_done_ = false;
  std::thread beater_;
  std::unique_ptr<journal_metrics> metrics_;
  std::unique_ptr<journal_writer> writer_;
  std::unique_ptr<reader_pool<pg_reader>> readers_;
};

constexpr uint32_t verify_page_frames = 1024;
constexpr uint32_t verify_page_streams = 1024;
constexpr uint32_t verify_page_events = 4096;

// The chain: frames 1..head in order, each hash recomputed.
void verify_chain(pg::connection& db, verify_report& report) {
  frame_hash previous{};
  uint64_t at = 0;
  frame_digest digest;
  for (;;) {
    auto r = db.query("SELECT f.position, f.hash, e.stream, e.seq, e.checksum FROM frames f "
                      "LEFT JOIN events e ON e.position = f.position "
                      "WHERE f.position > $1 AND f.position <= $1 + $2 ORDER BY f.position, e.ord",
                      {pg::text(at), pg::text(int64_t{verify_page_frames})},
                      "reading frames after " + std::to_string(at));
    if (!r) {
      report.add_problem("log: " + message_of(r.error()));
      return;
    }
    if (r->rows() == 0)
      break;
    std::optional<frame_hash> stored;
    auto close = [&] {
      if (!stored)
        return;
      auto h = digest.finish();
      if (h != *stored)
        report.add_problem("log: frame " + std::to_string(at) +
                           " does not hash to what it records: a frame or one of its events "
                           "was changed");
      previous = *stored;
      stored.reset();
    };
    for (int i = 0; i < r->rows(); ++i) {
      auto position = as_unsigned(r->int64(i, 0));
      if (position != at) {
        close();
        if (position != at + 1) {
          report.add_problem("log: no frame " + std::to_string(at + 1) + " before frame " +
                             std::to_string(position));
          return;
        }
        at = position;
        stored = hash_of(r->text(i, 1));
        if (!stored) {
          report.add_problem("log: frame " + std::to_string(at) + " has a malformed hash");
          return;
        }
        digest.start(previous, at);
      }
      if (!r->is_null(i, 2))
        digest.add(r->text(i, 2), as_unsigned(r->int64(i, 3)), as_unsigned(r->int64(i, 4)));
    }
    close();
  }
  auto head = db.query("SELECT log_position, log_hash FROM wager_journal WHERE id = 1", {},
                       "reading the journal's head");
  if (!head || head->rows() != 1) {
    report.add_problem("log: the journal's head cannot be read");
    return;
  }
  auto head_hash = hash_of(head->text(0, 1));
  if (as_unsigned(head->int64(0, 0)) != at || !head_hash || *head_hash != previous)
    report.add_problem("log: the journal's head stands at frame " +
                       std::to_string(head->int64(0, 0)) + " but the frames end at " +
                       std::to_string(at) + (at == as_unsigned(head->int64(0, 0))
                                               ? " with another hash"
                                               : ""));
  // Events that name a frame the log does not hold.
  auto loose = db.query("SELECT count(*) FROM events e WHERE NOT EXISTS (SELECT 1 FROM frames f "
                        "WHERE f.position = e.position)",
                        {}, "reading events outside the log");
  if (loose && loose->int64(0, 0) > 0)
    report.add_problem("log: " + std::to_string(loose->int64(0, 0)) +
                       " events belong to no frame of the log");
}

void verify_streams(pg::connection& db, pg_reader& reader, journal_visitor* visitor,
                    verify_report& report) {
  std::string after;
  for (;;) {
    auto r = db.query("SELECT stream, last_seq FROM streams WHERE stream > $1 ORDER BY stream "
                      "LIMIT $2",
                      {after, pg::text(int64_t{verify_page_streams})}, "listing streams");
    if (!r) {
      report.add_problem("listing streams: " + message_of(r.error()));
      return;
    }
    if (r->rows() == 0)
      return;
    for (int i = 0; i < r->rows(); ++i) {
      std::string stream{r->text(i, 0)};
      auto last = as_unsigned(r->int64(i, 1));
      ++report.streams;
      uint64_t seq = 0;
      for (;;) {
        auto page = reader.read_events(stream, seq + 1, verify_page_events);
        if (!page) {
          report.add_problem(stream + ": " + message_of(page.error()));
          break;
        }
        if (page->empty())
          break;
        seq = page->back().seq;
        report.events += page->size();
        if (visitor != nullptr)
          visitor->on_events(stream, *page, report);
      }
      if (seq != last)
        report.add_problem(stream + ": events end at seq " + std::to_string(seq) +
                           " but the stream's last seq is " + std::to_string(last));
      auto snap = reader.load_snapshot(stream);
      if (!snap)
        report.add_problem(stream + ": " + message_of(snap.error()));
      else if (*snap && (*snap)->seq > last)
        report.add_problem(stream + ": snapshot at seq " + std::to_string((*snap)->seq) +
                           " is ahead of the last event " + std::to_string(last));
      after = stream;
    }
  }
}

void verify_rows(pg::connection& db, verify_report& report) {
  auto orphans = db.query("SELECT 'events', stream FROM events WHERE stream NOT IN (SELECT "
                          "stream FROM streams) GROUP BY stream UNION ALL SELECT 'snapshots', "
                          "stream FROM snapshots WHERE stream NOT IN (SELECT stream FROM streams)",
                          {}, "looking for rows without a stream");
  if (!orphans)
    report.add_problem(message_of(orphans.error()));
  else
    for (int i = 0; i < orphans->rows(); ++i)
      report.add_problem(std::string{orphans->text(i, 1)} + ": " +
                         std::string{orphans->text(i, 0)} + " rows without a stream row");
  std::string after_stream;
  std::string after_id;
  for (;;) {
    auto r = db.query("SELECT stream, request_id, seq, result, checksum FROM requests "
                      "WHERE (stream, request_id) > ($1, $2) ORDER BY stream, request_id LIMIT 4096",
                      {after_stream, after_id}, "reading stored requests");
    if (!r) {
      report.add_problem(message_of(r.error()));
      break;
    }
    if (r->rows() == 0)
      break;
    for (int i = 0; i < r->rows(); ++i) {
      ++report.requests;
      auto stream = r->text(i, 0);
      auto id = r->text(i, 1);
      auto seq = as_unsigned(r->int64(i, 2));
      if (as_unsigned(r->int64(i, 4)) != row_checksum(stream, seq, id, 0, r->text(i, 3)))
        report.add_problem(std::string{stream} + ": checksum mismatch in request " +
                           std::string{id});
      after_stream = stream;
      after_id = id;
    }
  }
  auto snapshots = db.query("SELECT count(*) FROM snapshots", {}, "counting snapshots");
  if (snapshots)
    report.snapshots = as_unsigned(snapshots->int64(0, 0));
}

// The leases: each shard's lease is its last take, and every event was
// written by the node that held its shard's lease at the time (the last take
// of the shard before the event's frame). Frames written without leases (a
// single node) name no node and are not checked.
void verify_leases(pg::connection& db, verify_report& report) {
  auto count = db.query("SELECT count(*) FROM wager_leases", {}, "counting the shard leases");
  if (!count) {
    report.add_problem(message_of(count.error()));
    return;
  }
  auto shards = static_cast<uint32_t>(count->int64(0, 0));
  if (shards == 0)
    return;
  struct take {
    int64_t position;
    uint64_t epoch;
    std::string owner;
  };
  std::unordered_map<uint32_t, std::vector<take>> takes;
  auto rows = db.query("SELECT shard, epoch, owner, position FROM wager_lease_takes "
                       "ORDER BY shard, epoch",
                       {}, "reading the lease takes");
  if (!rows) {
    report.add_problem(message_of(rows.error()));
    return;
  }
  for (int i = 0; i < rows->rows(); ++i) {
    auto s = static_cast<uint32_t>(rows->int64(i, 0));
    auto& list = takes[s];
    take t{rows->int64(i, 3), as_unsigned(rows->int64(i, 1)), std::string{rows->text(i, 2)}};
    if (t.epoch != list.size() + 1)
      report.add_problem("shard " + std::to_string(s) + ": lease epoch " +
                         std::to_string(t.epoch) + " follows " + std::to_string(list.size()));
    else if (!list.empty() && t.position < list.back().position)
      report.add_problem("shard " + std::to_string(s) + ": lease epoch " +
                         std::to_string(t.epoch) + " was taken before epoch " +
                         std::to_string(list.back().epoch));
    list.push_back(std::move(t));
  }
  auto leases = db.query("SELECT shard, owner, epoch FROM wager_leases ORDER BY shard", {},
                         "reading the shard leases");
  if (!leases) {
    report.add_problem(message_of(leases.error()));
    return;
  }
  for (int i = 0; i < leases->rows(); ++i) {
    auto s = static_cast<uint32_t>(leases->int64(i, 0));
    auto epoch = as_unsigned(leases->int64(i, 2));
    auto t = takes.find(s);
    auto last = t == takes.end() ? nullptr : &t->second.back();
    auto owner = leases->is_null(i, 1) ? std::string{} : std::string{leases->text(i, 1)};
    if ((last == nullptr && epoch != 0) ||
        (last != nullptr && (last->epoch != epoch || last->owner != owner)))
      report.add_problem("shard " + std::to_string(s) + ": the lease (" + owner + ", epoch " +
                         std::to_string(epoch) + ") is not its last take");
  }
  int64_t after_position = 0;
  std::string after_stream;
  for (;;) {
    auto r = db.query("SELECT e.position, e.stream, coalesce(f.node, '') FROM events e JOIN "
                      "frames f ON f.position = e.position WHERE (e.position, e.stream) > "
                      "($1, $2) GROUP BY e.position, e.stream, f.node "
                      "ORDER BY e.position, e.stream LIMIT 4096",
                      {pg::text(after_position), after_stream}, "reading who wrote each frame");
    if (!r) {
      report.add_problem(message_of(r.error()));
      return;
    }
    if (r->rows() == 0)
      return;
    for (int i = 0; i < r->rows(); ++i) {
      auto position = r->int64(i, 0);
      auto stream = r->text(i, 1);
      auto node = r->text(i, 2);
      after_position = position;
      after_stream = stream;
      auto id = parse_entity_id(stream);
      if (!id)
        continue;
      auto shard = shard_of(*id, shards);
      const take* holder = nullptr;
      if (auto t = takes.find(shard); t != takes.end())
        for (auto& x : t->second)
          if (x.position < position)
            holder = &x;
      auto where = std::string{stream} + ": events at log position " + std::to_string(position);
      // A frame without a node was written without leases: only before
      // the shard's first take.
      if (holder == nullptr && !node.empty())
        report.add_problem(where + " were written by node " + std::string{node} +
                           " before any lease of shard " + std::to_string(shard) + " was taken");
      else if (holder != nullptr && holder->owner != node)
        report.add_problem(where + " were written by node " +
                           (node.empty() ? std::string{"(none: no leases)"} : std::string{node}) +
                           " while node " + holder->owner + " held the lease of shard " +
                           std::to_string(shard) + " (epoch " + std::to_string(holder->epoch) +
                           ")");
    }
  }
}

} // namespace
} // namespace pgj

caf::expected<verify_report> verify_pg_journal(const journal_options& options,
                                               journal_visitor* visitor) {
  if (!pg::is_postgresql_url(options.url))
    return make_error(errc::invalid_field, "journal URL must start with postgresql://");
  auto c = pgj::connect(options, "verify");
  if (!c)
    return c.error();
  auto head = c->query("SELECT to_regclass('wager_journal') IS NOT NULL", {},
                       "reading the schema of " + pg::redacted(options.url));
  if (!head)
    return head.error();
  if (head->text(0, 0) != "t")
    return make_error(errc::journal_failure,
                      "database " + pg::redacted(options.url) + " holds no Wager journal");
  // One snapshot of the database for every check, however long they take.
  if (auto err = c->exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "starting the verify"))
    return err;
  verify_report report;
  pgj::verify_chain(*c, report);
  pgj::pg_reader reader{std::move(*c), options.upcasters};
  auto& db = reader.connection();
  pgj::verify_streams(db, reader, visitor, report);
  pgj::verify_rows(db, report);
  pgj::verify_leases(db, report);
  db.exec("COMMIT", "ending the verify");
  if (visitor != nullptr)
    visitor->finish(report);
  return report;
}

caf::expected<std::unique_ptr<journal>> open_pg_journal(journal_options options) {
  if (auto err = validate(options))
    return err;
  if (!pg::is_postgresql_url(options.url))
    return make_error(errc::invalid_field,
                      "journal URL must start with postgresql:// (got '" +
                        pg::redacted(options.url) + "')");
  // The writer's and the readers' messages name the journal by its URL,
  // without a password.
  options.path = pg::redacted(options.url);
  auto db = pgj::connect(options, "schema");
  if (!db)
    return db.error();
  if (auto err = pgj::prepare_schema(*db, options))
    return err;
  if (auto err = pgj::prepare_leases(*db, options))
    return err;
  return std::unique_ptr<journal>{std::make_unique<pgj::pg_journal>(std::move(options))};
}

} // namespace wager
