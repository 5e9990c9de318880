#pragma once

// The journal on PostgreSQL, for nodes on several hosts: the same contract
// as the embedded journal (journal.hpp), kept by a server every node
// reaches instead of a file they share.
//
// One writer thread per process commits appends in batches (group commit,
// journal_writer.hpp), each batch one transaction. A batch first locks the
// journal's head row (`wager_journal`, FOR UPDATE): writers of every node
// take turns there, as they take SQLite's write lock on one host, so each
// append's sequence check runs against the stream as it is. A batch that
// wrote events becomes one frame of the ordered log (`frames`: its position,
// and the SHA-256 of the previous frame's hash and its events' identities),
// so read models follow the log as they follow the SQLite log layout. A
// commit is acknowledged once PostgreSQL has flushed it
// (synchronous_commit=on).
//
// Reads use their own pooled connections on reader threads. Every row read
// is checked (its row checksum, contiguous seqs) and upcast, as on SQLite.
//
// An unreachable server, a dropped connection, a server shutting down:
// errc::unavailable, and the connection is opened again at the next batch
// or read. Closing answers every write already queued and runs every read
// already queued.

#include "wager/persistence/backup.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/persistence/journal_options.hpp"

#include <caf/expected.hpp>

#include <cstdint>
#include <memory>
#include <string>

namespace wager {

// The schema this release writes (table `wager_journal`, column
// schema_version). A newer one is refused at open; an older one is migrated.
//   1: the journal (head, streams, events, frames, requests, snapshots);
//   2: shard leases (wager_leases, wager_lease_takes), members
//      (wager_members), and the node that wrote each frame.
inline constexpr int64_t pg_schema_version = 2;

// Opens the journal in the database options.url names (postgresql://...),
// creating its tables when the database has none and
// options.create_if_missing. Errors: invalid_field (options out of bounds,
// a URL that is not PostgreSQL's), unavailable (the server cannot be
// reached), journal_failure (a newer schema, a database holding something
// else: the message says which).
caf::expected<std::unique_ptr<journal>> open_pg_journal(journal_options options);

// Checks the journal in the database options.url names, as verify_journal
// checks a file (backup.hpp), in one read-only snapshot of the database
// (REPEATABLE READ), safe while nodes write: the chain of frames (positions
// 1..head, each frame's hash recomputed from the previous one and its
// events' identities and row checksums, the head at the last frame), every
// row's checksum, contiguous seqs 1..last per stream, snapshots not ahead
// of their streams, events without a stream row, and the invariants of a
// journal_visitor. Fails only when the database cannot be read at all.
caf::expected<verify_report> verify_pg_journal(const journal_options& options,
                                               journal_visitor* visitor = nullptr);

} // namespace wager
