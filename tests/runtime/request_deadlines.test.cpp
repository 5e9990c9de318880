#include "wager/runtime/request_deadlines.hpp"

#include "support/wait.hpp"

#include <caf/all.hpp>
#include <doctest/doctest.h>

#include <future>

using namespace std::chrono_literals;

namespace {

using ping_atom = caf::atom_constant<caf::atom("ping")>;

// Never answers a ping.
caf::behavior silent(caf::event_based_actor* self) {
  return {[=](ping_atom) -> caf::response_promise { return self->make_response_promise(); }};
}

} // namespace

TEST_CASE("an armed deadline sends request_timeout to the requester, and an answer that came "
          "first wins") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  wager::request_deadlines deadlines{5ms};
  auto target = sys.spawn(silent);

  caf::scoped_actor self{sys};
  auto handle = self->request(target, caf::infinite, ping_atom::value);
  deadlines.arm(self->ctrl(), handle.id(), caf::duration{20ms});
  CHECK(deadlines.pending() == 1u);
  caf::error err;
  handle.receive([](caf::message&) { FAIL("the silent actor answered"); },
                 [&](caf::error& e) { err = std::move(e); });
  CHECK(err == caf::sec::request_timeout);
  CHECK(deadlines.pending() == 0u);

  // Answered before its deadline: the late timeout is a response nobody
  // waits for, dropped; the next request is unaffected.
  auto echo = sys.spawn([]() -> caf::behavior { return {[](int x) { return x; }}; });
  auto answered = self->request(echo, caf::infinite, 7);
  deadlines.arm(self->ctrl(), answered.id(), caf::duration{20ms});
  int got = 0;
  answered.receive([&](int x) { got = x; }, [](caf::error&) { FAIL("timed out"); });
  CHECK(got == 7);
  REQUIRE(wager::test::wait_until([&] { return deadlines.pending() == 0; }));
  auto second = self->request(echo, caf::infinite, 8);
  deadlines.arm(self->ctrl(), second.id(), caf::duration{10s});
  second.receive([&](int x) { got = x; }, [](caf::error&) { FAIL("the stale timeout was taken"); });
  CHECK(got == 8);
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(echo, caf::exit_reason::user_shutdown);
}

TEST_CASE("a deadline whose requester quit fires into nothing, and an infinite timeout is never "
          "armed") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  wager::request_deadlines deadlines{5ms};
  auto target = sys.spawn(silent);
  std::promise<size_t> armed;
  auto requester = sys.spawn([&, target](caf::event_based_actor* me) {
    auto h = me->request(target, caf::infinite, ping_atom::value);
    deadlines.arm(me->ctrl(), h.id(), caf::duration{20ms});
    deadlines.arm(me->ctrl(), h.id(), caf::infinite);
    armed.set_value(deadlines.pending());
    me->quit();
  });
  CHECK(armed.get_future().get() == 1u); // the infinite one is not armed
  REQUIRE(wager::test::wait_until([&] { return deadlines.pending() == 0; }));
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
}

TEST_CASE("a disarmed deadline never fires, and disarming one that fired changes nothing") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  wager::request_deadlines deadlines{5ms};
  auto target = sys.spawn(silent);
  caf::scoped_actor self{sys};

  auto kept = self->request(target, caf::infinite, ping_atom::value);
  auto kept_ticket = deadlines.arm(self->ctrl(), kept.id(), caf::duration{10s});
  auto disarmed = self->request(target, caf::infinite, ping_atom::value);
  auto ticket = deadlines.arm(self->ctrl(), disarmed.id(), caf::duration{20ms});
  CHECK(deadlines.pending() == 2u);
  deadlines.disarm(ticket, kept.id()); // not its request: nothing happens
  CHECK(deadlines.pending() == 2u);
  deadlines.disarm(ticket, disarmed.id());
  CHECK(deadlines.pending() == 1u);
  deadlines.disarm(ticket, disarmed.id()); // twice: nothing more
  CHECK(deadlines.pending() == 1u);

  // A third request's timeout fires; by then the disarmed one's bucket has
  // been swept too, and the only message is the third's.
  auto fired = self->request(target, caf::infinite, ping_atom::value);
  auto fired_ticket = deadlines.arm(self->ctrl(), fired.id(), caf::duration{40ms});
  caf::error err;
  fired.receive([](caf::message&) { FAIL("the silent actor answered"); },
                [&](caf::error& e) { err = std::move(e); });
  CHECK(err == caf::sec::request_timeout);
  deadlines.disarm(fired_ticket, fired.id());
  CHECK(deadlines.pending() == 1u); // the 10 s one
  bool disarmed_answered = false;
  self->receive([&](caf::message&) { disarmed_answered = true; },
                [&](caf::error&) { disarmed_answered = true; }, caf::after(std::chrono::seconds{0}) >> [] {});
  CHECK_FALSE(disarmed_answered);
  deadlines.disarm(kept_ticket, kept.id());
  CHECK(deadlines.pending() == 0u);
  caf::anon_send_exit(target, caf::exit_reason::user_shutdown);
}

TEST_CASE("send_later delivers its message once the delay has passed, never before, and drops it "
          "for a receiver that quit") {
  caf::actor_system_config cfg;
  caf::actor_system sys{cfg};
  wager::request_deadlines deadlines{5ms};
  caf::scoped_actor self{sys};

  auto sent = std::chrono::steady_clock::now();
  deadlines.send_later(self->ctrl(), caf::duration{30ms}, caf::make_message(ping_atom::value, 7));
  deadlines.send_later(self->ctrl(), caf::infinite, caf::make_message(ping_atom::value, 8));
  deadlines.send_later(self->ctrl(), caf::duration{30ms}, caf::message{});
  CHECK(deadlines.pending() == 1u); // neither the infinite one nor the empty one
  int got = 0;
  self->receive([&](ping_atom, int x) { got = x; },
                caf::after(std::chrono::seconds{10}) >> [] { FAIL("never delivered"); });
  CHECK(got == 7);
  CHECK(std::chrono::steady_clock::now() - sent >= 30ms);
  CHECK(deadlines.pending() == 0u);

  // The receiver is gone when it fires: nothing is sent, nothing is kept.
  std::promise<void> armed;
  auto gone = sys.spawn([&](caf::event_based_actor* me) {
    deadlines.send_later(me->ctrl(), caf::duration{20ms}, caf::make_message(ping_atom::value, 9));
    armed.set_value();
    me->quit();
  });
  armed.get_future().get();
  REQUIRE(wager::test::wait_until([&] { return deadlines.pending() == 0; }));
  self->receive([&](ping_atom, int x) { got = x; },
                caf::after(std::chrono::seconds{0}) >> [] {});
  CHECK(got == 7);
}
