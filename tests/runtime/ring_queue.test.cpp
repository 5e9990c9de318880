#include "wager/runtime/ring_queue.hpp"

#include <doctest/doctest.h>
#include <rapidcheck.h>

#include <deque>
#include <string>
#include <vector>

using wager::ring_queue;

TEST_CASE("a ring queue behaves like a deque under random pushes, pops, erases and clears") {
  auto ok = rc::check("a ring queue behaves like a deque", [](const std::vector<int>& ops) {
    ring_queue<std::string> q;
    std::deque<std::string> model;
    for (auto op : ops) {
      auto kind = (op % 10 + 10) % 10;
      if (kind < 6) {
        q.push_back(std::to_string(op));
        model.push_back(std::to_string(op));
      } else if (kind < 8) {
        if (!model.empty()) {
          RC_ASSERT(q.front() == model.front());
          q.pop_front();
          model.pop_front();
        }
      } else if (kind < 9) {
        if (!model.empty()) {
          auto at = static_cast<size_t>(op < 0 ? -(op / 10) : op / 10) % model.size();
          q.erase(at);
          model.erase(model.begin() + static_cast<std::ptrdiff_t>(at));
        }
      } else {
        q.clear();
        model.clear();
      }
      RC_ASSERT(q.size() == model.size());
      RC_ASSERT(std::vector<std::string>(q.begin(), q.end())
                == std::vector<std::string>(model.begin(), model.end()));
      RC_ASSERT(std::vector<std::string>(q.rbegin(), q.rend())
                == std::vector<std::string>(model.rbegin(), model.rend()));
      if (!model.empty())
        RC_ASSERT(q.back() == model.back());
    }
  });
  CHECK(ok);
}

TEST_CASE("an empty ring queue holds no memory and equal contents compare equal") {
  ring_queue<int> a, b;
  CHECK(a.empty());
  CHECK(a == b);
  for (int i = 0; i < 10; ++i)
    a.push_back(i);
  for (int i = 5; i < 10; ++i)
    b.push_back(i);
  for (int i = 0; i < 5; ++i)
    a.pop_front();
  // Same elements at different offsets in their buffers.
  CHECK(a == b);
  b.push_back(10);
  CHECK_FALSE(a == b);
  const auto& c = a;
  int sum = 0;
  for (auto x : c)
    sum += x;
  CHECK(sum == 5 + 6 + 7 + 8 + 9);
}
