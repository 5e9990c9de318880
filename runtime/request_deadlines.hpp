#pragma once

// Request timeouts for the hot paths, cheaper than CAF's own.
//
// A CAF 0.17 request with a finite timeout pushes an event to the actor
// clock, whose thread wakes for every one (a futex wake and two context
// switches), files it in two multimaps, and later sends the timeout error
// whether or not the answer came (0.17 never cancels one): at thousands of
// requests a second that thread was a sixth of a node's CPU. A request made
// with caf::infinite and armed here instead costs a push onto a vector under
// a mutex, with no wake; one thread sweeps the vectors every `tick` and
// sends sec::request_timeout, as CAF's clock would, to each requester still
// alive whose deadline has passed. The requester drops it when the answer
// came first (a response nobody waits for), as it drops CAF's own.
//
// A timeout fires between its deadline and one tick later. The requester is
// held weakly: an actor that quit is not kept alive by its timeouts.
//
// send_later is CAF's delayed_send on the same sweep, for a message an
// actor sends itself with every command (a bet's answer deadline): the
// same push, no wake, and the message is dropped if the receiver is gone.

#include <caf/actor_control_block.hpp>
#include <caf/duration.hpp>
#include <caf/message.hpp>
#include <caf/message_id.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace wager {

class request_deadlines {
public:
  using clock_type = std::chrono::steady_clock;

  explicit request_deadlines(std::chrono::milliseconds tick = std::chrono::milliseconds{10});

  // Stops the sweeping thread; deadlines not yet passed never fire.
  ~request_deadlines();

  request_deadlines(const request_deadlines&) = delete;
  request_deadlines& operator=(const request_deadlines&) = delete;

  // Where an armed deadline is, for disarm.
  struct ticket {
    int64_t tick = -1; // -1: nothing armed
    size_t index = 0;
  };

  // After `timeout` (finite; an infinite one is ignored), `requester` gets
  // sec::request_timeout as the response `response_id`, unless it is gone.
  ticket arm(caf::actor_control_block* requester, caf::message_id response_id,
             caf::duration timeout);

  // After `delay` (finite; an infinite one is ignored), `receiver` gets `msg`
  // as an asynchronous message with no sender, unless it is gone.
  void send_later(caf::actor_control_block* receiver, caf::duration delay, caf::message msg);

  // Forgets the deadline of `response_id` armed at `where`, if it has not
  // fired. A requester disarms when the answer comes first: else the
  // deadline stays until it fires, holding a weak reference (an actor that
  // quit keeps its memory until then) and, for a long-lived requester,
  // sending it a timeout it no longer waits for.
  void disarm(const ticket& where, caf::message_id response_id);

  // Armed and not yet fired or dropped.
  size_t pending() const;

private:
  struct deadline {
    caf::weak_actor_ptr receiver;
    caf::message_id response_id;
    caf::message message; // send_later's; empty: sec::request_timeout
  };
  ticket add(caf::actor_control_block* receiver, caf::duration delay, deadline d);
  struct shared;

  std::chrono::milliseconds tick_;
  std::shared_ptr<shared> shared_;
  std::thread sweeper_;
};

} // namespace wager
