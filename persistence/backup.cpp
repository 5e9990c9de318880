#include "wager/persistence/backup.hpp"

#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/sqlite_db.hpp"
#include "wager/runtime/errors.hpp"

#include <sqlite3.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <unistd.h>

namespace wager {

namespace {

namespace fs = std::filesystem;

caf::error file_error(const std::string& path, const std::string& what) {
  return make_error(errc::journal_failure, path + ": " + what);
}

void remove_with_sidecars(const std::string& path) {
  std::error_code ec;
  for (auto suffix : {"", "-wal", "-shm", "-journal"})
    fs::remove(path + suffix, ec);
}

// quick_check: the b-tree structure of every page, without the (slow)
// index cross-checks of integrity_check. Enough to refuse a torn copy.
caf::error quick_check(sqlite::connection& db, const std::string& path) {
  sqlite::statement st{db.get(), "PRAGMA quick_check"};
  auto rc = st.step();
  if (rc != SQLITE_ROW)
    return sqlite::failure(db.get(), rc, "checking " + path);
  if (st.column_text(0) != "ok")
    return file_error(path, "fails quick_check: " + std::string{st.column_text(0)});
  return {};
}

// Copies every page of `from` into a new file at `to_temp` in one step, so
// the copy is one consistent moment of `from`.
caf::expected<backup_info> copy_pages(sqlite::connection& from, const std::string& to_temp) {
  sqlite::connection to;
  if (auto err = to.open(to_temp, sqlite::open_mode::read_write, true))
    return err;
  auto* backup = sqlite3_backup_init(to.get(), "main", from.get(), "main");
  if (backup == nullptr)
    return sqlite::failure(to.get(), sqlite3_errcode(to.get()), "starting a copy to " + to_temp);
  // -1: all pages in one step, inside one read transaction of `from`.
  // Stepping in slices would restart whenever another connection commits.
  auto rc = sqlite3_backup_step(backup, -1);
  backup_info info;
  info.pages = static_cast<uint64_t>(sqlite3_backup_pagecount(backup));
  sqlite3_backup_finish(backup);
  if (rc != SQLITE_DONE)
    return sqlite::failure(to.get(), rc, "copying to " + to_temp);
  auto page_size = to.query_int("PRAGMA page_size", "reading " + to_temp);
  if (!page_size)
    return page_size.error();
  info.bytes = info.pages * static_cast<uint64_t>(*page_size);
  if (auto err = quick_check(to, to_temp))
    return err;
  return info;
}

// Puts a finished temporary file in place: fsync, then link (which never
// replaces an existing file), then fsync the directory.
caf::error install(const std::string& temp, const std::string& target) {
  if (auto err = sync_path(temp))
    return err;
  if (::link(temp.c_str(), target.c_str()) != 0)
    return file_error(target, std::string{"cannot create: "} + std::strerror(errno));
  remove_with_sidecars(temp);
  auto dir = fs::path{target}.parent_path();
  return sync_path(dir.empty() ? "." : dir.string());
}

std::string temp_name(const std::string& target, const char* what) {
  return target + "." + what + "-" + std::to_string(::getpid());
}

} // namespace

caf::expected<backup_info> backup_journal(const std::string& journal_path,
                                          const std::string& backup_path) {
  std::error_code ec;
  if (fs::exists(backup_path, ec))
    return file_error(backup_path, "exists; a backup never overwrites a file");
  auto source = open_journal_for_inspection(journal_path);
  if (!source)
    return source.error();
  auto temp = temp_name(backup_path, "partial");
  auto info = copy_pages(*source, temp);
  caf::error err = info ? caf::error{} : info.error();
  if (!err)
    err = install(temp, backup_path);
  remove_with_sidecars(temp);
  if (err)
    return err;
  return info;
}

caf::expected<backup_info> restore_journal(const std::string& backup_path,
                                           const std::string& journal_path) {
  std::error_code ec;
  for (auto suffix : {"", "-wal", "-shm"})
    if (fs::exists(journal_path + suffix, ec))
      return file_error(journal_path + suffix,
                        "exists; restore only into a data dir without a journal");
  auto dir = fs::path{journal_path}.parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    return file_error(dir.string(), "directory does not exist");
  auto source = open_journal_for_inspection(backup_path);
  if (!source)
    return source.error();
  if (auto err = quick_check(*source, backup_path))
    return err;
  auto temp = temp_name(journal_path, "restoring");
  auto info = copy_pages(*source, temp);
  caf::error err = info ? caf::error{} : info.error();
  if (!err)
    err = install(temp, journal_path);
  remove_with_sidecars(temp);
  if (err)
    return err;
  return info;
}

void verify_report::add_problem(std::string problem) {
  if (problems.size() < problems_max)
    problems.push_back(std::move(problem));
  else
    ++problems_dropped;
}

} // namespace wager
