// The power-loss VFS (power_loss_vfs.hpp) on its own: which writes a loss
// takes back, file by file, and that SQLite's own commits keep or lose rows
// the way its sync setting says.

#include "power_loss_vfs.hpp"

#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sqlite3.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

using namespace wager::test;

namespace {

power_loss_vfs& fresh_vfs() {
  auto& vfs = power_loss_vfs::install(false);
  vfs.power_on();
  return vfs;
}

std::string contents(const std::filesystem::path& path) {
  std::ifstream in{path, std::ios::binary};
  return {std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
}

// A file opened through the VFS at the sqlite3_file level.
class vfs_file {
public:
  explicit vfs_file(std::string path) : path_(std::move(path)) {
    auto* vfs = sqlite3_vfs_find(power_loss_vfs::name);
    REQUIRE(vfs != nullptr);
    memory_.resize(vfs->szOsFile);
    file_ = reinterpret_cast<sqlite3_file*>(memory_.data());
    int out = 0;
    auto flags = SQLITE_OPEN_MAIN_DB | SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
    REQUIRE(vfs->xOpen(vfs, path_.c_str(), file_, flags, &out) == SQLITE_OK);
  }
  ~vfs_file() {
    if (file_->pMethods != nullptr)
      file_->pMethods->xClose(file_);
  }
  vfs_file(const vfs_file&) = delete;
  vfs_file& operator=(const vfs_file&) = delete;

  int write(std::string_view bytes, int64_t offset) {
    return file_->pMethods->xWrite(file_, bytes.data(), static_cast<int>(bytes.size()), offset);
  }
  int truncate(int64_t size) { return file_->pMethods->xTruncate(file_, size); }
  int sync() { return file_->pMethods->xSync(file_, SQLITE_SYNC_NORMAL); }

private:
  std::string path_;
  std::vector<char> memory_;
  sqlite3_file* file_ = nullptr;
};

// A table of `rows` rows written through the VFS in WAL mode, one
// transaction each, with the setup (schema, WAL switch) synced.
sqlite3* database_with_rows(const std::string& path, const char* synchronous, int rows) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE,
                          power_loss_vfs::name) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db,
                       "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"
                       "CREATE TABLE t(x INTEGER)",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  auto pragma = std::string{"PRAGMA synchronous = "} + synchronous;
  REQUIRE(sqlite3_exec(db, pragma.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  for (int i = 0; i < rows; ++i) {
    auto insert = "INSERT INTO t VALUES(" + std::to_string(i) + ")";
    REQUIRE(sqlite3_exec(db, insert.c_str(), nullptr, nullptr, nullptr) == SQLITE_OK);
  }
  return db;
}

// The rows of t, read back with the default VFS.
int64_t rows_after_restart(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  REQUIRE(sqlite3_prepare_v2(db, "SELECT count(*) FROM t", -1, &st, nullptr) == SQLITE_OK);
  REQUIRE(sqlite3_step(st) == SQLITE_ROW);
  auto rows = sqlite3_column_int64(st, 0);
  sqlite3_finalize(st);
  CHECK(sqlite3_exec(db, "PRAGMA integrity_check", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close_v2(db);
  return rows;
}

} // namespace

TEST_CASE("a power loss takes back every write since the file's last sync") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "f").string();
  vfs_file f{path};
  REQUIRE(f.write("aaaaaaaa", 0) == SQLITE_OK);
  REQUIRE(f.sync() == SQLITE_OK);
  REQUIRE(f.write("bbbb", 2) == SQLITE_OK);
  REQUIRE(f.write("cccccccc", 8) == SQLITE_OK);
  auto report = vfs.lose_power(loss_mode::drop, 1);
  CHECK(report.error == "");
  CHECK(report.writes_undone == 2);
  CHECK(contents(path) == "aaaaaaaa");
}

TEST_CASE("a power loss takes back a truncation since the last sync") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "f").string();
  vfs_file f{path};
  REQUIRE(f.write("0123456789", 0) == SQLITE_OK);
  REQUIRE(f.sync() == SQLITE_OK);
  REQUIRE(f.truncate(3) == SQLITE_OK);
  REQUIRE(f.write("xy", 5) == SQLITE_OK);
  REQUIRE(contents(path) == std::string{"012\0\0xy", 7});
  vfs.lose_power(loss_mode::drop, 1);
  CHECK(contents(path) == "0123456789");
}

TEST_CASE("a file created and never synced is gone after a power loss") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "f").string();
  vfs_file f{path};
  REQUIRE(f.write("data", 0) == SQLITE_OK);
  auto report = vfs.lose_power(loss_mode::drop, 1);
  CHECK(report.files_removed == 1);
  CHECK_FALSE(std::filesystem::exists(path));
}

TEST_CASE("a torn loss keeps the earlier unsynced writes and a part of the last one") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "f").string();
  vfs_file f{path};
  REQUIRE(f.write("................", 0) == SQLITE_OK);
  REQUIRE(f.sync() == SQLITE_OK);
  REQUIRE(f.write("AAAA", 0) == SQLITE_OK);
  REQUIRE(f.write("BBBBBBBB", 4) == SQLITE_OK);
  REQUIRE(f.write("CCCCCCCCCCCCCCCC", 16) == SQLITE_OK);
  auto report = vfs.lose_power(loss_mode::tear, 7);
  CHECK(report.writes_torn == 1);
  auto after = contents(path);
  CAPTURE(after);
  REQUIRE(after.size() > 16);
  REQUIRE(after.size() < 32);
  CHECK(after.substr(0, 16) == "AAAABBBBBBBB....");
  CHECK(after.substr(16) == std::string(after.size() - 16, 'C'));
}

TEST_CASE("a torn overwrite keeps the old bytes after its written part") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "f").string();
  vfs_file f{path};
  REQUIRE(f.write("................", 0) == SQLITE_OK);
  REQUIRE(f.sync() == SQLITE_OK);
  REQUIRE(f.write("XXXXXXXXXXXXXXXX", 0) == SQLITE_OK);
  vfs.lose_power(loss_mode::tear, 3);
  auto after = contents(path);
  CAPTURE(after);
  REQUIRE(after.size() == 16);
  auto written = after.find('.');
  REQUIRE(written != std::string::npos);
  CHECK(written > 0);
  CHECK(after.substr(0, written) == std::string(written, 'X'));
  CHECK(after.substr(written) == std::string(16 - written, '.'));
}

TEST_CASE("with syncs ignored nothing written survives a power loss") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "f").string();
  {
    vfs_file f{path};
    REQUIRE(f.write("kept", 0) == SQLITE_OK);
    REQUIRE(f.sync() == SQLITE_OK);
  }
  vfs.set_sync_mode(sync_mode::ignored);
  vfs_file f{path};
  REQUIRE(f.write("lost", 0) == SQLITE_OK);
  REQUIRE(f.sync() == SQLITE_OK);
  vfs.lose_power(loss_mode::drop, 1);
  CHECK(contents(path) == "kept");
}

TEST_CASE("an armed loss strikes at its operation, and nothing is written after it") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "f").string();
  vfs_file f{path};
  loss_report seen;
  bool struck = false;
  vfs.arm(3, loss_mode::drop, 1, [&](const loss_report& r) {
    seen = r;
    struck = true;
  });
  REQUIRE(f.write("one", 0) == SQLITE_OK);
  REQUIRE(f.sync() == SQLITE_OK);
  CHECK(f.write("two", 3) == SQLITE_IOERR_WRITE);
  CHECK(struck);
  CHECK(vfs.powered_off());
  CHECK(f.sync() == SQLITE_IOERR_FSYNC);
  CHECK(f.truncate(0) == SQLITE_IOERR_TRUNCATE);
  CHECK(contents(path) == "one");
  CHECK(seen.files_removed == 0);
}

TEST_CASE("the shared memory of a database is gone after a power loss") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "db").string();
  vfs_file f{path};
  std::ofstream{path + "-shm"} << "index";
  vfs.lose_power(loss_mode::drop, 1);
  CHECK_FALSE(std::filesystem::exists(path + "-shm"));
}

TEST_CASE("commits with synchronous FULL survive a power loss, torn or not") {
  for (auto mode : {loss_mode::drop, loss_mode::tear}) {
    auto& vfs = fresh_vfs();
    temp_dir dir;
    auto path = (dir / "db").string();
    auto* db = database_with_rows(path, "FULL", 50);
    vfs.lose_power(mode, 11);
    sqlite3_close_v2(db);
    vfs.power_on();
    CHECK(rows_after_restart(path) == 50);
  }
}

TEST_CASE("commits with synchronous OFF are lost at a power loss") {
  auto& vfs = fresh_vfs();
  temp_dir dir;
  auto path = (dir / "db").string();
  auto* db = database_with_rows(path, "OFF", 50);
  auto report = vfs.lose_power(loss_mode::drop, 1);
  CHECK(report.writes_undone > 0);
  sqlite3_close_v2(db);
  vfs.power_on();
  CHECK(rows_after_restart(path) == 0);
}
