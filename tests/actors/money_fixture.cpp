#include "money_fixture.hpp"

#include <boost/json.hpp>

namespace wager::test {

namespace {

constexpr uint32_t page_max = 4096;

std::string describe(const std::string& stream, const std::string& what) {
  return stream + ": " + what;
}

template <class Event, class Decode, class Apply>
void fold_stream(journal& j, const std::string& stream, Decode&& decode, Apply&& apply,
                 std::vector<std::string>& violations) {
  uint64_t from = 1;
  for (;;) {
    auto page = j.read_events(stream, from, page_max);
    if (!page) {
      violations.push_back(describe(stream, "unreadable: " + message_of(page.error())));
      return;
    }
    for (auto& rec : *page) {
      std::optional<Event> e = decode(rec.data);
      if (!e) {
        violations.push_back(describe(stream, "undecodable event " + rec.data.type));
        return;
      }
      apply(*e, rec);
    }
    if (page->size() < page_max)
      return;
    from = page->back().seq + 1;
  }
}

std::string key_of(const std::string& stream) {
  return stream.substr(stream.find('/') + 1);
}

struct wallet_fold {
  journal_audit& out;
  std::string user;
  std::string stream;
  // Bets this wallet holds, by id (the stake_held event).
  std::map<std::string, stake_held> held;
  std::map<std::string, hold_released> released;

  void operator()(const wallet_event& e, const recorded_event& rec) {
    auto& s = out.wallets[user];
    if (auto* h = std::get_if<stake_held>(&e)) {
      held[h->bet.value] = *h;
      out.open_holds[h->bet.value] = user;
    } else if (auto* c = std::get_if<stake_committed>(&e)) {
      auto& h = held.at(c->bet.value);
      out.open_holds.erase(c->bet.value);
      // A slip's legs are the product's audit's (ledger_audit): here only
      // its wallet's balances count.
      if (h.is_slip())
        out.slips.insert(c->bet.value);
      else if (!out.committed
             .emplace(c->bet.value, committed_stake{user, h.market.value, h.selection.value,
                                                    h.stake, c->accepted})
             .second)
        out.violations.push_back(describe(stream, "bet " + c->bet.value + " committed twice"));
    } else if (auto* r = std::get_if<hold_released>(&e)) {
      out.open_holds.erase(r->bet.value);
      if (!held.at(r->bet.value).is_slip())
        released[r->bet.value] = *r;
    } else if (auto* c = std::get_if<cashed_out>(&e)) {
      out.cashed_stake[c->bet.value] += c->stake;
    } else if (auto* p = std::get_if<payout_credited>(&e)) {
      if (!out.credited.insert(p->bet.value).second)
        out.violations.push_back(describe(stream, "bet " + p->bet.value + " credited twice"));
    } else if (auto* r = std::get_if<payout_reversed>(&e)) {
      // A rolled-back result takes the payout back; the next one may pay.
      if (s.open_bets.count(r->bet.value) == 0 && out.credited.erase(r->bet.value) == 0)
        out.violations.push_back(describe(stream, "bet " + r->bet.value
                                                    + " reversed without a payout"));
    }
    // Only a reversed payout may take available below zero.
    bool spends = std::holds_alternative<stake_held>(e) || std::holds_alternative<withdrawn>(e);
    apply(s, e, rec.seq, rec.at_ms);
    if ((spends && s.available.minor < 0) || s.held.minor < 0)
      out.violations.push_back(describe(stream, "negative balance at seq "
                                                  + std::to_string(rec.seq)));
    money holds;
    for (auto& [id, h] : s.holds)
      holds += h.amount();
    if (holds != s.held)
      out.violations.push_back(describe(stream, "held differs from the sum of holds at seq "
                                                  + std::to_string(rec.seq)));
    if (s.available + s.held != s.deposited - s.withdrawn - s.staked + s.credited)
      out.violations.push_back(describe(stream, "balances differ from the flows at seq "
                                                  + std::to_string(rec.seq)));
  }
};

void fold_wallets(journal& j, journal_audit& out,
                  std::map<std::string, std::map<std::string, hold_released>>& released,
                  std::map<std::string, std::map<std::string, stake_held>>& held) {
  for (auto& stream : streams_of(j, "wallet")) {
    wallet_fold f{out, key_of(stream), stream, {}, {}};
    out.wallets[f.user];
    fold_stream<wallet_event>(
      j, stream, [](const event& e) { return decode_wallet_event(e); },
      [&](const wallet_event& e, const recorded_event& rec) { f(e, rec); }, out.violations);
    released[f.user] = std::move(f.released);
    held[f.user] = std::move(f.held);
    auto& s = out.wallets[f.user];
    out.deposits += s.deposited;
    out.withdrawals += s.withdrawn;
    out.balances += s.available + s.held;
    out.house += s.staked - s.credited;
  }
}

void fold_markets(journal& j, journal_audit& out) {
  for (auto& stream : streams_of(j, "market")) {
    auto id = key_of(stream);
    auto& m = out.markets[id];
    fold_stream<market_event>(
      j, stream, [](const event& e) { return decode_market_event(e); },
      [&](const market_event& e, const recorded_event& rec) {
        apply(m, e, rec.seq, rec.at_ms);
      },
      out.violations);
    std::map<std::string, money> liability_sum;
    // Bets refunded early (non-runners, cancellations) carry none.
    for (auto& [bet, b] : m.bets)
      if (!m.voided_early(b))
        liability_sum[b.selection.value] += bet_liability(b);
    for (auto& [sel, l] : liability_sum) {
      if (l > m.definition.limits.max_liability)
        out.violations.push_back(describe(stream, "liability of " + sel + " is "
                                                    + std::to_string(l.minor) + ", over "
                                                    + std::to_string(
                                                      m.definition.limits.max_liability.minor)));
      if (m.liability[sel] != l)
        out.violations.push_back(describe(stream, "liability of " + sel
                                                    + " differs from its bets"));
    }
  }
}

void match_bets(journal& j, journal_audit& out, bool quiescent,
                const std::map<std::string, std::map<std::string, hold_released>>& released) {
  // Every bet a market accepted is a stake some wallet committed (or, while
  // sagas run, still holds), with the same terms.
  for (auto& [mid, m] : out.markets) {
    for (auto& [id, b] : m.bets) {
      if (b.leg)
        continue;
      auto c = out.committed.find(id);
      if (c == out.committed.end()) {
        if (quiescent || out.open_holds.count(id) == 0)
          out.violations.push_back("market/" + mid + ": accepted bet " + id
                                   + " is no wallet's committed stake");
        continue;
      }
      // A cash-out takes stake from both sides.
      auto& w = c->second;
      auto running = w.stake - out.cashed_stake[id];
      if (w.user != b.user.value || w.market != mid || w.selection != b.selection.value
          || running != b.stake || w.accepted != b.accepted)
        out.violations.push_back("market/" + mid + ": bet " + id
                                 + " differs from the wallet's committed stake");
    }
  }
  for (auto& [id, c] : out.committed) {
    auto m = out.markets.find(c.market);
    if (m == out.markets.end() || m->second.bets.count(id) == 0)
      out.violations.push_back("wallet/" + c.user + ": committed bet " + id
                               + " was not accepted by market " + c.market);
  }
  // A hold is released only when the market said no.
  for (auto& [user, bets] : released) {
    for (auto& [id, r] : bets) {
      for (auto& [mid, m] : out.markets) {
        if (m.bets.count(id) > 0)
          out.violations.push_back("wallet/" + user + ": released hold " + id
                                   + " was accepted by market " + mid);
      }
      if (r.reason == errc::price_changed || r.reason == errc::limit_exceeded
          || r.reason == errc::market_not_open) {
        // The market's stored decision for this bet says the same.
        bool found = false;
        for (auto& [mid, m] : out.markets) {
          auto stored = j.find_request("market/" + mid, id);
          if (!stored || !*stored)
            continue;
          found = true;
          auto d = bet_decision_from_json((*stored)->result);
          if (!d || d->accepted || d->reason != r.reason)
            out.violations.push_back("wallet/" + user + ": hold " + id + " released as "
                                     + std::string{to_code(r.reason)}
                                     + " but the market recorded " + (*stored)->result);
        }
        if (!found)
          out.violations.push_back("wallet/" + user + ": hold " + id
                                   + " released without a market decision on record");
      }
    }
  }
}

void check_payouts(journal_audit& out, bool quiescent) {
  for (auto& [user, s] : out.wallets) {
    for (auto& b : s.settled_bets) {
      // Slips and cash-outs are the product's audit's (ledger_audit).
      if (b.is_slip() || b.status == bet_status::cashed_out)
        continue;
      auto m = out.markets.find(b.market.value);
      auto mb = m == out.markets.end() ? decltype(m->second.bets.end()){} : m->second.bets.find(b.id.value);
      if (m != out.markets.end() && mb == m->second.bets.end())
        continue; // reported by match_bets
      // Paid only on a result, or refunded early (a non-runner, a cancellation).
      if (m == out.markets.end() || (!m->second.result && !m->second.voided_early(mb->second))) {
        out.violations.push_back("wallet/" + user + ": bet " + b.id.value
                                 + " paid by an unresulted market");
        continue;
      }
      auto line = settle_line(m->second, mb->second);
      if (line.outcome != b.status || line.amount != b.payout)
        out.violations.push_back("wallet/" + user + ": bet " + b.id.value + " paid "
                                 + std::to_string(b.payout.minor) + " as "
                                 + std::string{to_string(b.status)} + ", the result says "
                                 + std::to_string(line.amount.minor));
    }
  }
  if (!quiescent)
    return;
  for (auto& [mid, m] : out.markets) {
    if (!m.result)
      continue;
    for (auto& [id, b] : m.bets)
      if (!b.leg && b.stake.minor > 0 && out.credited.count(id) == 0)
        out.violations.push_back("market/" + mid + ": bet " + id + " never paid");
  }
}

} // namespace

std::vector<std::string> streams_of(journal& j, const std::string& kind) {
  std::vector<std::string> out;
  std::string after;
  for (;;) {
    auto page = j.list_streams(kind, after, page_max);
    if (!page)
      throw std::runtime_error("list_streams: " + message_of(page.error()));
    out.insert(out.end(), page->begin(), page->end());
    if (page->size() < page_max)
      return out;
    after = page->back();
  }
}

journal_audit audit_journal(journal& j, bool quiescent) {
  journal_audit out;
  std::map<std::string, std::map<std::string, hold_released>> released;
  std::map<std::string, std::map<std::string, stake_held>> held;
  fold_wallets(j, out, released, held);
  fold_markets(j, out);
  if (out.deposits - out.withdrawals != out.balances + out.house)
    out.violations.push_back("deposits - withdrawals = "
                             + std::to_string((out.deposits - out.withdrawals).minor)
                             + " but balances + house = "
                             + std::to_string((out.balances + out.house).minor));
  if (quiescent && out.holds() > 0)
    out.violations.push_back(std::to_string(out.holds()) + " holds still open, e.g. "
                             + out.open_holds.begin()->first);
  if (quiescent && !out.outboxes_empty())
    out.violations.push_back("a settled market still owes payouts");
  match_bets(j, out, quiescent, released);
  check_payouts(out, quiescent);
  return out;
}

} // namespace wager::test
