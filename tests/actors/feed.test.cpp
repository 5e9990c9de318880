// The feed ingest (actors/feed.hpp) on a real platform and journal: order,
// malformed lines, producers going down on a gap or on silence, explicit
// reopening, bet_stop ahead of queued prices, and settlement paid once.

#include "money_fixture.hpp"

#include "wager/actors/feed.hpp"

#include <doctest/doctest.h>

#include <future>
#include <mutex>

using namespace wager;
using namespace wager::test;

namespace {

std::string header(const std::string& type, const std::string& producer, uint64_t seq) {
  return R"({"type":")" + type + R"(","producer":")" + producer + R"(","seq":)"
         + std::to_string(seq) + R"(,"ts":)" + std::to_string(wall_ms());
}

std::string market_msg(const std::string& producer, uint64_t seq, const std::string& id,
                       const std::string& status = "open") {
  return header("market", producer, seq) + R"(,"market_id":")" + id
         + R"(","event":"Home v Away","name":"Match result","selections":[)"
           R"({"selection_id":"home","name":"Home","price":"2.50"},)"
           R"({"selection_id":"away","name":"Away","price":"3.00"}],)"
           R"("limits":{"max_stake":100000,"max_liability":100000000},"status":")"
         + status + R"("})";
}

std::string odds_msg(const std::string& producer, uint64_t seq, const std::string& id,
                     int32_t home, const std::string& status = "") {
  auto p = format_price(price{home});
  return header("odds_change", producer, seq) + R"(,"market_id":")" + id
         + R"(","prices":{"home":")" + p + R"("})"
         + (status.empty() ? "" : R"(,"status":")" + status + R"(")") + "}";
}

std::string stop_msg(const std::string& producer, uint64_t seq, const std::string& id) {
  return header("bet_stop", producer, seq) + R"(,"market_ids":[")" + id + R"("]})";
}

std::string settle_msg(const std::string& producer, uint64_t seq, const std::string& id,
                       const std::string& winner) {
  return header("bet_settlement", producer, seq) + R"(,"market_id":")" + id
         + R"(","winners":[")" + winner + R"("]})";
}

std::string alive_msg(const std::string& producer, uint64_t seq) {
  return header("alive", producer, seq) + "}";
}

feed_batch_result run(feed_ingest& feed, std::vector<std::string> lines) {
  auto done = std::make_shared<std::promise<feed_batch_result>>();
  auto result = done->get_future();
  feed.submit_batch(std::move(lines), [done](feed_batch_result r) { done->set_value(std::move(r)); });
  REQUIRE(result.wait_for(std::chrono::seconds{30}) == std::future_status::ready);
  return result.get();
}

market_status status_of(platform& p, const std::string& id) {
  auto v = get_market(p, id);
  REQUIRE(v);
  return v->status;
}

int32_t home_price(platform& p, const std::string& id) {
  auto v = get_market(p, id);
  REQUIRE(v);
  return v->definition.selections.at(0).current.hundredths;
}

// Every update a market pushes, in order.
struct update_log {
  std::mutex mutex;
  std::vector<market_update> updates;
  std::unique_ptr<platform::subscription> sub;

  update_log(platform& p, const std::string& market) {
    auto view = await<market_view>([&](auto done) {
      sub = p.subscribe(
        market_id{market},
        [this](const market_update& u) {
          std::lock_guard lock{mutex};
          updates.push_back(u);
        },
        done);
    });
    REQUIRE(view);
  }

  std::vector<market_update> snapshot() {
    std::lock_guard lock{mutex};
    return updates;
  }
};

feed_options fast_options(std::chrono::milliseconds silence = std::chrono::seconds{60}) {
  feed_options o;
  o.silence = silence;
  return o;
}

} // namespace

TEST_CASE("messages of one market are applied in the order they arrived") {
  money_world w;
  feed_ingest feed{w.p().system(), w.p().directory(), w.p().metrics(), fast_options()};
  auto first = run(feed, {market_msg("p1", 1, "m1")});
  REQUIRE(first.applied == 1);
  update_log log{w.p(), "m1"};
  std::vector<std::string> lines;
  for (int i = 0; i < 60; ++i)
    lines.push_back(odds_msg("p1", 2 + i, "m1", 200 + i));
  auto submitted_us = feed_clock_us();
  auto r = run(feed, lines);
  CHECK(r.applied == 60);
  CHECK(r.invalid == 0);
  CHECK(home_price(w.p(), "m1") == 259);
  REQUIRE(wait_until([&] { return log.snapshot().size() == 60; }));
  auto updates = log.snapshot();
  for (size_t i = 0; i < updates.size(); ++i) {
    CHECK(updates[i].prices.at("home").hundredths == 200 + static_cast<int32_t>(i));
    if (i > 0)
      CHECK(updates[i].version == updates[i - 1].version + 1);
    // Each update carries when its feed message reached the node, for the
    // edge's feed-to-push latency.
    CHECK(updates[i].feed_received_us >= submitted_us);
    CHECK(updates[i].feed_received_us <= feed_clock_us());
  }
  // A price set by the operator, not the feed, carries none.
  REQUIRE(set_price(w.p(), "m1", "home", 300));
  REQUIRE(wait_until([&] { return log.snapshot().size() == 61; }));
  CHECK(log.snapshot().back().feed_received_us == 0);
}

TEST_CASE("each malformed kind is skipped, counted by reason, and the lines after it apply") {
  money_world w;
  feed_ingest feed{w.p().system(), w.p().directory(), w.p().metrics(), fast_options()};
  REQUIRE(run(feed, {market_msg("p1", 1, "m1")}).applied == 1);
  auto r = run(feed, {
                       "{not json",
                       R"({"type":"odds_change","producer":"p1","ts":1,"market_id":"m1","prices":{"home":"2.10"}})",
                       R"({"type":"odds_change","producer":"p1","seq":"x","ts":1,"market_id":"m1","prices":{"home":"2.10"}})",
                       R"({"type":"rollback","producer":"p1","seq":2,"ts":1})",
                       odds_msg("p1", 2, "m1", 210),
                       R"({"type":"odds_change","producer":"p1","seq":3,"ts":1,"market_id":"m1","prices":{"home":"0.50"}})",
                       odds_msg("p1", 3, "nope", 220),
                       odds_msg("p1", 3, "m1", 230),
                       odds_msg("p1", 4, "m1", 240),
                     });
  CHECK(r.received == 9);
  CHECK(r.applied == 2);
  CHECK(r.invalid == 7);
  REQUIRE(r.errors.size() == 7);
  CHECK(r.errors[0].reason == feed_reject::invalid_json);
  CHECK(r.errors[1].reason == feed_reject::missing_field);
  CHECK(r.errors[1].field == "seq");
  CHECK(r.errors[2].reason == feed_reject::invalid_field);
  CHECK(r.errors[3].reason == feed_reject::unknown_type);
  CHECK(r.errors[4].reason == feed_reject::invalid_price);
  CHECK(r.errors[5].reason == feed_reject::unknown_market);
  CHECK(r.errors[5].line == 7);
  // The unknown market's message used seq 3: a second seq 3 is a repeat.
  CHECK(r.errors[6].reason == feed_reject::stale_seq);
  CHECK(home_price(w.p(), "m1") == 240);
  auto text = w.p().metrics().render();
  CHECK(text.find(R"(wager_feed_invalid_total{reason="invalid_price"} 1)") != std::string::npos);
  CHECK(text.find(R"(wager_feed_invalid_total{reason="unknown_market"} 1)") != std::string::npos);
}

TEST_CASE("a seq gap suspends the markets of that producer only") {
  money_world w;
  feed_ingest feed{w.p().system(), w.p().directory(), w.p().metrics(), fast_options()};
  REQUIRE(run(feed, {market_msg("p1", 1, "m1"), market_msg("p1", 2, "m1b")}).applied == 2);
  REQUIRE(run(feed, {market_msg("p2", 1, "m2")}).applied == 1);
  REQUIRE(status_of(w.p(), "m1") == market_status::open);
  REQUIRE(status_of(w.p(), "m2") == market_status::open);

  // p1 jumps from 2 to 5: messages 3 and 4 were lost.
  auto r = run(feed, {odds_msg("p1", 5, "m1", 260)});
  CHECK(r.applied == 1);
  CHECK(status_of(w.p(), "m1") == market_status::suspended);
  CHECK(wait_until([&] { return status_of(w.p(), "m1b") == market_status::suspended; }));
  CHECK(home_price(w.p(), "m1") == 260); // the newer price is kept, the market stays shut
  auto p1 = feed.producer("p1");
  REQUIRE(p1);
  CHECK(p1->state == producer_state::down);

  // p2 goes on unaffected.
  CHECK(run(feed, {odds_msg("p2", 2, "m2", 270)}).applied == 1);
  CHECK(status_of(w.p(), "m2") == market_status::open);
  CHECK(feed.producer("p2")->state == producer_state::up);
}

TEST_CASE("a silent producer suspends its markets within silence_ms plus a margin") {
  using namespace std::chrono;
  constexpr auto silence = milliseconds{300};
  constexpr auto margin = milliseconds{700};
  money_world w;
  feed_ingest feed{w.p().system(), w.p().directory(), w.p().metrics(), fast_options(silence)};
  REQUIRE(run(feed, {market_msg("p1", 1, "m1")}).applied == 1);
  REQUIRE(run(feed, {market_msg("p2", 1, "m2")}).applied == 1);
  // p2 keeps talking; p1 falls silent after its next message.
  auto last = steady_clock::now();
  REQUIRE(run(feed, {alive_msg("p1", 2)}).applied == 1);
  uint64_t p2_seq = 2;
  bool suspended = wait_until(
    [&] {
      feed.submit(alive_msg("p2", p2_seq++));
      return status_of(w.p(), "m1") == market_status::suspended;
    },
    silence + margin);
  auto took = steady_clock::now() - last;
  CHECK(suspended);
  CHECK(took >= silence);
  CHECK(feed.producer("p1")->state == producer_state::down);
  CHECK(status_of(w.p(), "m2") == market_status::open);
  CHECK(feed.producer("p2")->state == producer_state::up);
}

TEST_CASE("suspended markets reopen only when the feed says so explicitly") {
  money_world w;
  feed_ingest feed{w.p().system(), w.p().directory(), w.p().metrics(), fast_options()};
  REQUIRE(run(feed, {market_msg("p1", 1, "m1")}).applied == 1);
  // A gap; the message after it asks to reopen but the producer is not in
  // order yet, so it may not.
  CHECK(run(feed, {odds_msg("p1", 4, "m1", 240, "open")}).applied == 1);
  CHECK(status_of(w.p(), "m1") == market_status::suspended);
  // In order again, prices only: still suspended.
  CHECK(run(feed, {odds_msg("p1", 5, "m1", 250)}).applied == 1);
  CHECK(feed.producer("p1")->state == producer_state::up);
  CHECK(status_of(w.p(), "m1") == market_status::suspended);
  // The explicit reopen.
  CHECK(run(feed, {odds_msg("p1", 6, "m1", 255, "open")}).applied == 1);
  CHECK(status_of(w.p(), "m1") == market_status::open);
  // The same with a market message after a bet_stop.
  CHECK(run(feed, {stop_msg("p1", 7, "m1")}).applied == 1);
  CHECK(status_of(w.p(), "m1") == market_status::suspended);
  CHECK(run(feed, {market_msg("p1", 8, "m1", "open")}).applied == 1);
  CHECK(status_of(w.p(), "m1") == market_status::open);
}

TEST_CASE("bet_stop overtakes a backlog of queued price updates") {
  money_world w;
  feed_ingest feed{w.p().system(), w.p().directory(), w.p().metrics(), fast_options()};
  REQUIRE(run(feed, {market_msg("p1", 1, "m1")}).applied == 1);
  update_log log{w.p(), "m1"};
  constexpr int updates = 300;
  std::vector<std::string> lines;
  for (int i = 0; i < updates; ++i)
    lines.push_back(odds_msg("p1", 2 + i, "m1", 200 + i, i == updates - 1 ? "open" : ""));
  lines.push_back(stop_msg("p1", 2 + updates, "m1"));
  auto r = run(feed, lines);
  CHECK(r.applied == updates + 1);
  CHECK(status_of(w.p(), "m1") == market_status::suspended); // the queued reopen was older
  CHECK(home_price(w.p(), "m1") == 200 + updates - 1);
  // The suspension came right after the update in flight, long before the
  // queued ones.
  REQUIRE(wait_until([&] { return log.snapshot().size() == updates + 1; }));
  auto seen = log.snapshot();
  size_t stop_at = seen.size();
  size_t prices_after = 0;
  for (size_t i = 0; i < seen.size(); ++i) {
    if (seen[i].status_changed && seen[i].status == market_status::suspended && stop_at == seen.size())
      stop_at = i;
    else if (stop_at < seen.size() && !seen[i].status_changed)
      ++prices_after;
  }
  REQUIRE(stop_at < seen.size());
  CHECK(stop_at <= 1);
  CHECK(prices_after >= updates - 2);
}

TEST_CASE("a settlement from the feed pays the winners exactly once, even when repeated") {
  money_world w;
  feed_ingest feed{w.p().system(), w.p().directory(), w.p().metrics(), fast_options()};
  REQUIRE(run(feed, {market_msg("p1", 1, "m1")}).applied == 1);
  REQUIRE(deposit(w.p(), "u1", "d1", 1000));
  REQUIRE(deposit(w.p(), "u2", "d2", 1000));
  auto b1 = place(w.p(), "u1", "b1", "m1", "home", 100, 250);
  auto b2 = place(w.p(), "u2", "b2", "m1", "away", 100, 300);
  REQUIRE(b1);
  REQUIRE(b2);
  auto r = run(feed, {stop_msg("p1", 2, "m1"), settle_msg("p1", 3, "m1", "home"),
                      settle_msg("p1", 4, "m1", "home")});
  CHECK(r.applied == 3);
  CHECK(status_of(w.p(), "m1") == market_status::settled);
  CHECK(wait_until([&] { return balance(w.p(), "u1").available.minor == 1150; }));
  // Repeated again later, and once more with a repeated seq.
  auto again = run(feed, {settle_msg("p1", 5, "m1", "home"), settle_msg("p1", 5, "m1", "home")});
  CHECK(again.applied == 1);
  CHECK(again.invalid == 1);
  CHECK(wait_until([&] {
    auto b = get_bet(w.p(), "u2", b2->id.value);
    return b && b->status == bet_status::lost;
  }));
  auto won = get_bet(w.p(), "u1", b1->id.value);
  REQUIRE(won);
  CHECK(won->status == bet_status::won);
  CHECK(balance(w.p(), "u1").available.minor == 1150);
  CHECK(balance(w.p(), "u1").held.minor == 0);
  CHECK(balance(w.p(), "u2").available.minor == 900);
  auto txs = transactions(w.p(), "u1");
  REQUIRE(txs);
  size_t credits = 0;
  for (auto& t : *txs)
    credits += t.kind == "payout" ? 1 : 0;
  CHECK(credits == 1);
  // A resulted market is forgotten by its producer: lanes stay bounded.
  CHECK(wait_until([&] { return feed.producer("p1")->markets == 0; }));
}

TEST_CASE("a full backlog marks the producer down and skips the overflow as overloaded") {
  money_world w;
  auto options = fast_options();
  options.backlog_max = 5;
  feed_ingest feed{w.p().system(), w.p().directory(), w.p().metrics(), options};
  REQUIRE(run(feed, {market_msg("p1", 1, "m1")}).applied == 1);
  // One update in flight, five waiting, the rest do not fit.
  std::vector<std::string> lines;
  for (int i = 0; i < 10; ++i)
    lines.push_back(odds_msg("p1", 2 + i, "m1", 200 + i));
  auto r = run(feed, lines);
  CHECK(r.applied == 6);
  CHECK(r.invalid == 4);
  for (auto& e : r.errors)
    CHECK(e.reason == feed_reject::overloaded);
  CHECK(status_of(w.p(), "m1") == market_status::suspended);
  CHECK(feed.producer("p1")->state == producer_state::down);
  CHECK(feed.producer("p1")->backlog == 0);
}
