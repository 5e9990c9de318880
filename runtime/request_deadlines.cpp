#include "wager/runtime/request_deadlines.hpp"

#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message_id.hpp>
#include <caf/sec.hpp>

#include <utility>

namespace wager {

// What the sweeping thread shares with the object: the thread may outlive
// it (below), so it holds only this.
struct request_deadlines::shared {
  mutable std::mutex mutex;
  std::condition_variable wake;
  bool stopping = false;
  // Deadlines by the tick they fire at (ms since the clock's epoch / tick).
  std::map<int64_t, std::vector<deadline>> due;
  size_t count = 0;
};

namespace {

// The tick a deadline at `t` fires in: rounded up, so it is never early.
int64_t due_tick(request_deadlines::clock_type::time_point t, std::chrono::milliseconds tick) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  return (ms.count() + tick.count() - 1) / tick.count();
}

// The last tick that has fully passed at `t`: rounded down, so a deadline
// whose tick this is has passed too.
int64_t passed_tick(request_deadlines::clock_type::time_point t, std::chrono::milliseconds tick) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  return ms.count() / tick.count();
}

} // namespace

request_deadlines::request_deadlines(std::chrono::milliseconds tick)
  : tick_(tick), shared_(std::make_shared<shared>()) {
  sweeper_ = std::thread{[s = shared_, tick] {
    std::vector<deadline> fire;
    std::unique_lock lock{s->mutex};
    while (!s->stopping) {
      s->wake.wait_for(lock, tick);
      auto now = passed_tick(clock_type::now(), tick);
      while (!s->due.empty() && s->due.begin()->first <= now) {
        for (auto& d : s->due.begin()->second)
          if (d.receiver != nullptr)
            fire.push_back(std::move(d));
        s->due.erase(s->due.begin());
      }
      s->count -= fire.size();
      if (fire.empty())
        continue;
      lock.unlock();
      for (auto& d : fire) {
        auto receiver = d.receiver.lock();
        if (!receiver)
          continue;
        if (d.message.empty())
          receiver->enqueue(nullptr, d.response_id,
                            caf::make_message(caf::make_error(caf::sec::request_timeout)),
                            nullptr);
        else
          receiver->enqueue(nullptr, caf::make_message_id(), std::move(d.message), nullptr);
      }
      // The last reference to an actor may go here, and with it, through
      // its state, this object: nothing below touches it.
      fire.clear();
      lock.lock();
    }
  }};
}

request_deadlines::~request_deadlines() {
  {
    std::lock_guard lock{shared_->mutex};
    shared_->stopping = true;
  }
  shared_->wake.notify_one();
  // Destroyed by the sweeper itself (an actor it held last went, and this
  // with it): it stops at its next look at `stopping`.
  if (sweeper_.get_id() == std::this_thread::get_id())
    sweeper_.detach();
  else
    sweeper_.join();
}

request_deadlines::ticket request_deadlines::arm(caf::actor_control_block* requester,
                                                  caf::message_id response_id,
                                                  caf::duration timeout) {
  return add(requester, timeout, deadline{{}, response_id, {}});
}

void request_deadlines::send_later(caf::actor_control_block* receiver, caf::duration delay,
                                   caf::message msg) {
  if (msg.empty())
    return;
  add(receiver, delay, deadline{{}, caf::make_message_id(), std::move(msg)});
}

request_deadlines::ticket request_deadlines::add(caf::actor_control_block* receiver,
                                                  caf::duration delay, deadline d) {
  if (!delay.valid() || receiver == nullptr)
    return {};
  d.receiver = caf::weak_actor_ptr{receiver};
  auto at = clock_type::now();
  at += delay;
  auto tick = due_tick(at, tick_);
  std::lock_guard lock{shared_->mutex};
  auto& bucket = shared_->due[tick];
  bucket.push_back(std::move(d));
  ++shared_->count;
  return ticket{tick, bucket.size() - 1};
}

void request_deadlines::disarm(const ticket& where, caf::message_id response_id) {
  if (where.tick < 0)
    return;
  std::lock_guard lock{shared_->mutex};
  auto bucket = shared_->due.find(where.tick);
  if (bucket == shared_->due.end() || where.index >= bucket->second.size())
    return; // fired
  auto& d = bucket->second[where.index];
  if (d.receiver == nullptr || d.response_id != response_id)
    return; // disarmed before, or another deadline in a bucket made again
  d.receiver.reset();
  --shared_->count;
}

size_t request_deadlines::pending() const {
  std::lock_guard lock{shared_->mutex};
  return shared_->count;
}

} // namespace wager
