#pragma once

// A SQLite VFS that can lose power: a shim over the default "unix" VFS that
// remembers, per file, every write and truncation since that file's last
// sync, with the bytes it replaced, and on a simulated power loss undoes
// them in the real files. A kill -9 leaves the page cache intact, so only a
// loss like this one tells a journal that syncs from one that does not.
// (The idea of SQLite's test VFS, src/test_vfs.c, and of LevelDB's
// fault-injection Env.)
//
// What survives a loss:
//   - what was written before the last xSync of a file, and the file's size
//     as of then. xSync never calls the real fsync: the machine keeps its
//     power, so it would only cost time.
//   - a file created through the VFS only once it has been synced: the unix
//     VFS fsyncs the directory at the first sync of a WAL or rollback journal
//     it created, and the journal creates its database file itself and syncs
//     the directory. A created file never synced is removed.
//   - every deletion (xDelete), as if its directory were synced at once.
//     SQLite deletes a WAL only when its last connection closes, which a
//     process that loses power never gets to do.
//   - never the -shm: shared memory, which SQLite rebuilds from the WAL. It
//     is removed at the loss.
// What is lost depends on the loss_mode.
//
// Every write, truncation and sync through the VFS, and the loss itself,
// take one process-wide lock, so a loss sees no write half made; once it
// is applied every later write, truncation, sync or delete fails
// (SQLITE_IOERR_*): nothing reaches the files after the power went out, even
// from threads still running. Reads are passed through unlocked; mmap is not
// offered (io methods version 2), so every write goes through xWrite.

#include <cstdint>
#include <functional>
#include <string>

namespace wager::test {

enum class loss_mode {
  // Every write and truncation since a file's last sync is lost.
  drop,
  // Every unsynced write reached the disk except each file's last one, of
  // which only a prefix did (at least one byte, never all of it, at any
  // byte boundary); the rest of its range keeps the old bytes. A
  // truncation is a metadata change and is kept whole.
  tear,
};

enum class sync_mode {
  // xSync syncs, and what was written before it survives a loss.
  honoured,
  // xSync returns success without syncing and without making anything
  // durable: a disk that ignores fsync, or a journal with sync turned off.
  ignored,
};

// What a loss undid.
struct loss_report {
  uint64_t files_rolled_back = 0; // files with unsynced writes
  uint64_t writes_undone = 0;     // writes and truncations undone whole
  uint64_t writes_torn = 0;       // writes kept in part
  uint64_t files_removed = 0;     // created, never synced
  std::string error;              // a real I/O call that failed, empty if none
};

class power_loss_vfs {
public:
  static constexpr const char* name = "power-loss";

  // Registers the VFS (once per process; later calls return the same one).
  // `make_default`: every later sqlite3_open_v2 without a VFS name uses it.
  static power_loss_vfs& install(bool make_default);

  void set_sync_mode(sync_mode mode);

  // The loss strikes at the `op`-th write, truncation or sync (counted from
  // 1 since install or power_on) of a named file, before that operation
  // takes effect: the loss is applied in `mode` (tears drawn from `seed`)
  // and `on_loss` runs, still under the lock, so nothing else reaches the
  // files in between. A process simulating a crash _exit()s there; if
  // `on_loss` returns, the operation fails like every one after it.
  void arm(uint64_t op, loss_mode mode, uint64_t seed,
           std::function<void(const loss_report&)> on_loss);

  // Applies a loss now.
  loss_report lose_power(loss_mode mode, uint64_t seed);

  // Writes, truncations and syncs so far.
  uint64_t operations() const;
  bool powered_off() const;

  // Forgets every unsynced write and file, disarms, and lets writes through
  // again: for tests that go on in the same process after a loss.
  void power_on();

private:
  power_loss_vfs() = default;
};

} // namespace wager::test
