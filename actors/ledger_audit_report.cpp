// The second half of the money audit: the checks across streams (both sides
// of every bet, the global equation), the report as JSON, and the public
// face of ledger_audit.

#include "wager/actors/ledger_audit.hpp"

#include "wager/actors/ledger_audit_state.hpp"
#include "wager/persistence/journal.hpp"

#include <algorithm>
#include <tuple>

namespace wager {

using namespace audit_detail;

namespace {

std::string text(money m) {
  return std::to_string(m.minor);
}

// What differs between the market's and the wallet's record of one bet, or
// empty when they agree. The price is compared only once committed: a held
// stake carries the asked price, the market may accept another (`better`).
std::string disagreement(const bet_record& r, const std::vector<std::string>& users,
                         const std::vector<std::string>& markets) {
  std::string out;
  auto add = [&](std::string what) { out += (out.empty() ? "" : "; ") + std::move(what); };
  if (r.wallet_user != r.accepted_user)
    add("user " + users[r.wallet_user] + " vs " + users[r.accepted_user]);
  if (r.wallet_market != r.accepted_market)
    add("market " + markets[r.wallet_market] + " vs " + markets[r.accepted_market]);
  if (r.wallet_stake != r.accepted_stake)
    add("stake " + text(r.wallet_stake) + " vs " + text(r.accepted_stake));
  if (r.wallet_each_way != r.accepted_each_way)
    add(std::string{"each-way "} + (r.wallet_each_way ? "yes" : "no") + " vs "
        + (r.accepted_each_way ? "yes" : "no"));
  if (r.step == wallet_step::committed && r.wallet_price != r.accepted_price)
    add("price " + format_price(r.wallet_price) + " vs " + format_price(r.accepted_price));
  return out;
}

} // namespace

// A slip against its legs' markets: every leg taken where the wallet
// committed it (same user, stake, each-way and price), given up where the
// wallet released it, and every result the wallet recorded the one its
// market's result owes. The payout itself was checked against those
// results as the wallet's stream was replayed.
void ledger_audit::impl::cross_check_slip(const std::string& id, const bet_record& r,
                                          std::vector<audit_violation>& found) {
  auto wallet = "wallet/" + users[r.wallet_user];
  for (size_t k = 0; k < r.leg_markets.size(); ++k) {
    auto market = "market/" + markets[r.leg_markets[k]];
    auto i = legs.find(leg_key(id, r.leg_markets[k]));
    bool accepted = i != legs.end() && i->second.accepted_seq != 0;
    if (r.step == wallet_step::held)
      continue;
    if (r.step == wallet_step::released) {
      if (accepted && i->second.released_seq == 0 && !r.release_pending)
        found.push_back({"released_accepted_bet", wallet, r.wallet_seq,
                         "slip " + id + " was released but " + market
                           + " still holds its leg, taken at seq "
                           + std::to_string(i->second.accepted_seq)});
      continue;
    }
    if (!accepted) {
      found.push_back({"commit_without_acceptance", wallet, r.wallet_seq,
                       "slip " + id + "'s leg on " + market + " was never accepted there"});
      continue;
    }
    auto& leg = i->second;
    std::string diff;
    if (leg.accepted_user != r.wallet_user)
      diff = "user " + users[leg.accepted_user];
    else if (leg.accepted_stake != r.wallet_stake)
      diff = "stake " + text(leg.accepted_stake) + " vs " + text(r.wallet_stake);
    else if (leg.accepted_each_way != r.wallet_each_way)
      diff = "each-way";
    else if (k >= r.leg_prices.size() || leg.accepted_price != r.leg_prices[k])
      diff = "price " + format_price(leg.accepted_price);
    if (!diff.empty()) {
      found.push_back({"commit_mismatch", wallet, r.wallet_seq,
                       "slip " + id + "'s leg on " + market + " (wallet vs market): " + diff});
      continue;
    }
    if (leg.wallet_seq != 0
        && newer_round_owed(leg.in_outbox, leg.recorded_round, leg.owed_round)) {
      ++report.payouts_in_flight; // a rollback or a resettlement on its way
    } else if (leg.wallet_seq != 0) {
      if (leg.owed_seq == 0)
        found.push_back({"payout_before_result", wallet, leg.wallet_seq,
                         "slip " + id + "'s leg on " + market + " was settled but " + market
                           + " has no result for it"});
      else if (leg.recorded.result != leg.owed.result
               || leg.recorded.dead_heat != leg.owed.dead_heat
               || leg.recorded.rule4 != leg.owed.rule4)
        found.push_back({"payout_mismatch", wallet, leg.wallet_seq,
                         "slip " + id + "'s leg on " + market + " was settled "
                           + std::string{to_string(leg.recorded.result)} + " but the result says "
                           + std::string{to_string(leg.owed.result)}});
    } else if (leg.owed_seq != 0 && r.payout_seq == 0 && !r.cashed_out_full) {
      if (leg.in_outbox)
        ++report.payouts_in_flight;
      else
        found.push_back({"payout_lost", market, leg.owed_seq,
                         "slip " + id + "'s leg result is acknowledged but " + wallet
                           + " never recorded it"});
    }
  }
}

void ledger_audit::impl::cross_check() {
  std::vector<audit_violation> found;
  auto wallet_of = [&](const bet_record& r) { return "wallet/" + users[r.wallet_user]; };
  auto market_of = [&](const bet_record& r) { return "market/" + markets[r.accepted_market]; };
  for (auto& [id, r] : bets) {
    if (r.slip) {
      cross_check_slip(id, r, found);
      continue;
    }
    bool accepted = r.accepted_seq != 0;
    switch (r.step) {
      case wallet_step::none:
        if (accepted)
          found.push_back({"acceptance_without_hold", market_of(r), r.accepted_seq,
                           "bet " + id + " of user " + users[r.accepted_user]
                             + " has no stake in any wallet"});
        continue; // no wallet side: nothing to pay
      case wallet_step::released:
        if (accepted)
          found.push_back({"released_accepted_bet", wallet_of(r), r.wallet_seq,
                           "bet " + id + " was accepted by market/" + markets[r.accepted_market]
                             + " at seq " + std::to_string(r.accepted_seq)});
        continue;
      case wallet_step::held:
        if (!accepted)
          continue; // undecided, or rejected and not yet released
        ++report.bets_pending;
        break;
      case wallet_step::committed:
        if (!accepted) {
          found.push_back({"commit_without_acceptance", wallet_of(r), r.wallet_seq,
                           "bet " + id + " on market/" + markets[r.wallet_market]
                             + " was never accepted there"});
          continue;
        }
        break;
    }
    if (auto diff = disagreement(r, users, markets); !diff.empty()) {
      found.push_back({"commit_mismatch", wallet_of(r), r.wallet_seq,
                       "bet " + id + " (wallet vs market): " + diff});
      continue;
    }
    if (r.payout_seq != 0 && newer_round_owed(r.in_outbox, r.paid_round, r.owed_round)) {
      ++report.payouts_in_flight; // a rollback or a resettlement on its way
    } else if (r.payout_seq != 0) {
      if (r.resulted_seq == 0)
        found.push_back({"payout_before_result", wallet_of(r), r.payout_seq,
                         "bet " + id + " was paid " + text(r.paid) + " but market/"
                           + markets[r.accepted_market] + " has no result"});
      else if (r.paid != r.owed || r.paid_outcome != r.owed_outcome)
        found.push_back({"payout_mismatch", wallet_of(r), r.payout_seq,
                         "bet " + id + " was paid " + text(r.paid) + " ("
                           + std::string{to_string(r.paid_outcome)} + ") but the result owes "
                           + text(r.owed) + " (" + std::string{to_string(r.owed_outcome)} + ")"});
    } else if (r.resulted_seq != 0) {
      if (r.in_outbox) {
        ++report.payouts_in_flight;
        report.payouts_in_flight_amount += r.owed;
      } else {
        found.push_back({"payout_lost", market_of(r), r.ack_seq,
                         "bet " + id + "'s payout of " + text(r.owed)
                           + " is acknowledged but " + wallet_of(r) + " never credited it"});
      }
    }
  }
  for (auto& [key, c] : cashouts) {
    if (c.owed_seq != 0) {
      auto market = "market/" + markets[c.market];
      if (c.paid_seq == 0) {
        if (c.in_outbox) {
          ++report.payouts_in_flight;
          report.payouts_in_flight_amount += c.owed;
        } else {
          found.push_back({"payout_lost", market, c.owed_seq,
                           "cash-out " + key + " of " + text(c.owed)
                             + " is acknowledged but no wallet credited it"});
        }
      } else if (c.paid != c.owed || c.paid_stake != c.owed_stake) {
        found.push_back({"cashout_mismatch", "wallet/" + users[c.user], c.paid_seq,
                         "cash-out " + key + " was credited " + text(c.paid) + " for stake "
                           + text(c.paid_stake) + " but " + market + " owes " + text(c.owed)
                           + " for " + text(c.owed_stake)});
      }
    } else if (c.paid_seq != 0 && !c.slip) {
      found.push_back({"cashout_without_market", "wallet/" + users[c.user], c.paid_seq,
                       "cash-out " + key + " of a single was credited " + text(c.paid)
                         + " but its market never took it"});
    }
  }
  // Deterministic order: by stream, then seq.
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) {
    return std::tie(a.stream, a.seq, a.code) < std::tie(b.stream, b.seq, b.code);
  });
  for (auto& v : found)
    flag(std::move(v.code), v.stream, v.seq, std::move(v.message));

  auto& t = report.totals;
  auto in = t.deposits - t.withdrawals;
  auto out = t.available + t.held + t.house_result();
  if (in != out)
    flag("totals_mismatch", {}, 0,
         "deposits - withdrawals = " + text(in) + " but available + held + house result = "
           + text(out));
}

boost::json::object to_json(const ledger_report& r) {
  auto& t = r.totals;
  boost::json::object out{
    {"ok", r.ok()},
    {"wallets", r.wallets},
    {"markets", r.markets},
    {"events", r.events},
    {"bets",
     boost::json::object{{"accepted", r.bets_accepted},
                         {"legs_released", r.legs_released},
                         {"committed", r.bets_committed},
                         {"pending", r.bets_pending},
                         {"holds_open", r.holds_open},
                         {"settled", r.bets_settled},
                         {"reversed", r.payouts_reversed}}},
    {"markets_resulted", r.markets_resulted},
    {"money",
     boost::json::object{{"deposits", t.deposits.minor},
                         {"withdrawals", t.withdrawals.minor},
                         {"available", t.available.minor},
                         {"held", t.held.minor},
                         {"stakes", t.stakes.minor},
                         {"payouts", t.payouts.minor},
                         {"house_result", t.house_result().minor}}},
    {"payouts_in_flight",
     boost::json::object{{"count", r.payouts_in_flight},
                         {"amount", r.payouts_in_flight_amount.minor}}},
    {"violations", r.violations.size() + r.violations_dropped},
  };
  if (!r.violations.empty()) {
    auto& v = r.violations.front();
    out["first_violation"] = boost::json::object{
      {"code", v.code}, {"stream", v.stream}, {"seq", v.seq}, {"message", v.message}};
  }
  return out;
}

// -- the public face ---------------------------------------------------------

std::string audit_violation::to_string() const {
  std::string out = stream.empty() ? std::string{"totals"} : stream;
  if (seq != 0)
    out += " seq " + std::to_string(seq);
  return out + ": " + code + ": " + message;
}

ledger_audit::ledger_audit() : impl_(std::make_unique<impl>()) {}

ledger_audit::~ledger_audit() = default;

void ledger_audit::add(const std::string& stream, const std::vector<recorded_event>& page) {
  impl_->add(stream, page);
}

const ledger_report& ledger_audit::close() {
  if (!impl_->closed) {
    impl_->end_stream();
    impl_->cross_check();
    impl_->closed = true;
  }
  return impl_->report;
}

const ledger_report& ledger_audit::report() const {
  return impl_->report;
}

void ledger_audit::forward(verify_report& report) {
  auto& found = impl_->report.violations;
  for (; forwarded_ < found.size(); ++forwarded_)
    report.add_problem("money: " + found[forwarded_].to_string());
}

void ledger_audit::on_events(const std::string& stream, const std::vector<recorded_event>& page,
                             verify_report& report) {
  add(stream, page);
  forward(report);
}

void ledger_audit::finish(verify_report& report) {
  close();
  forward(report);
  if (impl_->report.violations_dropped > 0)
    report.add_problem("money: " + std::to_string(impl_->report.violations_dropped)
                       + " more violations not listed");
}

namespace {

constexpr uint32_t audit_page_events = 4096;
constexpr uint32_t audit_page_streams = 1024;

caf::error audit_kind(journal& j, std::string_view kind, ledger_audit& audit) {
  std::string after;
  for (;;) {
    auto streams = j.list_streams(kind, after, audit_page_streams);
    if (!streams)
      return streams.error();
    if (streams->empty())
      return {};
    for (auto& stream : *streams) {
      uint64_t next = 1;
      for (;;) {
        auto page = j.read_events(stream, next, audit_page_events);
        if (!page)
          return page.error();
        if (page->empty())
          break;
        next = page->back().seq + 1;
        audit.add(stream, *page);
      }
    }
    after = streams->back();
  }
}

} // namespace

caf::expected<ledger_report> audit_ledger(journal& j) {
  ledger_audit audit;
  // Markets first, in name order: the order verify_journal visits them in.
  for (auto kind : {"market", "wallet"})
    if (auto err = audit_kind(j, kind, audit))
      return err;
  return audit.close();
}

} // namespace wager
