// The bounded send queue of a stream connection: what conflates, what is
// never dropped, and when a slow client is cut off.

#include "wager/gateway/stream_outbox.hpp"

#include <doctest/doctest.h>

using namespace wager;

TEST_CASE("a newer price merges the waiting one and moves behind later messages") {
  stream_outbox box;
  REQUIRE(box.push_price("m1", 5, {{"home", "2.00"}, {"away", "3.00"}}));
  REQUIRE(box.push(R"({"type":"status","version":6})"));
  REQUIRE(box.push_price("m1", 7, {{"home", "2.10"}}));
  CHECK(box.size() == 2);
  CHECK(box.conflated() == 1);
  CHECK(box.take()->text == R"({"type":"status","version":6})");
  CHECK(box.take()->text
        == R"({"type":"price","market_id":"m1","version":7,"prices":{"away":"3.00","home":"2.10"}})");
  CHECK_FALSE(box.take());
}

TEST_CASE("prices of different markets do not conflate") {
  stream_outbox box;
  box.push_price("m1", 1, {{"a", "2.00"}});
  box.push_price("m2", 1, {{"a", "2.00"}});
  CHECK(box.size() == 2);
  CHECK(box.conflated() == 0);
}

TEST_CASE("a client too slow for reliable messages is closed with a reason") {
  stream_outbox box{{3, 16}};
  CHECK(box.push("a"));
  CHECK(box.push("b"));
  CHECK(box.push("c"));
  CHECK_FALSE(box.push("d"));
  CHECK(box.closed());
  auto item = box.take();
  REQUIRE(item);
  CHECK(item->close);
  CHECK(item->reason == "client too slow");
  CHECK_FALSE(box.take());
}

TEST_CASE("a graceful close sends what waits, then the close") {
  stream_outbox box;
  box.push("error");
  box.close("bye");
  CHECK_FALSE(box.push("late"));
  CHECK(box.take()->text == "error");
  auto item = box.take();
  CHECK(item->close);
  CHECK(item->reason == "bye");
}

TEST_CASE("the writer is woken for every new message") {
  stream_outbox box;
  int wakes = 0;
  box.on_ready([&] { ++wakes; });
  box.push("a");
  box.push_price("m", 1, {{"x", "1.50"}});
  CHECK(wakes == 2);
}
