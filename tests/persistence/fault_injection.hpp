#pragma once

// Real disk failures for the failure suite: a small tmpfs filled to the
// last byte, a file made immutable (root ignores permission bits, but not
// the immutable attribute), a file size limit. Each helper says whether the
// mechanism is available here; a test that cannot make its failure real
// fails rather than pass without having tested anything.

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <filesystem>
#include <linux/fs.h>
#include <sched.h>
#include <string>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <unistd.h>

namespace wager::test {

// Moves this process into a mount namespace of its own, with mounts that do
// not propagate back, so the mounts a test makes disappear with the process
// even if it crashes. Returns an empty string or why it failed.
inline std::string private_mount_namespace() {
  static std::string result = [] {
    if (::unshare(CLONE_NEWNS) != 0)
      return std::string{"unshare(CLONE_NEWNS): "} + std::strerror(errno);
    if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
      return std::string{"making / private: "} + std::strerror(errno);
    return std::string{};
  }();
  return result;
}

// Mounts a tmpfs of `bytes` at `dir` (in the private namespace).
inline std::string mount_tmpfs(const std::string& dir, size_t bytes) {
  if (auto err = private_mount_namespace(); !err.empty())
    return err;
  auto options = "size=" + std::to_string(bytes);
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, options.c_str()) != 0)
    return std::string{"mount tmpfs: "} + std::strerror(errno);
  return {};
}

// Writes a file until the filesystem refuses with ENOSPC. Returns the bytes
// written, or -1 if it stopped for another reason.
inline long long fill_filesystem(const std::string& file) {
  int fd = ::open(file.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return -1;
  static char block[4096] = {};
  long long total = 0;
  for (;;) {
    auto n = ::write(fd, block, sizeof block);
    if (n > 0) {
      total += n;
      continue;
    }
    bool full = n < 0 && errno == ENOSPC;
    ::close(fd);
    return full ? total : -1;
  }
}

// Sets or clears the immutable attribute (chattr +i): nobody, root included,
// may write, rename or delete the file. Returns an empty string or why not.
inline std::string set_immutable(const std::string& path, bool on) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0)
    return "open " + path + ": " + std::strerror(errno);
  int flags = 0;
  std::string err;
  if (::ioctl(fd, FS_IOC_GETFLAGS, &flags) != 0) {
    err = std::string{"FS_IOC_GETFLAGS: "} + std::strerror(errno);
  } else {
    flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
    if (::ioctl(fd, FS_IOC_SETFLAGS, &flags) != 0)
      err = std::string{"FS_IOC_SETFLAGS: "} + std::strerror(errno);
  }
  ::close(fd);
  return err;
}

// Clears the immutable attribute when the scope ends, so a failing test
// still leaves a removable temp dir.
class immutable_file {
public:
  explicit immutable_file(std::string path) : path_(std::move(path)) {
    error_ = set_immutable(path_, true);
  }
  ~immutable_file() { release(); }
  immutable_file(const immutable_file&) = delete;
  immutable_file& operator=(const immutable_file&) = delete;

  void release() {
    if (error_.empty() && !released_)
      set_immutable(path_, false);
    released_ = true;
  }
  const std::string& error() const { return error_; }

private:
  std::string path_;
  std::string error_;
  bool released_ = false;
};

// Limits the size of any file this process writes (RLIMIT_FSIZE), with
// SIGXFSZ ignored so a write past it fails with EFBIG instead of killing
// the process; restores the old limit when the scope ends.
class file_size_limit {
public:
  explicit file_size_limit(rlim_t bytes) {
    ::getrlimit(RLIMIT_FSIZE, &old_);
    old_handler_ = std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{bytes, old_.rlim_max};
    ::setrlimit(RLIMIT_FSIZE, &limit);
  }
  ~file_size_limit() {
    ::setrlimit(RLIMIT_FSIZE, &old_);
    std::signal(SIGXFSZ, old_handler_);
  }
  file_size_limit(const file_size_limit&) = delete;
  file_size_limit& operator=(const file_size_limit&) = delete;

private:
  rlimit old_{};
  void (*old_handler_)(int) = nullptr;
};

} // namespace wager::test
