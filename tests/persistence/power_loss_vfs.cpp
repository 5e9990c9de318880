#include "power_loss_vfs.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <vector>
#include <unistd.h>

namespace wager::test {

namespace {

// One write or truncation not yet synced, and how to take it back.
struct undo_record {
  int64_t offset = 0;      // where the write began; a truncation's new size
  int64_t length = 0;      // bytes written; 0 for a truncation
  int64_t size_before = 0; // the file's size just before
  std::string old_bytes;   // what [offset, size_before) held, up to length bytes
  bool truncation = false;
};

// A named file as the disk would have it after a loss. Keyed by path, not by
// handle: several connections open one file, and a sync through any of them
// makes the file durable.
struct file_record {
  bool created_unsynced = false;
  bool main_db = false;
  std::vector<undo_record> unsynced;
};

struct vfs_state {
  std::mutex mutex; // guards everything below, and every change to the files
  sqlite3_vfs* real = nullptr;
  sqlite3_vfs vfs{};
  sqlite3_io_methods methods{};
  sync_mode syncs = sync_mode::honoured;
  bool powered_off = false;
  uint64_t operations = 0;
  uint64_t armed_op = 0; // 0: not armed
  loss_mode armed_mode = loss_mode::drop;
  uint64_t armed_seed = 0;
  std::function<void(const loss_report&)> on_loss;
  std::map<std::string, std::shared_ptr<file_record>> files;
};

// Never destroyed: SQLite may still call in while static destructors run.
vfs_state& state() {
  static auto* s = new vfs_state;
  return *s;
}

// The sqlite3_file SQLite allocates for us (szOsFile bytes): ours, then the
// real VFS's right behind it.
struct shim_file {
  sqlite3_file base;
  sqlite3_file* real;
  const char* name; // valid until xClose (SQLite's guarantee); null for temp files
};

shim_file* shim(sqlite3_file* file) {
  return reinterpret_cast<shim_file*>(file);
}

std::shared_ptr<file_record> record_of(vfs_state& s, const shim_file* f) {
  if (f->name == nullptr)
    return nullptr;
  auto i = s.files.find(f->name);
  return i == s.files.end() ? nullptr : i->second;
}

void note_error(loss_report& report, const std::string& what) {
  if (report.error.empty())
    report.error = what + ": " + std::strerror(errno);
}

void undo(int fd, const undo_record& u, const std::string& path, loss_report& report) {
  if (::ftruncate(fd, u.size_before) != 0)
    note_error(report, "truncating " + path);
  if (!u.old_bytes.empty() &&
      ::pwrite(fd, u.old_bytes.data(), u.old_bytes.size(), u.offset) !=
        static_cast<ssize_t>(u.old_bytes.size()))
    note_error(report, "restoring " + path);
  ++report.writes_undone;
}

void tear(int fd, const undo_record& u, std::mt19937_64& random, const std::string& path,
          loss_report& report) {
  if (u.truncation)
    return;
  int64_t kept = 0;
  if (u.length > 1)
    kept = std::uniform_int_distribution<int64_t>{1, u.length - 1}(random);
  auto old_size = static_cast<int64_t>(u.old_bytes.size());
  if (kept < old_size &&
      ::pwrite(fd, u.old_bytes.data() + kept, old_size - kept, u.offset + kept) !=
        old_size - kept)
    note_error(report, "tearing " + path);
  if (u.offset + u.length > u.size_before &&
      ::ftruncate(fd, std::max(u.size_before, u.offset + kept)) != 0)
    note_error(report, "tearing " + path);
  ++report.writes_torn;
}

// REQUIRES: s.mutex is held.
loss_report apply_loss(vfs_state& s, loss_mode mode, uint64_t seed) {
  loss_report report;
  std::mt19937_64 random{seed};
  for (auto& [path, file] : s.files) {
    if (file->created_unsynced) {
      if (::unlink(path.c_str()) == 0)
        ++report.files_removed;
      else if (errno != ENOENT)
        note_error(report, "removing " + path);
      continue;
    }
    if (file->unsynced.empty())
      continue;
    ++report.files_rolled_back;
    // Closing this descriptor drops the process's POSIX locks on the file;
    // harmless, nothing is written through the VFS after the loss.
    int fd = ::open(path.c_str(), O_RDWR | O_CLOEXEC);
    if (fd < 0) {
      note_error(report, "opening " + path);
      continue;
    }
    if (mode == loss_mode::drop)
      for (auto u = file->unsynced.rbegin(); u != file->unsynced.rend(); ++u)
        undo(fd, *u, path, report);
    else
      tear(fd, file->unsynced.back(), random, path, report);
    ::close(fd);
  }
  for (auto& [path, file] : s.files)
    if (file->main_db && ::unlink((path + "-shm").c_str()) != 0 && errno != ENOENT)
      note_error(report, "removing " + path + "-shm");
  s.files.clear();
  s.powered_off = true;
  return report;
}

// Counts a write, truncation or sync of a named file and lets the armed loss
// strike. False: the operation must fail, the power is out.
// REQUIRES: s.mutex is held.
bool power_is_on(vfs_state& s, const shim_file* f) {
  if (s.powered_off)
    return false;
  if (f->name == nullptr)
    return true;
  ++s.operations;
  if (s.armed_op == 0 || s.operations != s.armed_op)
    return true;
  auto report = apply_loss(s, s.armed_mode, s.armed_seed);
  if (s.on_loss)
    s.on_loss(report);
  return false;
}

// The bytes a change starting at `offset` replaces, up to `length` bytes
// (all the rest of the file for a truncation).
// REQUIRES: s.mutex is held.
bool remember(file_record& file, sqlite3_file* real, int64_t offset, int64_t length,
              bool truncation) {
  sqlite3_int64 size = 0;
  if (real->pMethods->xFileSize(real, &size) != SQLITE_OK)
    return false;
  undo_record u;
  u.offset = offset;
  u.length = length;
  u.size_before = size;
  u.truncation = truncation;
  auto end = truncation ? size : std::min<int64_t>(size, offset + length);
  if (end > offset) {
    u.old_bytes.resize(end - offset);
    if (real->pMethods->xRead(real, u.old_bytes.data(), static_cast<int>(end - offset), offset) !=
        SQLITE_OK)
      return false;
  }
  file.unsynced.push_back(std::move(u));
  return true;
}

int shim_close(sqlite3_file* file) {
  auto* f = shim(file);
  return f->real->pMethods->xClose(f->real);
}

int shim_read(sqlite3_file* file, void* data, int amount, sqlite3_int64 offset) {
  auto* f = shim(file);
  return f->real->pMethods->xRead(f->real, data, amount, offset);
}

int shim_write(sqlite3_file* file, const void* data, int amount, sqlite3_int64 offset) {
  auto& s = state();
  auto* f = shim(file);
  std::lock_guard lock{s.mutex};
  if (!power_is_on(s, f))
    return SQLITE_IOERR_WRITE;
  if (auto record = record_of(s, f); record && !remember(*record, f->real, offset, amount, false))
    return SQLITE_IOERR_WRITE;
  return f->real->pMethods->xWrite(f->real, data, amount, offset);
}

int shim_truncate(sqlite3_file* file, sqlite3_int64 size) {
  auto& s = state();
  auto* f = shim(file);
  std::lock_guard lock{s.mutex};
  if (!power_is_on(s, f))
    return SQLITE_IOERR_TRUNCATE;
  if (auto record = record_of(s, f); record && !remember(*record, f->real, size, 0, true))
    return SQLITE_IOERR_TRUNCATE;
  return f->real->pMethods->xTruncate(f->real, size);
}

// The real fsync is never called: the machine keeps its power, so it would
// only cost time; what a loss keeps is decided by the records here.
int shim_sync(sqlite3_file* file, int) {
  auto& s = state();
  auto* f = shim(file);
  std::lock_guard lock{s.mutex};
  if (!power_is_on(s, f))
    return SQLITE_IOERR_FSYNC;
  if (s.syncs == sync_mode::ignored)
    return SQLITE_OK;
  if (auto record = record_of(s, f)) {
    record->unsynced.clear();
    record->created_unsynced = false;
  }
  return SQLITE_OK;
}

int shim_file_size(sqlite3_file* file, sqlite3_int64* size) {
  auto* f = shim(file);
  return f->real->pMethods->xFileSize(f->real, size);
}

int shim_lock(sqlite3_file* file, int level) {
  auto* f = shim(file);
  return f->real->pMethods->xLock(f->real, level);
}

int shim_unlock(sqlite3_file* file, int level) {
  auto* f = shim(file);
  return f->real->pMethods->xUnlock(f->real, level);
}

int shim_check_reserved_lock(sqlite3_file* file, int* out) {
  auto* f = shim(file);
  return f->real->pMethods->xCheckReservedLock(f->real, out);
}

int shim_file_control(sqlite3_file* file, int op, void* arg) {
  auto* f = shim(file);
  return f->real->pMethods->xFileControl(f->real, op, arg);
}

int shim_sector_size(sqlite3_file* file) {
  auto* f = shim(file);
  return f->real->pMethods->xSectorSize(f->real);
}

int shim_device_characteristics(sqlite3_file* file) {
  auto* f = shim(file);
  return f->real->pMethods->xDeviceCharacteristics(f->real);
}

int shim_shm_map(sqlite3_file* file, int page, int page_size, int extend, void volatile** out) {
  auto* f = shim(file);
  return f->real->pMethods->xShmMap(f->real, page, page_size, extend, out);
}

int shim_shm_lock(sqlite3_file* file, int offset, int n, int flags) {
  auto* f = shim(file);
  return f->real->pMethods->xShmLock(f->real, offset, n, flags);
}

void shim_shm_barrier(sqlite3_file* file) {
  auto* f = shim(file);
  f->real->pMethods->xShmBarrier(f->real);
}

int shim_shm_unmap(sqlite3_file* file, int delete_flag) {
  auto* f = shim(file);
  return f->real->pMethods->xShmUnmap(f->real, delete_flag);
}

int shim_open(sqlite3_vfs*, sqlite3_filename name, sqlite3_file* file, int flags,
              int* out_flags) {
  auto& s = state();
  auto* f = shim(file);
  f->real = reinterpret_cast<sqlite3_file*>(f + 1);
  f->name = (flags & SQLITE_OPEN_DELETEONCLOSE) ? nullptr : name;
  bool existed = name != nullptr && ::access(name, F_OK) == 0;
  int rc = s.real->xOpen(s.real, name, f->real, flags, out_flags);
  file->pMethods = f->real->pMethods == nullptr ? nullptr : &s.methods;
  if (rc != SQLITE_OK || f->name == nullptr)
    return rc;
  std::lock_guard lock{s.mutex};
  auto& record = s.files[f->name];
  if (!record) {
    record = std::make_shared<file_record>();
    record->created_unsynced = !existed;
  }
  record->main_db = record->main_db || (flags & SQLITE_OPEN_MAIN_DB) != 0;
  return rc;
}

int shim_delete(sqlite3_vfs*, const char* name, int sync_dir) {
  auto& s = state();
  std::lock_guard lock{s.mutex};
  if (s.powered_off)
    return SQLITE_IOERR_DELETE;
  int rc = s.real->xDelete(s.real, name, sync_dir);
  if (rc == SQLITE_OK || rc == SQLITE_IOERR_DELETE_NOENT)
    s.files.erase(name);
  return rc;
}

int shim_access(sqlite3_vfs*, const char* name, int flags, int* out) {
  auto& s = state();
  return s.real->xAccess(s.real, name, flags, out);
}

int shim_full_pathname(sqlite3_vfs*, const char* name, int size, char* out) {
  auto& s = state();
  return s.real->xFullPathname(s.real, name, size, out);
}

void* shim_dl_open(sqlite3_vfs*, const char* path) {
  auto& s = state();
  return s.real->xDlOpen(s.real, path);
}

void shim_dl_error(sqlite3_vfs*, int size, char* out) {
  auto& s = state();
  s.real->xDlError(s.real, size, out);
}

void (*shim_dl_sym(sqlite3_vfs*, void* handle, const char* symbol))(void) {
  auto& s = state();
  return s.real->xDlSym(s.real, handle, symbol);
}

void shim_dl_close(sqlite3_vfs*, void* handle) {
  auto& s = state();
  s.real->xDlClose(s.real, handle);
}

int shim_randomness(sqlite3_vfs*, int size, char* out) {
  auto& s = state();
  return s.real->xRandomness(s.real, size, out);
}

int shim_sleep(sqlite3_vfs*, int microseconds) {
  auto& s = state();
  return s.real->xSleep(s.real, microseconds);
}

int shim_current_time(sqlite3_vfs*, double* out) {
  auto& s = state();
  return s.real->xCurrentTime(s.real, out);
}

int shim_get_last_error(sqlite3_vfs*, int size, char* out) {
  auto& s = state();
  return s.real->xGetLastError(s.real, size, out);
}

int shim_current_time_int64(sqlite3_vfs*, sqlite3_int64* out) {
  auto& s = state();
  return s.real->xCurrentTimeInt64(s.real, out);
}

int shim_set_system_call(sqlite3_vfs*, const char* name, sqlite3_syscall_ptr call) {
  auto& s = state();
  return s.real->xSetSystemCall(s.real, name, call);
}

sqlite3_syscall_ptr shim_get_system_call(sqlite3_vfs*, const char* name) {
  auto& s = state();
  return s.real->xGetSystemCall(s.real, name);
}

const char* shim_next_system_call(sqlite3_vfs*, const char* name) {
  auto& s = state();
  return s.real->xNextSystemCall(s.real, name);
}

void fill_methods(sqlite3_io_methods& m) {
  // Version 2: the shared-memory methods, but no xFetch, so SQLite never
  // writes through a memory map behind the VFS's back.
  m.iVersion = 2;
  m.xClose = shim_close;
  m.xRead = shim_read;
  m.xWrite = shim_write;
  m.xTruncate = shim_truncate;
  m.xSync = shim_sync;
  m.xFileSize = shim_file_size;
  m.xLock = shim_lock;
  m.xUnlock = shim_unlock;
  m.xCheckReservedLock = shim_check_reserved_lock;
  m.xFileControl = shim_file_control;
  m.xSectorSize = shim_sector_size;
  m.xDeviceCharacteristics = shim_device_characteristics;
  m.xShmMap = shim_shm_map;
  m.xShmLock = shim_shm_lock;
  m.xShmBarrier = shim_shm_barrier;
  m.xShmUnmap = shim_shm_unmap;
}

void fill_vfs(sqlite3_vfs& v, sqlite3_vfs& real) {
  v.iVersion = 3;
  v.szOsFile = static_cast<int>(sizeof(shim_file)) + real.szOsFile;
  v.mxPathname = real.mxPathname;
  v.zName = power_loss_vfs::name;
  v.xOpen = shim_open;
  v.xDelete = shim_delete;
  v.xAccess = shim_access;
  v.xFullPathname = shim_full_pathname;
  v.xDlOpen = shim_dl_open;
  v.xDlError = shim_dl_error;
  v.xDlSym = shim_dl_sym;
  v.xDlClose = shim_dl_close;
  v.xRandomness = shim_randomness;
  v.xSleep = shim_sleep;
  v.xCurrentTime = shim_current_time;
  v.xGetLastError = shim_get_last_error;
  v.xCurrentTimeInt64 = shim_current_time_int64;
  v.xSetSystemCall = shim_set_system_call;
  v.xGetSystemCall = shim_get_system_call;
  v.xNextSystemCall = shim_next_system_call;
}

} // namespace

power_loss_vfs& power_loss_vfs::install(bool make_default) {
  static power_loss_vfs instance;
  static std::once_flag once;
  auto& s = state();
  std::call_once(once, [&] {
    s.real = sqlite3_vfs_find("unix");
    if (s.real == nullptr || s.real->iVersion < 3)
      throw std::runtime_error("power_loss_vfs: no unix VFS of version 3 to wrap");
    fill_methods(s.methods);
    fill_vfs(s.vfs, *s.real);
    sqlite3_vfs_register(&s.vfs, make_default ? 1 : 0);
  });
  if (make_default)
    sqlite3_vfs_register(&s.vfs, 1);
  return instance;
}

void power_loss_vfs::set_sync_mode(sync_mode mode) {
  auto& s = state();
  std::lock_guard lock{s.mutex};
  s.syncs = mode;
}

void power_loss_vfs::arm(uint64_t op, loss_mode mode, uint64_t seed,
                         std::function<void(const loss_report&)> on_loss) {
  auto& s = state();
  std::lock_guard lock{s.mutex};
  s.armed_op = op;
  s.armed_mode = mode;
  s.armed_seed = seed;
  s.on_loss = std::move(on_loss);
}

loss_report power_loss_vfs::lose_power(loss_mode mode, uint64_t seed) {
  auto& s = state();
  std::lock_guard lock{s.mutex};
  return apply_loss(s, mode, seed);
}

uint64_t power_loss_vfs::operations() const {
  auto& s = state();
  std::lock_guard lock{s.mutex};
  return s.operations;
}

bool power_loss_vfs::powered_off() const {
  auto& s = state();
  std::lock_guard lock{s.mutex};
  return s.powered_off;
}

void power_loss_vfs::power_on() {
  auto& s = state();
  std::lock_guard lock{s.mutex};
  s.files.clear();
  s.powered_off = false;
  s.operations = 0;
  s.armed_op = 0;
  s.on_loss = nullptr;
  s.syncs = sync_mode::honoured;
}

} // namespace wager::test
