#pragma once

#include <chrono>
#include <thread>

namespace wager::test {

// Polls `condition` until it holds or `deadline` passes; returns whether it
// held. A condition with a deadline, never a sleep standing in for one.
template <class Predicate>
bool wait_until(Predicate&& condition,
                std::chrono::milliseconds deadline = std::chrono::seconds{10}) {
  auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(std::chrono::milliseconds{2});
  }
  return true;
}

} // namespace wager::test
