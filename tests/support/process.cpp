#include "support/process.hpp"

#include <cerrno>
#include <csignal>
#include <cstring>
#include <fcntl.h>
#include <poll.h>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>

extern char** environ;

namespace wager::test {

namespace {

int exit_code(int status) {
  if (WIFEXITED(status))
    return WEXITSTATUS(status);
  if (WIFSIGNALED(status))
    return 128 + WTERMSIG(status);
  return -1;
}

} // namespace

child_process::child_process(const std::string& program,
                             const std::vector<std::string>& args,
                             const std::map<std::string, std::string>& env,
                             const std::string& working_dir) {
  int out[2];
  int err[2];
  if (::pipe2(out, O_CLOEXEC) != 0 || ::pipe2(err, O_CLOEXEC) != 0)
    throw std::runtime_error("pipe failed");
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry{*e};
    auto name = entry.substr(0, entry.find('='));
    if (env.count(name) == 0)
      env_strings.push_back(entry);
  }
  for (auto& [name, value] : env)
    env_strings.push_back(name + "=" + value);
  std::vector<char*> argv;
  argv.push_back(const_cast<char*>(program.c_str()));
  for (auto& a : args)
    argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  for (auto& e : env_strings)
    envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_ = ::fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::dup2(out[1], STDOUT_FILENO);
    ::dup2(err[1], STDERR_FILENO);
    int devnull = ::open("/dev/null", O_RDONLY);
    ::dup2(devnull, STDIN_FILENO);
    if (!working_dir.empty() && ::chdir(working_dir.c_str()) != 0)
      ::_exit(126);
    ::execve(program.c_str(), argv.data(), envp.data());
    ::_exit(127);
  }
  ::close(out[1]);
  ::close(err[1]);
  out_fd_ = out[0];
  err_fd_ = err[0];
  ::fcntl(err_fd_, F_SETFL, O_NONBLOCK);
}

child_process::~child_process() {
  if (!status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
  if (out_fd_ >= 0)
    ::close(out_fd_);
  if (err_fd_ >= 0)
    ::close(err_fd_);
}

std::optional<std::string> child_process::read_line(std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (auto nl = out_buf_.find('\n'); nl != std::string::npos) {
      auto line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return std::nullopt;
    pollfd pfd{out_fd_, POLLIN, 0};
    int ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR)
      continue;
    if (ready <= 0)
      return std::nullopt;
    char buf[4096];
    auto n = ::read(out_fd_, buf, sizeof buf);
    if (n <= 0)
      return std::nullopt;
    out_buf_.append(buf, static_cast<size_t>(n));
  }
}

std::string child_process::drain_stderr() {
  char buf[4096];
  for (;;) {
    auto n = ::read(err_fd_, buf, sizeof buf);
    if (n <= 0)
      break;
    err_buf_.append(buf, static_cast<size_t>(n));
  }
  return err_buf_;
}

void child_process::signal(int signo) {
  if (!status_)
    ::kill(pid_, signo);
}

std::optional<int> child_process::wait(std::chrono::milliseconds deadline) {
  if (status_)
    return status_;
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int status = 0;
    auto r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      status_ = exit_code(status);
      return status_;
    }
    if (std::chrono::steady_clock::now() >= until)
      return std::nullopt;
    // Drain stderr meanwhile so a chatty child cannot block on a full pipe.
    drain_stderr();
    pollfd pfd{err_fd_, POLLIN, 0};
    ::poll(&pfd, 1, 5);
  }
}

std::string binary(const std::string& relative) {
  return std::string{WAGER_BINARY_DIR} + "/" + relative;
}

} // namespace wager::test
