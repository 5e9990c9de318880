#pragma once

// A real child process for tests: started with arguments and environment,
// its stdout and stderr read line by line with deadlines, signalled, reaped.

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace wager::test {

class child_process {
public:
  // Starts `program` with `args`; `env` entries are added to (or replace
  // those of) the current environment.
  child_process(const std::string& program, const std::vector<std::string>& args,
                const std::map<std::string, std::string>& env = {},
                const std::string& working_dir = {});
  ~child_process(); // kills (SIGKILL) and reaps a child still running

  child_process(const child_process&) = delete;
  child_process& operator=(const child_process&) = delete;

  pid_t pid() const { return pid_; }

  // The next stdout line, or nullopt at end of output or deadline.
  std::optional<std::string> read_line(std::chrono::milliseconds deadline);

  // Everything on stderr so far (non-blocking drain).
  std::string drain_stderr();

  void signal(int signo);

  // The exit status (or 128 + signal), or nullopt if still running at the
  // deadline.
  std::optional<int> wait(std::chrono::milliseconds deadline);

private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  std::string out_buf_;
  std::string err_buf_;
  std::optional<int> status_;
};

// The path of a program built in this tree, e.g. binary("apps/wager-node").
std::string binary(const std::string& relative);

} // namespace wager::test
