// The money audit over real journals: a healthy ledger written event by
// event through the journal API, then each way money can go wrong, forged
// on purpose, named by the audit with its stream and seq.

#include "support/temp_dir.hpp"

#include "wager/actors/ledger_audit.hpp"
#include "wager/actors/market_state.hpp"
#include "wager/actors/wallet_state.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/persistence/sqlite_journal.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <future>
#include <map>

using namespace wager;

namespace {

// A journal in a temporary dir, and appends that wait for their answer.
class ledger_journal {
public:
  ledger_journal() {
    journal_options o;
    o.path = (dir_ / "journal.db").string();
    path_ = o.path;
    auto j = open_sqlite_journal(std::move(o));
    REQUIRE_MESSAGE(j, message_of(j.error()));
    journal_ = std::move(*j);
  }

  const std::string& path() const { return path_; }
  journal& get() { return *journal_; }

  // Appends to "wallet/<user>" and returns the seq of the event.
  uint64_t wallet(const std::string& user, wallet_event e) {
    return append("wallet/" + user, encode(e));
  }
  uint64_t market(const std::string& id, market_event e) {
    return append("market/" + id, encode(e));
  }

  ledger_report audit() {
    auto report = audit_ledger(*journal_);
    REQUIRE_MESSAGE(report, message_of(report.error()));
    return *report;
  }

private:
  uint64_t append(const std::string& stream, event e) {
    auto& last = last_[stream];
    auto done = std::make_shared<std::promise<caf::expected<append_ack>>>();
    auto answer = done->get_future();
    auto err = journal_->append({stream, last, {std::move(e)}, std::nullopt},
                                [done](caf::expected<append_ack> r) { done->set_value(r); });
    REQUIRE_MESSAGE(!err, message_of(err));
    auto ack = answer.get();
    REQUIRE_MESSAGE(ack, message_of(ack.error()));
    return last = ack->last_seq;
  }

  test::temp_dir dir_;
  std::string path_;
  std::unique_ptr<journal> journal_;
  std::map<std::string, uint64_t> last_;
};

market_definition match(const std::string& id) {
  return {market_id{id}, "Home v Away", "Match result",
          {{selection_id{"home"}, "Home", price{200}}, {selection_id{"away"}, "Away", price{300}}},
          {money{100'000}, money{1'000'000}}, 0};
}

stake_held hold(const std::string& request, const std::string& bet, const std::string& market,
                const std::string& selection, int64_t stake, int32_t asked) {
  return {request_id{request}, bet_id{bet},      market_id{market},
          selection_id{selection}, money{stake}, price{asked}};
}

bet_accepted accept(const std::string& bet, const std::string& user,
                    const std::string& selection, int64_t stake, int32_t at) {
  return {bet_id{bet}, user_id{user}, selection_id{selection}, money{stake}, price{at}};
}

// Two bettors on one market, settled (home wins) and paid, one withdrawal:
//   u1 deposits 10000, stakes 1000 on home at 2.00, wins 2000, withdraws 3000
//   u2 deposits 5000, stakes 500 on away at 3.00, loses
struct settled_ledger {
  ledger_journal j;
  uint64_t u1_payout_seq = 0;

  settled_ledger() {
    j.market("m1", market_defined{match("m1")});
    j.market("m1", status_changed{market_status::open});
    j.wallet("u1", deposited{request_id{"d1"}, money{10'000}});
    j.wallet("u1", hold("r1", "b1", "m1", "home", 1000, 200));
    j.market("m1", accept("b1", "u1", "home", 1000, 200));
    j.wallet("u1", stake_committed{bet_id{"b1"}, price{200}});
    j.wallet("u2", deposited{request_id{"d2"}, money{5000}});
    j.wallet("u2", hold("r2", "b2", "m1", "away", 500, 300));
    j.market("m1", accept("b2", "u2", "away", 500, 300));
    j.wallet("u2", stake_committed{bet_id{"b2"}, price{300}});
    j.market("m1", market_resulted{{"home"}, false});
    u1_payout_seq = j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::won, money{2000}});
    j.wallet("u2", payout_credited{bet_id{"b2"}, bet_status::lost, money{0}});
    j.market("m1", payouts_acknowledged{{"b1", "b2"}});
    j.wallet("u1", withdrawn{request_id{"w1"}, money{3000}});
  }
};

const audit_violation& first(const ledger_report& r) {
  REQUIRE_FALSE(r.ok());
  return r.violations.front();
}

} // namespace

TEST_CASE("a settled, paid ledger passes with its totals in minor units") {
  settled_ledger l;
  auto r = l.j.audit();
  CHECK(r.ok());
  CHECK(r.wallets == 2);
  CHECK(r.markets == 1);
  CHECK(r.events == 15);
  CHECK(r.bets_accepted == 2);
  CHECK(r.bets_committed == 2);
  CHECK(r.bets_settled == 2);
  CHECK(r.payouts_in_flight == 0);
  CHECK(r.totals.deposits == money{15'000});
  CHECK(r.totals.withdrawals == money{3000});
  CHECK(r.totals.available == money{12'500});
  CHECK(r.totals.held == money{0});
  CHECK(r.totals.stakes == money{1500});
  CHECK(r.totals.payouts == money{2000});
  CHECK(r.totals.house_result() == money{-500});
}

TEST_CASE("a second payout for one bet is a bet settled twice") {
  settled_ledger l;
  auto seq = l.j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::won, money{2000}});
  auto r = l.j.audit();
  auto& v = first(r);
  CHECK(v.code == "bet_settled_twice");
  CHECK(v.stream == "wallet/u1");
  CHECK(v.seq == seq);
  CHECK(v.message.find(std::to_string(l.u1_payout_seq)) != std::string::npos);
  CHECK(r.violations.size() == 1); // left out of the fold: no cascade
}

TEST_CASE("a payout for a bet the wallet never staked is refused by the audit") {
  settled_ledger l;
  auto seq = l.j.wallet("u2", payout_credited{bet_id{"b-forged"}, bet_status::won, money{9999}});
  auto r = l.j.audit();
  auto& v = first(r);
  CHECK(v.code == "payout_without_bet");
  CHECK(v.stream == "wallet/u2");
  CHECK(v.seq == seq);
}

TEST_CASE("a withdrawal beyond the balance is a negative balance") {
  settled_ledger l;
  auto seq = l.j.wallet("u2", withdrawn{request_id{"w-big"}, money{4501}});
  auto r = l.j.audit();
  auto& v = first(r);
  CHECK(v.code == "negative_balance");
  CHECK(v.stream == "wallet/u2");
  CHECK(v.seq == seq);
}

TEST_CASE("a committed stake no market accepted is named with its wallet event") {
  settled_ledger l;
  l.j.wallet("u2", hold("r3", "b3", "m1", "home", 100, 200));
  auto seq = l.j.wallet("u2", stake_committed{bet_id{"b3"}, price{200}});
  auto r = l.j.audit();
  auto& v = first(r);
  CHECK(v.code == "commit_without_acceptance");
  CHECK(v.stream == "wallet/u2");
  CHECK(v.seq == seq);
}

TEST_CASE("a stake released after its market accepted the bet is a violation") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  j.wallet("u1", hold("r1", "b1", "m1", "home", 400, 200));
  j.market("m1", accept("b1", "u1", "home", 400, 200));
  auto seq = j.wallet("u1", hold_released{bet_id{"b1"}, errc::price_changed, price{190}});
  auto r = j.audit();
  auto& v = first(r);
  CHECK(v.code == "released_accepted_bet");
  CHECK(v.seq == seq);
}

TEST_CASE("a commit at another price than the market accepted is a mismatch") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  j.wallet("u1", hold("r1", "b1", "m1", "home", 400, 200));
  j.market("m1", accept("b1", "u1", "home", 400, 200));
  j.wallet("u1", stake_committed{bet_id{"b1"}, price{250}});
  auto r = j.audit();
  auto& v = first(r);
  CHECK(v.code == "commit_mismatch");
  CHECK(v.message.find("price 2.50 vs 2.00") != std::string::npos);
}

TEST_CASE("a payout that is not what the result owes is a payout mismatch") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  j.wallet("u1", hold("r1", "b1", "m1", "away", 333, 300));
  j.market("m1", accept("b1", "u1", "away", 333, 300));
  j.wallet("u1", stake_committed{bet_id{"b1"}, price{300}});
  j.market("m1", market_resulted{{"away"}, false});
  // 333 x 3.00 = 999; one cent more is money created.
  auto seq = j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::won, money{1000}});
  auto r = j.audit();
  auto& v = first(r);
  CHECK(v.code == "payout_mismatch");
  CHECK(v.seq == seq);
}

TEST_CASE("an accepted bet the wallet still holds and an unpaid outbox are in flight, not wrong") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  j.wallet("u1", hold("r1", "b1", "m1", "home", 400, 200));
  j.market("m1", accept("b1", "u1", "home", 400, 200));
  j.wallet("u2", deposited{request_id{"d2"}, money{1000}});
  j.wallet("u2", hold("r2", "b2", "m1", "home", 100, 200));
  j.market("m1", accept("b2", "u2", "home", 100, 200));
  j.wallet("u2", stake_committed{bet_id{"b2"}, price{200}});
  j.market("m1", market_resulted{{"home"}, false});
  auto r = j.audit();
  CHECK(r.ok());
  CHECK(r.bets_pending == 1);
  CHECK(r.holds_open == 1);
  CHECK(r.totals.held == money{400});
  CHECK(r.payouts_in_flight == 2);
  CHECK(r.payouts_in_flight_amount == money{1000}); // 800 + 200
}

TEST_CASE("a payout the market counts as acknowledged but no wallet credited is lost money") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  j.wallet("u1", hold("r1", "b1", "m1", "home", 400, 200));
  j.market("m1", accept("b1", "u1", "home", 400, 200));
  j.wallet("u1", stake_committed{bet_id{"b1"}, price{200}});
  j.market("m1", market_resulted{{"home"}, false});
  auto seq = j.market("m1", payouts_acknowledged{{"b1"}});
  auto r = j.audit();
  auto& v = first(r);
  CHECK(v.code == "payout_lost");
  CHECK(v.stream == "market/m1");
  CHECK(v.seq == seq);
}

TEST_CASE("an illegal status change and a second result are named on the market") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.market("m1", market_resulted{{}, true});
  auto seq = j.market("m1", status_changed{market_status::open});
  auto again = j.market("m1", market_resulted{{"home"}, false});
  auto r = j.audit();
  REQUIRE(r.violations.size() == 2);
  CHECK(r.violations[0].code == "illegal_transition");
  CHECK(r.violations[0].seq == seq);
  CHECK(r.violations[1].code == "resulted_twice");
  CHECK(r.violations[1].seq == again);
}

TEST_CASE("the audit gives the same answer whichever side of a bet it reads first") {
  settled_ledger l;
  l.j.wallet("u1", hold("r9", "b9", "m1", "home", 100, 200));
  l.j.wallet("u1", stake_committed{bet_id{"b9"}, price{200}}); // never accepted
  auto markets_first = l.j.audit();
  ledger_audit wallets_first;
  for (auto stream : {"wallet/u2", "wallet/u1", "market/m1"}) {
    auto page = l.j.get().read_events(stream, 1, 1000);
    REQUIRE(page);
    wallets_first.add(stream, *page);
  }
  auto& r = wallets_first.close();
  CHECK(boost::json::serialize(to_json(r)) == boost::json::serialize(to_json(markets_first)));
  CHECK(first(r).code == "commit_without_acceptance");
}

TEST_CASE("verify_journal with the audit reports money problems beside integrity") {
  settled_ledger l;
  l.j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::won, money{2000}});
  ledger_audit audit;
  auto checked = verify_journal(l.j.path(), &audit);
  REQUIRE(checked);
  REQUIRE(checked->problems.size() == 1);
  CHECK(checked->problems[0].rfind("money: wallet/u1 seq ", 0) == 0);
  CHECK(checked->problems[0].find("bet_settled_twice") != std::string::npos);
  CHECK(audit.report().wallets == 2);
}

TEST_CASE("an event the folds cannot read and a gap in seqs are named, not folded") {
  ledger_journal j;
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  ledger_audit audit;
  auto page = j.get().read_events("wallet/u1", 1, 10);
  REQUIRE(page);
  auto unreadable = page->front();
  unreadable.seq = 2;
  unreadable.data = event::make("deposited", 1, boost::json::object{{"amount", "lots"}});
  auto after_gap = page->front();
  after_gap.seq = 5;
  page->push_back(unreadable);
  page->push_back(after_gap);
  audit.add("wallet/u1", *page);
  auto& r = audit.close();
  REQUIRE(r.violations.size() == 2);
  CHECK(r.violations[0].code == "undecodable_event");
  CHECK(r.violations[0].seq == 2);
  CHECK(r.violations[1].code == "seq_gap");
  CHECK(r.violations[1].seq == 5);
  CHECK(r.totals.deposits == money{1000}); // neither was counted
}

TEST_CASE("a non-runner's refund is owed from its withdrawal, and a wrong one is named") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  j.wallet("u1", hold("r1", "b1", "m1", "home", 400, 200));
  j.market("m1", accept("b1", "u1", "home", 400, 200));
  j.wallet("u1", stake_committed{bet_id{"b1"}, price{200}});
  j.wallet("u1", hold("r2", "b2", "m1", "away", 300, 300));
  j.market("m1", accept("b2", "u1", "away", 300, 300));
  j.wallet("u1", stake_committed{bet_id{"b2"}, price{300}});
  j.market("m1", selection_withdrawn{selection_id{"home"}});
  // Refunded before any result: owed, and paid.
  j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::void_, money{400}});
  j.market("m1", payouts_acknowledged{{"b1"}});
  auto r = j.audit();
  CHECK(r.ok());
  CHECK(r.markets_resulted == 0);
  // The result does not owe the non-runner's bet again.
  j.market("m1", status_changed{market_status::closed});
  j.market("m1", market_resulted{{"away"}, false, {}, {"home"}, {}, {}});
  j.wallet("u1", payout_credited{bet_id{"b2"}, bet_status::won, money{900}});
  j.market("m1", payouts_acknowledged{{"b2"}});
  r = j.audit();
  CHECK(r.ok());
  CHECK(r.payouts_in_flight == 0);

  // A refund that pays as if the runner had won is named.
  ledger_journal k;
  k.market("m2", market_defined{match("m2")});
  k.market("m2", status_changed{market_status::open});
  k.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  k.wallet("u1", hold("r1", "b1", "m2", "home", 400, 200));
  k.market("m2", accept("b1", "u1", "home", 400, 200));
  k.wallet("u1", stake_committed{bet_id{"b1"}, price{200}});
  k.market("m2", selection_withdrawn{selection_id{"home"}});
  auto seq = k.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::won, money{800}});
  auto again = k.market("m2", selection_withdrawn{selection_id{"home"}});
  r = k.audit();
  REQUIRE(r.violations.size() == 2);
  CHECK(r.violations[0].code == "withdrawn_twice");
  CHECK(r.violations[0].seq == again);
  CHECK(r.violations[1].code == "payout_mismatch");
  CHECK(r.violations[1].seq == seq);
}

TEST_CASE("racing results are audited to the minor unit: a dead heat and Rule 4 as the market owes them") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{10'000}});
  j.wallet("u1", hold("r1", "b1", "m1", "home", 1000, 200));
  j.market("m1", accept("b1", "u1", "home", 1000, 200));
  j.wallet("u1", stake_committed{bet_id{"b1"}, price{200}});
  j.market("m1", status_changed{market_status::closed});
  market_resulted result{{"home"}, false};
  result.dead_heat["home"] = ratio{1, 2};
  result.rule4 = {{20, 4'000'000'000'000}}; // long after the bet
  j.market("m1", result);
  // 1000 x 1/2 = 500 staked at 2.00: winnings 500 less 20%, 400: 900 back.
  auto seq = j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::won, money{1000}});
  auto r = j.audit();
  auto& v = first(r);
  CHECK(v.code == "payout_mismatch");
  CHECK(v.seq == seq);
  CHECK(v.message.find("owes 900 (won)") != std::string::npos);
}

TEST_CASE("a cancelled bet is owed its stake from the cancellation, and a cancellation after the result is named") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  j.wallet("u1", hold("r1", "b1", "m1", "home", 400, 200));
  j.market("m1", accept("b1", "u1", "home", 400, 200));
  j.wallet("u1", stake_committed{bet_id{"b1"}, price{200}});
  j.market("m1", bets_cancelled{0, 4'000'000'000'000, {"b1"}});
  auto r = j.audit();
  CHECK(r.ok());
  CHECK(r.payouts_in_flight == 1);
  CHECK(r.payouts_in_flight_amount == money{400});
  j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::void_, money{400}});
  j.market("m1", payouts_acknowledged{{"b1"}});
  j.market("m1", status_changed{market_status::closed});
  j.market("m1", market_resulted{{"home"}, false});
  r = j.audit();
  CHECK(r.ok());
  auto late = j.market("m1", bets_cancelled{0, 4'000'000'000'000, {"b1"}});
  r = j.audit();
  auto& v = first(r);
  CHECK(v.code == "cancel_invalid");
  CHECK(v.seq == late);
}

TEST_CASE("a rolled-back result: its reversals may take a wallet below zero, and a wrong one is "
          "named") {
  ledger_journal j;
  j.market("m1", market_defined{match("m1")});
  j.market("m1", status_changed{market_status::open});
  j.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  j.wallet("u1", hold("r1", "b1", "m1", "home", 1000, 200));
  j.market("m1", accept("b1", "u1", "home", 1000, 200));
  j.wallet("u1", stake_committed{bet_id{"b1"}, price{200}});
  j.market("m1", market_resulted{{"home"}, false});
  j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::won, money{2000}, 1});
  j.market("m1", payouts_acknowledged{{"b1"}, {1}});
  j.wallet("u1", withdrawn{request_id{"w1"}, money{2000}});
  j.market("m1", settlement_rolled_back{});
  // The reversal is owed, not yet taken: in flight.
  auto r = j.audit();
  CHECK(r.ok());
  CHECK(r.payouts_in_flight == 1);
  j.wallet("u1", payout_reversed{bet_id{"b1"}, money{2000}, 2});
  j.market("m1", payouts_acknowledged{{"b1"}, {2}});
  // -20.00 after the reversal is no violation.
  r = j.audit();
  CHECK(r.ok());
  CHECK(r.payouts_reversed == 1);
  CHECK(r.bets_settled == 0);
  CHECK(r.totals.available.minor == -2000);
  // The second result pays the bet again; the books balance.
  j.market("m1", market_resulted{{"away"}, false});
  j.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::lost, money{0}, 3});
  j.market("m1", payouts_acknowledged{{"b1"}, {3}});
  r = j.audit();
  CHECK(r.ok());
  CHECK(r.bets_settled == 1);

  // A reversal of more than the bet was paid is named, and so is a
  // withdrawal out of a wallet below zero.
  ledger_journal k;
  k.market("m1", market_defined{match("m1")});
  k.market("m1", status_changed{market_status::open});
  k.wallet("u1", deposited{request_id{"d1"}, money{1000}});
  k.wallet("u1", hold("r1", "b1", "m1", "home", 1000, 200));
  k.market("m1", accept("b1", "u1", "home", 1000, 200));
  k.wallet("u1", stake_committed{bet_id{"b1"}, price{200}});
  k.market("m1", market_resulted{{"home"}, false});
  k.wallet("u1", payout_credited{bet_id{"b1"}, bet_status::won, money{2000}, 1});
  k.market("m1", settlement_rolled_back{});
  auto wrong = k.wallet("u1", payout_reversed{bet_id{"b1"}, money{2500}, 2});
  k.wallet("u1", payout_reversed{bet_id{"b1"}, money{2000}, 2});
  auto spent = k.wallet("u1", withdrawn{request_id{"w1"}, money{500}});
  r = k.audit();
  REQUIRE(r.violations.size() == 2);
  CHECK(r.violations[0].code == "reversal_invalid");
  CHECK(r.violations[0].seq == wrong);
  CHECK(r.violations[1].code == "negative_balance");
  CHECK(r.violations[1].seq == spent);
}
