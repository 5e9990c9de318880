// The first half of the money audit: replaying one stream at a time with the
// pure folds, checking each event before it is folded (the folds assert on
// what a healthy journal never holds; the audit must survive a forged one).

#include "wager/actors/ledger_audit.hpp"

#include "wager/actors/ledger_audit_state.hpp"
#include "wager/runtime/assert.hpp"
#include "wager/runtime/overloaded.hpp"

namespace wager {

using namespace audit_detail;

namespace {

std::string key_of(std::string_view stream) {
  auto slash = stream.find('/');
  return std::string{slash == std::string_view::npos ? stream : stream.substr(slash + 1)};
}

std::string amount_text(money m) {
  return std::to_string(m.minor);
}

} // namespace

// -- the stream being replayed ----------------------------------------------

void ledger_audit::impl::flag(std::string code, const std::string& stream, uint64_t seq,
                              std::string message) {
  if (report.violations.size() < ledger_report::violations_max)
    report.violations.push_back({std::move(code), stream, seq, std::move(message)});
  else
    ++report.violations_dropped;
}

void ledger_audit::impl::begin(const std::string& stream) {
  end_stream();
  auto kind = kind_of(stream);
  if (kind == "wallet") {
    current = stream_kind::wallet;
    wallet = wallet_fold{};
    wallet.user = intern(users, user_index, key_of(stream));
  } else if (kind == "market") {
    current = stream_kind::market;
    market = market_fold{};
    market.index = intern(markets, market_index, key_of(stream));
  } else {
    current = stream_kind::other;
  }
  current_stream = stream;
}

void ledger_audit::impl::end_stream() {
  if (current == stream_kind::wallet)
    end_wallet();
  else if (current == stream_kind::market)
    end_market();
  current = stream_kind::none;
  current_stream.clear();
}

void ledger_audit::impl::add(const std::string& stream, const std::vector<recorded_event>& page) {
  WAGER_ASSERT(!closed, "a closed audit takes no more events");
  if (stream != current_stream || current == stream_kind::none)
    begin(stream);
  if (current == stream_kind::other)
    return;
  bool in_wallet = current == stream_kind::wallet;
  auto& broken = in_wallet ? wallet.broken : market.broken;
  for (auto& e : page) {
    ++report.events;
    if (broken)
      continue;
    auto expected = (in_wallet ? wallet.state.seq : market.state.seq) + 1;
    if (e.seq != expected) {
      // The folds count on contiguous seqs; what follows a gap cannot be
      // replayed faithfully, so the rest of the stream is not audited.
      flag("seq_gap", stream, e.seq, "expected seq " + std::to_string(expected));
      broken = true;
      continue;
    }
    if (in_wallet)
      wallet_event_in(e);
    else
      market_event_in(e);
  }
}

// -- wallets -----------------------------------------------------------------

bool ledger_audit::impl::wallet_precheck(const wallet_event& ev, uint64_t seq) {
  auto& s = wallet.state;
  auto& stream = current_stream;
  return std::visit(
    overloaded{
      [&](const deposited& d) {
        if (valid_amount(d.amount.minor))
          return true;
        flag("invalid_amount", stream, seq, "deposit of " + amount_text(d.amount));
        return false;
      },
      [&](const withdrawn& w) {
        if (valid_amount(w.amount.minor))
          return true;
        flag("invalid_amount", stream, seq, "withdrawal of " + amount_text(w.amount));
        return false;
      },
      [&](const stake_held& h) {
        if (!valid_amount(h.stake.minor) || !valid_amount(h.amount().minor)) {
          flag("invalid_amount", stream, seq, "stake of " + amount_text(h.stake));
          return false;
        }
        auto known = bets.find(h.bet.value);
        if (s.holds.count(h.bet.value) > 0 || s.open_bets.count(h.bet.value) > 0
            || (known != bets.end() && known->second.step != wallet_step::none)) {
          flag("duplicate_bet", stream, seq, "bet " + h.bet.value + " is staked twice");
          return false;
        }
        return true;
      },
      [&](const stake_committed& c) {
        if (s.holds.count(c.bet.value) > 0)
          return true;
        flag("unknown_hold", stream, seq, "commits bet " + c.bet.value + ", which is not held");
        return false;
      },
      [&](const hold_released& r) {
        if (s.holds.count(r.bet.value) > 0)
          return true;
        flag("unknown_hold", stream, seq, "releases bet " + r.bet.value + ", which is not held");
        return false;
      },
      [&](const payout_credited& p) { return payout_precheck(p, seq); },
      [&](const limits_set&) { return true; },
      [&](const legs_released& r) {
        if (s.releasing.count(r.bet.value) > 0)
          return true;
        flag("unknown_hold", stream, seq,
             "records the release of slip " + r.bet.value + ", which it is not releasing");
        return false;
      },
      [&](const cashed_out& c) {
        auto key = cashout_key(c.bet.value, c.request.value);
        if (!valid_amount(c.stake.minor) || c.amount.minor < 0
            || c.amount.minor > amount_max_minor * price_max_hundredths / 100) {
          flag("invalid_amount", stream, seq, "cash-out of " + amount_text(c.amount));
          return false;
        }
        if (s.cashouts.count(key) > 0) {
          flag("bet_settled_twice", stream, seq, "cash-out " + key + " is credited twice");
          return false;
        }
        auto b = s.open_bets.find(c.bet.value);
        if (b != s.open_bets.end() && c.stake > b->second.stake) {
          flag("invalid_amount", stream, seq,
               "cash-out of " + key + " takes more than the running stake");
          return false;
        }
        if (b == s.open_bets.end() && s.find_bet(c.bet.value) == nullptr
            && bets.count(c.bet.value) == 0) {
          flag("payout_without_bet", stream, seq, "cash-out of " + key + " for no bet of this wallet");
          return false;
        }
        return true;
      },
      [&](const leg_settled& l) {
        auto* b = s.find_bet(l.bet.value);
        if (b == nullptr || l.leg >= b->legs.size()) {
          flag("payout_without_bet", stream, seq,
               "a result for leg " + std::to_string(l.leg) + " of " + l.bet.value
                 + ", which is no slip's leg");
          return false;
        }
        auto& leg = b->legs[l.leg];
        // A later round replaces the leg's result; before rounds were kept,
        // an open leg took one result.
        if (l.round > leg.round
            || (l.round == 0 && leg.result == leg_result::open && l.result != leg_result::open))
          return true;
        flag("reversal_invalid", stream, seq,
             "leg " + std::to_string(l.leg) + " of " + l.bet.value + " is settled again in round "
               + std::to_string(l.round) + ", which it has had");
        return false;
      },
      [&](const bet_restored& r) {
        if (s.find_bet(r.restored.id.value) == nullptr && r.restored.status != bet_status::open
            && bets.count(r.restored.id.value) > 0)
          return true;
        flag("payout_without_bet", stream, seq,
             "restores bet " + r.restored.id.value + ", which it holds, or never staked");
        return false;
      },
      [&](const payout_reversed& r) {
        auto* b = s.find_bet(r.bet.value);
        bool open = s.open_bets.count(r.bet.value) > 0;
        // A slip's rounds are its legs' markets' (each checked on its
        // leg_settled); a single's are its market's.
        if (b != nullptr && (b->is_slip() || r.round > b->round)
            && (open ? r.amount.minor == 0
                     : b->status != bet_status::cashed_out && r.amount == b->payout))
          return true;
        flag("reversal_invalid", stream, seq,
             "takes back " + amount_text(r.amount) + " of bet " + r.bet.value
               + ", which is not what it was paid, or in a round it has had");
        return false;
      },
    },
    ev);
}

bool ledger_audit::impl::payout_precheck(const payout_credited& p, uint64_t seq) {
  auto& s = wallet.state;
  if (p.amount.minor < 0 || p.amount.minor > amount_max_minor * price_max_hundredths / 100) {
    flag("invalid_amount", current_stream, seq, "payout of " + amount_text(p.amount));
    return false;
  }
  if (auto open = s.open_bets.find(p.bet.value); open != s.open_bets.end()) {
    auto& b = open->second;
    if (!b.is_slip())
      return true;
    // A slip is paid by its wallet, from its legs' results (each checked
    // against its market's result in cross_check): what they make of it
    // must be what was paid.
    auto owed = settle_slip(b);
    if (!settled(as_slip(b)))
      flag("payout_before_result", current_stream, seq,
           "slip " + p.bet.value + " was paid " + amount_text(p.amount)
             + " while its result was still open");
    else if (owed.amount != p.amount || owed.outcome != p.outcome)
      flag("payout_mismatch", current_stream, seq,
           "slip " + p.bet.value + " was paid " + amount_text(p.amount) + " ("
             + std::string{to_string(p.outcome)} + ") but its legs owe "
             + amount_text(owed.amount) + " (" + std::string{to_string(owed.outcome)} + ")");
    return true;
  }
  auto known = bets.find(p.bet.value);
  if (known != bets.end() && known->second.payout_seq != 0
      && known->second.wallet_user == wallet.user) {
    flag("bet_settled_twice", current_stream, seq,
         "bet " + p.bet.value + " was already paid at seq "
           + std::to_string(known->second.payout_seq));
    return false;
  }
  flag("payout_without_bet", current_stream, seq,
       "payout of " + amount_text(p.amount) + " for bet " + p.bet.value
         + (s.holds.count(p.bet.value) > 0 ? ", whose stake is not committed"
                                           : ", which this wallet has no open stake on"));
  return false;
}

void ledger_audit::impl::wallet_event_in(const recorded_event& e) {
  auto ev = decode_wallet_event(e.data);
  if (!ev) {
    flag("undecodable_event", current_stream, e.seq, "cannot read a '" + e.data.type + "' event");
    wallet.state.seq = e.seq;
    return;
  }
  if (!wallet_precheck(*ev, e.seq)) {
    // The fold would assert on it (or count it twice): the event is left
    // out, so one bad event yields one violation, not a cascade.
    wallet.state.seq = e.seq;
    return;
  }
  record_wallet_side(*ev, e.seq);
  apply(wallet.state, *ev, e.seq, e.at_ms);
  check_wallet(e.seq, std::holds_alternative<stake_held>(*ev)
                        || std::holds_alternative<withdrawn>(*ev));
}

void ledger_audit::impl::record_wallet_side(const wallet_event& ev, uint64_t seq) {
  auto& s = wallet.state;
  std::visit(overloaded{
               [&](const deposited& d) { report.totals.deposits += d.amount; },
               [&](const withdrawn& w) { report.totals.withdrawals += w.amount; },
               [&](const stake_held& h) {
                 auto& r = bets[h.bet.value];
                 r.step = wallet_step::held;
                 r.wallet_user = wallet.user;
                 r.wallet_market = intern(markets, market_index, h.market.value);
                 r.wallet_stake = h.stake;
                 r.wallet_each_way = h.each_way;
                 r.wallet_seq = seq;
                 if (h.is_slip()) {
                   r.slip = true;
                   for (auto& l : h.legs)
                     r.leg_markets.push_back(intern(markets, market_index, l.market.value));
                 }
               },
               [&](const stake_committed& c) {
                 auto& r = bets[c.bet.value];
                 r.step = wallet_step::committed;
                 r.wallet_price = c.accepted;
                 r.wallet_seq = seq;
                 for (auto& l : c.legs)
                   r.leg_prices.push_back(l.accepted);
                 report.totals.stakes += s.holds.at(c.bet.value).amount();
                 ++report.bets_committed;
               },
               [&](const hold_released& rel) {
                 auto& r = bets[rel.bet.value];
                 r.step = wallet_step::released;
                 r.wallet_seq = seq;
               },
               [&](const payout_credited& p) {
                 auto& r = bets[p.bet.value];
                 r.payout_seq = seq;
                 r.paid_round = p.round;
                 r.paid_outcome = p.outcome;
                 r.paid = p.amount;
                 report.totals.payouts += p.amount;
                 ++report.bets_settled;
               },
               [&](const limits_set&) {},
               [&](const legs_released&) {},
               [&](const cashed_out& c) {
                 auto& r = cashouts[cashout_key(c.bet.value, c.request.value)];
                 r.paid_seq = seq;
                 r.user = wallet.user;
                 r.paid = c.amount;
                 r.paid_stake = c.stake;
                 auto open = s.open_bets.find(c.bet.value);
                 r.slip = open != s.open_bets.end() ? open->second.is_slip()
                                                    : bets[c.bet.value].slip;
                 if (open != s.open_bets.end() && c.stake == open->second.stake)
                   bets[c.bet.value].cashed_out_full = true;
                 report.totals.payouts += c.amount;
               },
               [&](const leg_settled& l) {
                 auto& r = bets[l.bet.value];
                 if (l.leg >= r.leg_markets.size())
                   return;
                 auto& leg = legs[leg_key(l.bet.value, r.leg_markets[l.leg])];
                 // A rolled-back leg has no result recorded.
                 leg.wallet_seq = l.result == leg_result::open ? 0 : seq;
                 leg.recorded = {l.result, l.dead_heat, l.rule4};
                 leg.recorded_round = l.round;
               },
               [&](const bet_restored&) {},
               [&](const payout_reversed& p) {
                 if (s.open_bets.count(p.bet.value) > 0)
                   return; // never paid here: nothing to take back
                 auto& r = bets[p.bet.value];
                 r.payout_seq = 0;
                 r.paid = {};
                 r.paid_round = p.round;
                 report.totals.payouts -= p.amount;
                 --report.bets_settled;
                 ++report.payouts_reversed;
               },
             },
             ev);
}

void ledger_audit::impl::check_wallet(uint64_t seq, bool spent) {
  auto& s = wallet.state;
  // A reversed payout may take available below zero; a stake or a
  // withdrawal may not spend what is not there.
  bool negative = (spent && s.available.minor < 0) || s.held.minor < 0;
  if (negative && !wallet.negative) // once per stretch below zero, not per event
    flag("negative_balance", current_stream, seq,
         "available " + amount_text(s.available) + ", held " + amount_text(s.held));
  wallet.negative = negative;
  money holds;
  for (auto& [id, h] : s.holds)
    holds += h.amount();
  bool broken = holds != s.held
                || s.available + s.held != s.deposited - s.withdrawn - s.staked + s.credited;
  if (broken && !wallet.invariant_broken)
    flag("wallet_invariant", current_stream, seq,
         "held " + amount_text(s.held) + " vs holds " + amount_text(holds) + "; balances "
           + amount_text(s.available + s.held) + " vs flows "
           + amount_text(s.deposited - s.withdrawn - s.staked + s.credited));
  wallet.invariant_broken = broken;
}

void ledger_audit::impl::end_wallet() {
  ++report.wallets;
  report.totals.available += wallet.state.available;
  report.totals.held += wallet.state.held;
  report.holds_open += wallet.state.holds.size();
  for (auto& [id, markets] : wallet.state.releasing)
    bets[id].release_pending = true;
}

// -- markets -----------------------------------------------------------------

bool ledger_audit::impl::market_precheck(const market_event& ev, uint64_t seq) {
  auto& s = market.state;
  auto& stream = current_stream;
  return std::visit(
    overloaded{
      [&](const status_changed& c) {
        if (transition_allowed(s.status, c.status))
          return true;
        flag("illegal_transition", stream, seq,
             std::string{to_string(s.status)} + " -> " + std::string{to_string(c.status)});
        return false;
      },
      [&](const bet_accepted& b) {
        if (!valid_amount(b.stake.minor) || !valid_price(b.accepted)) {
          flag("invalid_amount", stream, seq,
               "bet " + b.bet.value + " accepted with stake " + amount_text(b.stake));
          return false;
        }
        auto known = bets.find(b.bet.value);
        if (s.bets.count(b.bet.value) > 0
            || (known != bets.end() && known->second.accepted_seq != 0)) {
          flag("duplicate_bet", stream, seq, "bet " + b.bet.value + " is accepted twice");
          return false;
        }
        return true;
      },
      [&](const market_resulted&) {
        if (!s.result)
          return true;
        flag("resulted_twice", stream, seq, "the market already has a result");
        return false;
      },
      [&](const settlement_rolled_back&) {
        if (s.result)
          return true;
        flag("illegal_transition", stream, seq, "a rollback of a market without a result");
        return false;
      },
      [&](const bets_cancelled& c) {
        for (auto& id : c.bets) {
          auto b = s.bets.find(id);
          if (b == s.bets.end() || s.voided_early(b->second)) {
            flag("cancel_invalid", stream, seq,
                 "bet " + id + " is cancelled unknown, or void already");
            return false;
          }
        }
        return true;
      },
      [&](const bet_cashed_out& c) {
        auto b = s.bets.find(c.bet.value);
        if (b == s.bets.end() || b->second.leg || s.result || s.voided_early(b->second)
            || c.stake.minor <= 0 || c.stake > b->second.stake) {
          flag("cashout_invalid", stream, seq,
               "bet " + c.bet.value + " is cashed out unknown, settled, or beyond its stake");
          return false;
        }
        auto owed = single_cashout_value(b->second, c.stake, c.at, c.margin);
        if (owed != c.amount)
          flag("cashout_mismatch", stream, seq,
               "bet " + c.bet.value + " is cashed out for " + amount_text(c.amount)
                 + " but its price and margin make " + amount_text(owed));
        return true;
      },
      [&](const leg_released& r) {
        auto b = s.bets.find(r.bet.value);
        if (b != s.bets.end() && b->second.leg)
          return true;
        flag("unknown_hold", stream, seq,
             "releases leg " + r.bet.value + ", which the market has not taken");
        return false;
      },
      [&](const selection_withdrawn& w) {
        if (!s.result && !s.is_withdrawn(w.selection.value))
          return true;
        flag("withdrawn_twice", stream, seq,
             "selection " + w.selection.value + " is withdrawn again, or after the result");
        return false;
      },
      [&](const auto&) { return true; },
    },
    ev);
}

void ledger_audit::impl::market_event_in(const recorded_event& e) {
  auto ev = decode_market_event(e.data);
  if (!ev) {
    flag("undecodable_event", current_stream, e.seq, "cannot read a '" + e.data.type + "' event");
    market.state.seq = e.seq;
    return;
  }
  if (!market_precheck(*ev, e.seq)) {
    market.state.seq = e.seq;
    return;
  }
  if (auto* b = std::get_if<bet_accepted>(&*ev); b && b->leg) {
    auto& r = legs[leg_key(b->bet.value, market.index)];
    r.accepted_seq = e.seq;
    r.accepted_user = intern(users, user_index, b->user.value);
    r.accepted_stake = b->stake;
    r.accepted_each_way = b->each_way;
    r.accepted_price = b->accepted;
    ++report.bets_accepted;
  } else if (auto* c = std::get_if<bet_cashed_out>(&*ev)) {
    auto& r = cashouts[cashout_key(c->bet.value, c->request.value)];
    r.owed_seq = e.seq;
    r.market = market.index;
    r.owed = c->amount;
    r.owed_stake = c->stake;
  } else if (auto* l = std::get_if<leg_released>(&*ev)) {
    legs[leg_key(l->bet.value, market.index)].released_seq = e.seq;
    ++report.legs_released;
  } else if (auto* b = std::get_if<bet_accepted>(&*ev)) {
    auto& r = bets[b->bet.value];
    r.accepted_seq = e.seq;
    r.accepted_market = market.index;
    r.accepted_user = intern(users, user_index, b->user.value);
    r.accepted_stake = b->stake;
    r.accepted_each_way = b->each_way;
    r.accepted_price = b->accepted;
    ++report.bets_accepted;
  } else if (auto* ack = std::get_if<payouts_acknowledged>(&*ev)) {
    for (auto& id : ack->bets)
      if (auto i = bets.find(id); i != bets.end() && i->second.accepted_seq != 0
          && i->second.accepted_market == market.index)
        i->second.ack_seq = e.seq;
  } else if (std::holds_alternative<market_resulted>(*ev)) {
    market.resulted_seq = e.seq;
  } else if (std::holds_alternative<settlement_rolled_back>(*ev)) {
    market.resulted_seq = 0;
  } else if (auto* w = std::get_if<selection_withdrawn>(&*ev)) {
    market.withdrawn_seq[w->selection.value] = e.seq;
  } else if (auto* c = std::get_if<bets_cancelled>(&*ev)) {
    for (auto& id : c->bets)
      market.cancelled_seq[id] = e.seq;
  }
  apply(market.state, *ev, e.seq, e.at_ms);
}

void ledger_audit::impl::end_market() {
  ++report.markets;
  auto& s = market.state;
  for (auto& key : s.outbox)
    if (is_cashout_key(key))
      cashouts[key].in_outbox = true;
  if (s.result)
    ++report.markets_resulted;
  for (auto& [id, b] : s.bets) {
    // A cancelled bet is owed from its cancellation, a non-runner's from
    // its withdrawal, the others' from the result.
    uint64_t owed_from = s.result ? market.resulted_seq : 0;
    if (auto w = market.withdrawn_seq.find(b.selection.value); w != market.withdrawn_seq.end())
      owed_from = w->second;
    if (auto c = market.cancelled_seq.find(id); c != market.cancelled_seq.end())
      owed_from = c->second;
    if (owed_from == 0 || b.stake.minor == 0) { // nothing owed to a bet cashed out in full
      // After a rollback, what the result paid is on its way back.
      if (s.outbox.count(id) > 0) {
        if (b.leg) {
          auto& leg = legs[leg_key(id, market.index)];
          leg.in_outbox = true;
          leg.owed_round = b.round;
        } else {
          auto& r = bets[id];
          r.in_outbox = true;
          r.owed_round = b.round;
        }
      }
      continue;
    }
    if (b.leg) {
      auto& leg = legs[leg_key(id, market.index)];
      leg.owed_seq = owed_from;
      leg.owed = leg_outcome_of(s, b);
      leg.in_outbox = s.outbox.count(id) > 0;
      leg.owed_round = b.round;
      continue;
    }
    auto& r = bets[id];
    auto line = settle_line(s, b);
    r.resulted_seq = owed_from;
    r.owed_outcome = line.outcome;
    r.owed = line.amount;
    r.in_outbox = s.outbox.count(id) > 0;
    r.owed_round = b.round;
  }
}

} // namespace wager
