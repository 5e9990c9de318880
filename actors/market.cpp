#include "wager/actors/market.hpp"

#include "wager/actors/journaled.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/runtime/crash_point.hpp"

#include <boost/json.hpp>
#include <caf/all.hpp>
#include <prometheus/gauge.h>

namespace wager {

namespace {

struct market_traits {
  using state_type = market_state;
  using event_type = market_event;
  static constexpr uint32_t snapshot_version = market_snapshot_version;
  static uint64_t seq_of(const market_state& s) { return s.seq; }
  static std::optional<market_event> decode(const event& e) { return decode_market_event(e); }
  static event encode(const market_event& e) { return wager::encode(e); }
  static void apply(market_state& s, const market_event& e, uint64_t seq, int64_t at) {
    wager::apply(s, e, seq, at);
  }
  static void check(const market_state&) {
    // Checked in full at recovery and in tests (check_invariants walks
    // every bet, too costly per event on a hot market).
  }
  // Payouts not yet acknowledged by their wallets.
  static bool open_work(const market_state& s) { return !s.outbox.empty(); }
  // Its open bets and unacknowledged payouts: the bulk of a snapshot.
  static uint64_t snapshot_size(const market_state& s) { return s.bets.size() + s.outbox.size(); }
  static boost::json::value to_json(const market_state& s) { return wager::to_json(s); }
  static std::optional<market_state> from_json(const boost::json::value& v) {
    return market_state_from_json(v);
  }
};

using market_recovery = std::shared_ptr<recovery<market_state>>;
using decide_atom = caf::atom_constant<caf::atom("decide")>;
using outbox_atom = caf::atom_constant<caf::atom("outbox")>;
using decision_lookup_atom = caf::atom_constant<caf::atom("declookup")>;
using leg_lookup_atom = caf::atom_constant<caf::atom("leglookup")>;
using cashout_lookup_atom = caf::atom_constant<caf::atom("colookup")>;
using cashout_due_atom = caf::atom_constant<caf::atom("codue")>;

} // namespace
} // namespace wager

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wager::market_recovery)

namespace wager {

namespace {

// Rejections kept in memory, so a wallet asking again is answered without a
// journal read. Accepted bets are all kept (settlement needs them).
inline constexpr size_t rejections_max = 4096;

struct delayed_bet {
  accept_bet_cmd cmd;
  std::vector<caf::response_promise> waiters;
  bool early = false;
};

struct market_actor_state {
  std::unique_ptr<journaled<market_traits>> book;
  std::shared_ptr<journal> store;
  market_options options;
  directory dir;
  market_id id;
  std::vector<caf::actor> subscribers;
  std::unordered_map<std::string, bet_decision> rejected;
  std::deque<std::string> rejected_order;
  std::unordered_map<std::string, std::vector<caf::response_promise>> deciding;
  // Decisions answered before they were durable, by bet: their events.
  std::unordered_map<std::string, event_position> undurable;
  std::unordered_map<std::string, delayed_bet> delayed;
  std::set<std::string> payouts_in_flight;
  // Acknowledged, to be recorded: key and the round it was for.
  std::vector<std::pair<std::string, uint32_t>> acked;
  bool acks_persisting = false;
  bool outbox_armed = false;
  bool passivating = false;
  std::unordered_map<uint64_t, std::vector<caf::response_promise>> lookups;
  // Cash-outs being decided (the journal looked up, the in-play delay
  // waited out, the decision written), by cashout_key: the command and who
  // waits for its decision.
  struct cashout_in_flight {
    cashout_bet_cmd cmd;
    std::vector<caf::response_promise> waiters;
  };
  std::unordered_map<std::string, cashout_in_flight> cashouts_deciding;
  // Releases of legs the market does not hold, waiting for the journal to
  // say whether it ever decided them, by bet.
  std::unordered_map<std::string, std::vector<caf::response_promise>> release_lookups;
  // Legs whose leg_released is written but not yet durable, by bet: a
  // release asked again meanwhile is answered once it is.
  std::unordered_map<std::string, std::vector<caf::response_promise>> legs_releasing;
  uint64_t next_lookup = 1;
  // What this market has added to options.payouts_pending.
  double payouts_counted = 0;

  ~market_actor_state() {
    if (options.payouts_pending != nullptr)
      options.payouts_pending->Decrement(payouts_counted);
  }

  static inline const char* name = "market";
};

using market_actor = caf::stateful_actor<market_actor_state>;

void deliver_all(std::vector<caf::response_promise>& waiters, const bet_decision& d) {
  for (auto& rp : waiters)
    rp.deliver(d);
  waiters.clear();
}

void deliver_all(std::vector<caf::response_promise>& waiters, const caf::error& err) {
  for (auto& rp : waiters)
    rp.deliver(err);
  waiters.clear();
}

std::map<std::string, price> all_prices(const market_state& s) {
  std::map<std::string, price> out;
  for (auto& sel : s.definition.selections)
    out[sel.id.value] = sel.current;
  return out;
}

void maybe_finish_passivation(market_actor* self) {
  auto& st = self->state;
  if (!st.passivating || st.book->pending() > 0 || !st.delayed.empty()
      || !st.book->state().outbox.empty() || st.acks_persisting)
    return;
  st.book->snapshot_now();
  for (auto& sub : st.subscribers)
    self->send(sub, subscription_ended_atom::value, st.id);
  self->quit();
}

caf::behavior recovering(market_actor* self);
caf::behavior running(market_actor* self);

void reload(market_actor* self, const caf::error& err) {
  auto& st = self->state;
  log().warn("market/{}: append failed ({}), reloading from the journal", st.id.value,
             self->system().render(err));
  for (auto& [bet, waiters] : st.deciding)
    deliver_all(waiters, err);
  st.deciding.clear();
  st.undurable.clear();
  st.rejected.clear();
  st.rejected_order.clear();
  st.payouts_in_flight.clear();
  st.acked.clear();
  st.acks_persisting = false;
  st.book->reload();
  begin_recovery(self);
  self->become(recovering(self));
  if (auto e = st.book->recover(self))
    self->quit(e);
}

// A decision the journal says was made before (request_id_reused): read it
// and answer with it.
void look_up_decision(market_actor* self, const std::string& bet,
                      std::vector<caf::response_promise> waiters) {
  auto& st = self->state;
  auto token = st.next_lookup++;
  st.lookups.emplace(token, std::move(waiters));
  auto target = caf::actor{self};
  auto err = st.store->find_request_async(
    st.book->stream(), bet, [target, token](caf::expected<std::optional<stored_request>> r) {
      std::string text;
      if (r && *r)
        text = (*r)->result;
      caf::anon_send(target, decision_lookup_atom::value, token, std::move(text));
    });
  if (err) {
    deliver_all(st.lookups[token], err);
    st.lookups.erase(token);
  }
}

void remember_rejection(market_actor* self, const bet_decision& d) {
  auto& st = self->state;
  if (st.rejected.emplace(d.bet.value, d).second)
    st.rejected_order.push_back(d.bet.value);
  if (st.rejected_order.size() > rejections_max) {
    st.rejected.erase(st.rejected_order.front());
    st.rejected_order.pop_front();
  }
}

// Records the decision and answers `waiters` with it: at once when `early`
// (the answer names the event, which the wallet builds on), else once it is
// durable.
void record_decision(market_actor* self, const bet_decision& d, const accept_bet_cmd& cmd,
                     std::vector<caf::response_promise> waiters, bool early) {
  auto& st = self->state;
  auto key = d.bet.value;
  if (!early) {
    auto& slot = st.deciding[key];
    for (auto& w : waiters)
      slot.push_back(std::move(w));
    waiters.clear();
  }
  market_event e = d.accepted
                     ? market_event{bet_accepted{
                         cmd.bet, cmd.user, cmd.selection, cmd.stake, d.at, cmd.each_way,
                         d.place_fraction, cmd.leg,
                         cmd.leg ? leg_liability_at(cmd.liability, cmd.asked, d.at) : money{}}}
                     : market_event{bet_rejected{cmd.bet, d.reason,
                                                 d.current.hundredths != 0
                                                   ? std::optional<price>{d.current}
                                                   : std::nullopt}};
  auto text = to_json_text(d);
  auto recorded = st.book->persist(
    self, {e},
    [key, text](const market_state&) {
      return std::optional<request_record>{request_record{key, text}};
    },
    [self, key, d](const caf::error& err) {
      auto& st = self->state;
      st.undurable.erase(key);
      auto waiters = std::move(st.deciding[key]);
      st.deciding.erase(key);
      if (code_of(err) == errc::request_id_reused)
        return look_up_decision(self, key, std::move(waiters));
      if (err)
        return deliver_all(waiters, err);
      crash_point("market.decision_durable");
      if (!d.accepted)
        remember_rejection(self, d);
      deliver_all(waiters, d);
      maybe_finish_passivation(self);
    });
  if (!early)
    return;
  st.undurable[key] = recorded;
  if (!d.accepted)
    remember_rejection(self, d);
  auto answer = d;
  answer.recorded = std::move(recorded);
  deliver_all(waiters, answer);
}

// The decision on a bet, against the market as it is now.
bet_decision judge(const market_state& s, const accept_bet_cmd& cmd) {
  bet_decision d{cmd.bet, false, {}, errc::none, {}};
  auto* sel = s.find_selection(cmd.selection.value);
  if (s.status != market_status::open) {
    d.reason = errc::market_not_open;
  } else if (sel == nullptr || s.is_withdrawn(cmd.selection.value)) {
    d.reason = errc::not_found;
  } else if (cmd.each_way && !s.definition.has_each_way()) {
    d.reason = errc::invalid_field;
  } else if (auto at = accepted_price(cmd.accept, cmd.asked, sel->current); !at) {
    d.reason = errc::price_changed;
    d.current = sel->current;
  } else if (cmd.stake > s.definition.limits.max_stake) {
    d.reason = errc::limit_exceeded;
  } else {
    auto i = s.liability.find(cmd.selection.value);
    auto now = i == s.liability.end() ? money{} : i->second;
    auto fraction = cmd.each_way ? s.definition.each_way.fraction : ratio{};
    auto added = cmd.leg ? leg_liability_at(cmd.liability, cmd.asked, *at)
                         : bet_liability(cmd.stake, *at, cmd.each_way, fraction);
    if (now + added > s.definition.limits.max_liability) {
      d.reason = errc::limit_exceeded;
    } else {
      d.accepted = true;
      d.at = *at;
      if (cmd.each_way)
        d.place_fraction = fraction;
      if (cmd.leg)
        d.max_payout = s.definition.limits.max_payout;
    }
  }
  return d;
}

caf::result<caf::message> accept_bet(market_actor* self, accept_bet_cmd& cmd) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto key = cmd.bet.value;
  auto known = [&](bet_decision d) {
    if (auto u = st.undurable.find(key); u != st.undurable.end())
      d.recorded = u->second;
    return caf::make_message(std::move(d));
  };
  if (auto i = s.bets.find(key); i != s.bets.end()) {
    bet_decision d{cmd.bet, true, i->second.accepted, errc::none, {}, {}};
    if (i->second.each_way)
      d.place_fraction = i->second.place_fraction;
    return known(d);
  }
  if (auto i = st.rejected.find(key); i != st.rejected.end())
    return known(i->second);
  // A response promise takes the request over: make one only on the paths
  // that answer through it.
  if (auto i = st.deciding.find(key); i != st.deciding.end()) {
    auto rp = self->make_response_promise();
    i->second.push_back(rp);
    return rp;
  }
  if (auto i = st.delayed.find(key); i != st.delayed.end()) {
    auto rp = self->make_response_promise();
    i->second.waiters.push_back(rp);
    return rp;
  }
  if (!s.defined)
    return make_error(errc::not_found, "no such market");
  // An early answer only to an asker on this node: one elsewhere writes
  // through another connection, which may commit before this one does.
  auto sender = self->current_sender();
  bool early = cmd.first_ask && sender && sender->node() == self->node();
  auto rp = self->make_response_promise();
  if (s.definition.in_play_delay_ms > 0 && s.status == market_status::open) {
    // In-play delay: decide at the end, against the price and status then.
    st.delayed.emplace(key, delayed_bet{cmd, {rp}, early});
    self->delayed_send(self, std::chrono::milliseconds{s.definition.in_play_delay_ms},
                       decide_atom::value, key);
    return rp;
  }
  record_decision(self, judge(s, cmd), cmd, {rp}, early);
  return rp;
}

// Records a refusal for a leg the market never decided, so an ask for it
// still on its way is refused too.
void refuse_unasked_leg(market_actor* self, const bet_id& bet, caf::response_promise rp) {
  auto& st = self->state;
  auto key = bet.value;
  if (st.rejected.count(key) > 0) {
    rp.deliver(leg_release_ack{bet}); // refused meanwhile
    return;
  }
  if (st.book->state().bets.count(key) > 0 || st.deciding.count(key) > 0
      || st.delayed.count(key) > 0) {
    // Asked meanwhile: the wallet releases again, and finds it decided.
    rp.deliver(make_error(errc::unavailable, "the leg is being decided"));
    return;
  }
  bet_decision no{bet, false, {}, errc::unavailable, {}};
  remember_rejection(self, no);
  st.book->persist(
    self, {bet_rejected{bet, errc::unavailable, std::nullopt}},
    [key, text = to_json_text(no)](const market_state&) {
      return std::optional<request_record>{request_record{key, text}};
    },
    [self, rp, bet](const caf::error& err) mutable {
      if (err)
        return rp.deliver(err);
      crash_point("market.leg_released");
      rp.deliver(leg_release_ack{bet});
    });
}

// A wallet gives up a slip: forget the leg. A leg the market does not hold
// was released before, refused, or never asked for: the journal's record of
// its decision tells which, and a leg never asked for is refused now.
caf::result<caf::message> release_leg(market_actor* self, release_leg_cmd& cmd) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto key = cmd.bet.value;
  if (!s.defined)
    return caf::make_message(leg_release_ack{cmd.bet});
  if (st.delayed.count(key) > 0 || st.deciding.count(key) > 0)
    return make_error(errc::unavailable, "the leg is being decided");
  if (auto r = st.legs_releasing.find(key); r != st.legs_releasing.end()) {
    // Forgotten in memory, not yet on disk: answered when it is.
    auto rp = self->make_response_promise();
    r->second.push_back(rp);
    return rp;
  }
  if (auto i = s.bets.find(key); i != s.bets.end()) {
    if (!i->second.leg)
      return make_error(errc::invalid_field, "not a leg of a slip", "bet");
    auto rp = self->make_response_promise();
    st.legs_releasing[key].push_back(rp);
    st.book->persist(self, {leg_released{cmd.bet}}, nullptr,
                     [self, key, bet = cmd.bet](const caf::error& err) mutable {
                       auto& st = self->state;
                       auto waiting = std::move(st.legs_releasing[key]);
                       st.legs_releasing.erase(key);
                       if (err) {
                         for (auto& rp : waiting)
                           rp.deliver(err);
                         return;
                       }
                       crash_point("market.leg_released");
                       for (auto& rp : waiting)
                         rp.deliver(leg_release_ack{bet});
                       maybe_finish_passivation(self);
                     });
    return rp;
  }
  if (st.rejected.count(key) > 0)
    return caf::make_message(leg_release_ack{cmd.bet});
  auto rp = self->make_response_promise();
  auto target = caf::actor{self};
  auto err = st.store->find_request_async(
    st.book->stream(), key,
    [target, bet = cmd.bet](caf::expected<std::optional<stored_request>> r) {
      caf::anon_send(target, leg_lookup_atom::value, bet, r ? caf::error{} : r.error(),
                     r && r->has_value());
    });
  if (err)
    rp.deliver(err);
  else
    st.release_lookups[key].push_back(rp);
  return rp;
}

// -- cash-out ------------------------------------------------------------------

void pump_outbox(market_actor* self);

std::string to_json_text(const cashout_decision& d) {
  boost::json::object o{{"accepted", d.accepted}};
  if (d.accepted)
    o["amount"] = d.amount.minor;
  else
    o["reason"] = to_code(d.reason);
  if (d.current.hundredths != 0)
    o["current_price"] = d.current.hundredths;
  return boost::json::serialize(o);
}

std::optional<cashout_decision> cashout_decision_from_json(const std::string& text) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(text, ec);
  if (ec || !doc.is_object())
    return std::nullopt;
  auto& o = doc.get_object();
  cashout_decision d;
  auto* accepted = o.if_contains("accepted");
  if (accepted == nullptr || !accepted->is_bool())
    return std::nullopt;
  d.accepted = accepted->get_bool();
  if (auto* a = o.if_contains("amount"); a && a->is_int64())
    d.amount = money{a->get_int64()};
  if (auto* r = o.if_contains("reason"); r && r->is_string()) {
    d.reason = parse_code(r->get_string()).value_or(errc::internal);
  }
  if (auto* p = o.if_contains("current_price"); p && p->is_int64())
    d.current = price{static_cast<int32_t>(p->get_int64())};
  return d;
}

// The decision on a cash-out, against the market as it is now.
cashout_decision judge_cashout(const market_state& s, const cashout_bet_cmd& cmd) {
  cashout_decision d;
  auto i = s.bets.find(cmd.bet.value);
  if (i == s.bets.end() || i->second.leg) {
    d.reason = errc::not_found;
    return d;
  }
  auto& b = i->second;
  auto* sel = s.find_selection(b.selection.value);
  if (s.result || s.voided_early(b) || b.stake.minor == 0 || s.status != market_status::open
      || sel == nullptr) {
    d.reason = errc::cashout_unavailable;
  } else if (cmd.stake.minor <= 0 || cmd.stake > b.stake || cmd.margin.d <= 0
             || cmd.margin.n < 0 || cmd.margin.n >= cmd.margin.d) {
    d.reason = errc::invalid_field;
  } else if (sel->current != cmd.quoted) {
    d.reason = errc::price_changed;
    d.current = sel->current;
  } else {
    d.amount = single_cashout_value(b, cmd.stake, sel->current, cmd.margin);
    d.accepted = d.amount.minor > 0;
    if (!d.accepted)
      d.reason = errc::cashout_unavailable;
  }
  return d;
}

void answer_cashout(market_actor* self, const std::string& key, const caf::message& answer) {
  auto& st = self->state;
  auto i = st.cashouts_deciding.find(key);
  if (i == st.cashouts_deciding.end())
    return;
  auto waiters = std::move(i->second.waiters);
  st.cashouts_deciding.erase(i);
  for (auto& rp : waiters)
    rp.deliver(answer);
}

// Decides now and writes the decision (with the cash-out's event when
// accepted); its waiters hear it once it is durable.
void decide_cashout(market_actor* self, const std::string& key) {
  auto& st = self->state;
  auto i = st.cashouts_deciding.find(key);
  if (i == st.cashouts_deciding.end())
    return;
  auto cmd = i->second.cmd;
  auto d = judge_cashout(st.book->state(), cmd);
  std::vector<market_event> events;
  if (d.accepted)
    events.emplace_back(
      bet_cashed_out{cmd.bet, cmd.request, cmd.stake, d.amount, cmd.quoted, cmd.margin});
  st.book->persist(
    self, std::move(events),
    [key, text = to_json_text(d)](const market_state&) {
      return std::optional<request_record>{request_record{key, text}};
    },
    [self, key, d](const caf::error& err) {
      if (err)
        return answer_cashout(self, key, caf::make_message(err));
      if (d.accepted)
        crash_point("market.cashout_durable");
      answer_cashout(self, key, caf::make_message(d));
      if (d.accepted)
        pump_outbox(self);
    });
}

caf::result<caf::message> cashout_bet(market_actor* self, cashout_bet_cmd& cmd) {
  auto& st = self->state;
  auto& s = st.book->state();
  if (!s.defined)
    return make_error(errc::not_found, "no such market");
  auto key = cashout_key(cmd.bet.value, cmd.request.value);
  auto rp = self->make_response_promise();
  if (auto i = st.cashouts_deciding.find(key); i != st.cashouts_deciding.end()) {
    i->second.waiters.push_back(rp);
    return rp;
  }
  st.cashouts_deciding.emplace(key, market_actor_state::cashout_in_flight{cmd, {rp}});
  // Decided before? The stored decision is the answer.
  auto target = caf::actor{self};
  auto err = st.store->find_request_async(
    st.book->stream(), key, [target, key](caf::expected<std::optional<stored_request>> r) {
      std::string text;
      bool read = static_cast<bool>(r);
      if (r && *r)
        text = (*r)->result;
      caf::anon_send(target, cashout_lookup_atom::value, key, read, std::move(text));
    });
  if (err) {
    st.cashouts_deciding.erase(key);
    rp.deliver(err);
  }
  return rp;
}

// The journal answered: a stored decision, or none yet.
void on_cashout_lookup(market_actor* self, const std::string& key, bool read,
                       const std::string& text) {
  auto& st = self->state;
  auto i = st.cashouts_deciding.find(key);
  if (i == st.cashouts_deciding.end())
    return;
  if (!read)
    return answer_cashout(self, key,
                          caf::make_message(make_error(errc::unavailable,
                                                       "the journal could not be read")));
  if (!text.empty()) {
    if (auto d = cashout_decision_from_json(text))
      return answer_cashout(self, key, caf::make_message(*d));
    return answer_cashout(self, key,
                          caf::make_message(make_error(errc::internal, "unreadable decision")));
  }
  auto& s = st.book->state();
  // In play: decide at the end of the delay, against the price then.
  if (s.definition.in_play_delay_ms > 0 && s.status == market_status::open)
    return self->delayed_send(self, std::chrono::milliseconds{s.definition.in_play_delay_ms},
                              cashout_due_atom::value, key);
  decide_cashout(self, key);
}

void pump_outbox(market_actor* self);

void persist_acks(market_actor* self) {
  auto& st = self->state;
  if (st.acks_persisting || st.acked.empty())
    return;
  payouts_acknowledged ack;
  auto n = std::min<size_t>(st.acked.size(), st.options.acks_per_event_max);
  for (size_t k = 0; k < n; ++k) {
    ack.bets.push_back(st.acked[k].first);
    ack.rounds.push_back(st.acked[k].second);
  }
  st.acked.erase(st.acked.begin(), st.acked.begin() + static_cast<ptrdiff_t>(n));
  st.acks_persisting = true;
  st.book->persist(self, {ack}, nullptr, [self](const caf::error& err) {
    self->state.acks_persisting = false;
    if (err)
      return;
    persist_acks(self);
    pump_outbox(self);
    maybe_finish_passivation(self);
  });
}

// Brings the node's payouts_pending gauge up to this market's outbox.
void count_payouts(market_actor_state& st) {
  if (st.options.payouts_pending == nullptr)
    return;
  auto now = st.book ? static_cast<double>(st.book->state().outbox.size()) : 0.0;
  st.options.payouts_pending->Increment(now - st.payouts_counted);
  st.payouts_counted = now;
}

void pump_outbox(market_actor* self) {
  auto& st = self->state;
  count_payouts(st);
  auto& s = st.book->state();
  for (auto& key : s.outbox) {
    if (st.payouts_in_flight.size() >= st.options.outbox_window)
      break;
    if (st.payouts_in_flight.count(key) > 0
        || std::any_of(st.acked.begin(), st.acked.end(),
                       [&](const auto& a) { return a.first == key; }))
      continue;
    st.payouts_in_flight.insert(key);
    // A cash-out, a single's payout, or a leg's result for the wallet to
    // settle its slip; after a rollback (no result, not void before it),
    // the reversal of what the result paid.
    caf::message msg;
    user_id user;
    uint32_t round = 0;
    if (is_cashout_key(key)) {
      auto& c = s.cashouts.at(key);
      user = c.user;
      msg = caf::make_message(credit_cashout_cmd{c.bet, c.request, c.stake, c.amount});
    } else {
      auto& b = s.bets.at(key);
      user = b.user;
      round = b.round;
      bool reversal = !s.result && !s.voided_early(b);
      if (b.leg) {
        auto o = reversal ? leg_outcome{leg_result::open, {}, 0} : leg_outcome_of(s, b);
        msg = caf::make_message(
          leg_result_cmd{b.bet, st.id, o.result, o.dead_heat, o.rule4, round, b.resettled});
      } else if (reversal) {
        msg = caf::make_message(credit_payout_cmd{b.bet, bet_status::open, {}, round});
      } else {
        auto line = settle_line(s, b);
        msg = caf::make_message(credit_payout_cmd{b.bet, line.outcome, line.amount, round,
                                                  leg_outcome_of(s, b).result});
      }
    }
    st.dir
      .request(self, caf::duration{st.options.payout_timeout},
               entity_id{"wallet", user.value}, std::move(msg))
      .then(
        [self, key, round](payout_ack&) {
          auto& st = self->state;
          st.payouts_in_flight.erase(key);
          st.acked.emplace_back(key, round);
          persist_acks(self);
        },
        [self, key](caf::error& err) {
          auto& st = self->state;
          st.payouts_in_flight.erase(key);
          log().debug("market/{}: payout for {} not acknowledged: {}", st.id.value, key,
                      self->system().render(err));
          if (!st.outbox_armed) {
            st.outbox_armed = true;
            self->delayed_send(self, st.options.outbox_retry, outbox_atom::value);
          }
        });
  }
}

// Names reach clients as JSON strings: they must be valid UTF-8 without
// control characters, and bounded.
bool valid_name(const std::string& text) {
  if (text.empty() || text.size() > 256)
    return false;
  for (size_t i = 0; i < text.size();) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
    if (n == 0 || i + n > text.size() || (n == 1 && c < 0x20) || (n == 2 && c < 0xc2))
      return false;
    for (size_t k = 1; k < n; ++k)
      if ((static_cast<unsigned char>(text[i + k]) >> 6) != 0x2)
        return false;
    i += n;
  }
  return true;
}

caf::error check_definition(const market_definition& d) {
  if (!valid_name(d.event) || !valid_name(d.name))
    return make_error(errc::invalid_field, "names are 1-256 bytes of UTF-8 text", "name");
  for (auto& sel : d.selections)
    if (!valid_name(sel.name))
      return make_error(errc::invalid_field, "names are 1-256 bytes of UTF-8 text",
                        "selections");
  if (!valid_id(d.id.value))
    return make_error(errc::invalid_field, "market_id must be 1-64 of [A-Za-z0-9_.:-]", "market_id");
  if (d.selections.empty())
    return make_error(errc::invalid_field, "a market needs at least one selection", "selections");
  std::set<std::string> ids;
  for (auto& sel : d.selections) {
    if (!valid_id(sel.id.value) || !ids.insert(sel.id.value).second)
      return make_error(errc::invalid_field, "selection ids must be valid and unique", "selections");
    if (!valid_price(sel.current))
      return make_error(errc::invalid_field, "prices run from 1.01 to 1000.00", "selections");
  }
  if (!valid_amount(d.limits.max_stake.minor) || !valid_amount(d.limits.max_liability.minor)
      || (d.limits.max_payout.minor != 0 && !valid_amount(d.limits.max_payout.minor)))
    return make_error(errc::invalid_field, "limits must be 1 to 10^12 minor units", "limits");
  if (d.in_play_delay_ms < 0 || d.in_play_delay_ms > 60'000)
    return make_error(errc::invalid_field, "in_play_delay_ms runs from 0 to 60000",
                      "in_play_delay_ms");
  if (d.has_each_way() && !valid(d.each_way))
    return make_error(errc::invalid_field,
                      "each_way needs places 1 to 10 and a fraction in (0, 1]", "each_way");
  return {};
}

// The updates subscribers get for what was just applied, stamped with the
// versions as they are now: appends overlap, so by the time one is durable
// later changes may already be applied.
using update_list = std::shared_ptr<std::vector<market_update>>;

// Persists `events`, then publishes `updates` (filled by the caller right
// after, while the state is exactly what these events made it) and answers
// the market view.
caf::result<caf::message> change(market_actor* self, std::vector<market_event> events,
                                 update_list updates, bool resulted,
                                 const char* durable = "market.result_durable") {
  auto rp = self->make_response_promise();
  self->state.book->persist(self, std::move(events), nullptr,
                            [self, rp, updates, resulted, durable](const caf::error& err) mutable {
                              if (err)
                                return rp.deliver(err);
                              if (resulted)
                                crash_point(durable);
                              for (auto& u : *updates)
                                for (auto& sub : self->state.subscribers)
                                  self->send(sub, u);
                              if (resulted)
                                count_payouts(self->state);
                              rp.deliver(view_of(self->state.book->state()));
                              // Payouts go out only once the result is on disk.
                              if (resulted)
                                pump_outbox(self);
                            });
  return rp;
}

market_update status_update(const market_state& s) {
  return {s.definition.id, s.version, true, s.status, all_prices(s)};
}

caf::result<caf::message> set_status(market_actor* self, market_status to) {
  auto& s = self->state.book->state();
  if (!s.defined)
    return make_error(errc::not_found, "no such market");
  if (to != market_status::open && to != market_status::suspended && to != market_status::closed)
    return make_error(errc::invalid_field, "status must be open, suspended or closed", "status");
  if (s.status == to)
    return caf::make_message(view_of(s));
  if (!transition_allowed(s.status, to))
    return make_error(errc::illegal_transition, "a " + std::string{to_string(s.status)}
                                                  + " market cannot become "
                                                  + std::string{to_string(to)});
  auto updates = std::make_shared<std::vector<market_update>>();
  auto result = change(self, {status_changed{to}}, updates, false);
  updates->push_back(status_update(s));
  return result;
}

caf::result<caf::message> set_prices(market_actor* self, set_prices_cmd& cmd) {
  auto& s = self->state.book->state();
  if (!s.defined)
    return make_error(errc::not_found, "no such market");
  if (s.status == market_status::settled || s.status == market_status::voided)
    return make_error(errc::illegal_transition, "the market is resulted");
  if (cmd.prices.empty() && !cmd.status)
    return make_error(errc::invalid_field, "no prices given", "prices");
  for (auto& [sel, p] : cmd.prices) {
    if (s.find_selection(sel) == nullptr)
      return make_error(errc::invalid_field, "unknown selection " + sel, "prices");
    if (!valid_price(p))
      return make_error(errc::invalid_field, "prices run from 1.01 to 1000.00", "prices");
  }
  std::vector<market_event> events;
  auto status_before = s.status;
  if (!cmd.prices.empty())
    events.emplace_back(prices_changed{cmd.prices});
  bool status_change = false;
  if (cmd.status && *cmd.status != s.status) {
    if (!transition_allowed(s.status, *cmd.status))
      return make_error(errc::illegal_transition, "illegal status change");
    events.emplace_back(status_changed{*cmd.status});
    status_change = true;
  }
  // One update per version: the prices, then the status change (which
  // carries all prices).
  auto updates = std::make_shared<std::vector<market_update>>();
  auto result = change(self, std::move(events), updates, false);
  if (!cmd.prices.empty())
    updates->push_back({s.definition.id, s.version - (status_change ? 1 : 0), false,
                        status_before, cmd.prices, cmd.feed_received_us});
  if (status_change) {
    updates->push_back(status_update(s));
    updates->back().feed_received_us = cmd.feed_received_us;
  }
  return result;
}

// The first problem with a result for this market, or none. Sorts its
// lists: they are sets, and the order they are named in means nothing.
caf::error check_result(const market_state& s, market_resulted& r) {
  for (auto* list : {&r.winners, &r.placed, &r.void_selections})
    std::sort(list->begin(), list->end());
  if (r.voided) {
    if (!r.winners.empty() || !r.placed.empty() || !r.void_selections.empty()
        || !r.dead_heat.empty() || !r.rule4.empty())
      return make_error(errc::invalid_field, "a void market has no results", "results");
    return {};
  }
  if (r.winners.empty())
    return make_error(errc::invalid_field, "a result names at least one winner", "results");
  std::set<std::string> seen;
  for (auto* list : {&r.winners, &r.placed, &r.void_selections})
    for (auto& sel : *list) {
      if (s.find_selection(sel) == nullptr || !seen.insert(sel).second)
        return make_error(errc::invalid_field, "unknown or repeated selection " + sel,
                          "results");
      if (s.is_withdrawn(sel) && list != &r.void_selections)
        return make_error(errc::invalid_field, sel + " is a non-runner", "results");
    }
  if (!r.placed.empty() && !s.definition.has_each_way())
    return make_error(errc::invalid_field, "placed needs the market's each-way terms",
                      "results");
  for (auto& [sel, factor] : r.dead_heat) {
    bool paid = std::binary_search(r.winners.begin(), r.winners.end(), sel)
                || std::binary_search(r.placed.begin(), r.placed.end(), sel);
    if (!paid)
      return make_error(errc::invalid_field,
                        "a dead heat is for a selection that won or placed: " + sel, "dead_heat");
    if (factor.n < 1 || factor.n >= factor.d || factor.d > 1000)
      return make_error(errc::invalid_field, "a dead-heat factor is a fraction under 1",
                        "dead_heat");
  }
  if (r.rule4.size() > 20)
    return make_error(errc::invalid_field, "at most 20 Rule 4 deductions", "rule4");
  for (auto& d : r.rule4)
    if (d.deduction < 1 || d.deduction > rule4_max || d.before_ms <= 0)
      return make_error(errc::invalid_field,
                        "a Rule 4 deduction is 1 to 90 pence, with a time", "rule4");
  return {};
}

caf::result<caf::message> settle(market_actor* self, settle_cmd& cmd) {
  auto& s = self->state.book->state();
  if (!s.defined)
    return make_error(errc::not_found, "no such market");
  auto& r = cmd.result;
  auto target = r.voided ? market_status::voided : market_status::settled;
  if (auto err = check_result(s, r))
    return err;
  if (s.result) {
    if (*s.result == r)
      return caf::make_message(view_of(s)); // settling again is a no-op
    return make_error(errc::illegal_transition, "the market is already resulted");
  }
  if (!transition_allowed(s.status, target))
    return make_error(errc::illegal_transition,
                      "a " + std::string{to_string(s.status)} + " market cannot be resulted");
  auto updates = std::make_shared<std::vector<market_update>>();
  auto result = change(self, {r}, updates, true);
  updates->push_back(status_update(s));
  return result;
}

caf::result<caf::message> unsettle(market_actor* self) {
  auto& s = self->state.book->state();
  if (!s.defined)
    return make_error(errc::not_found, "no such market");
  if (!s.result) {
    if (s.rollbacks > 0 && s.status == market_status::closed)
      return caf::make_message(view_of(s)); // rolled back already
    return make_error(errc::illegal_transition, "the market has no result to roll back");
  }
  auto updates = std::make_shared<std::vector<market_update>>();
  // The reversals leave once the rollback is durable.
  auto result = change(self, {settlement_rolled_back{}}, updates, true, "market.rollback_durable");
  updates->push_back(status_update(s));
  return result;
}

caf::result<caf::message> cancel_bets(market_actor* self, const cancel_bets_cmd& cmd) {
  auto& s = self->state.book->state();
  if (!s.defined)
    return make_error(errc::not_found, "no such market");
  if (cmd.from_ms > cmd.to_ms)
    return make_error(errc::invalid_field, "from is after to", "from");
  bets_cancelled c{cmd.from_ms, cmd.to_ms, {}};
  for (auto& [id, b] : s.bets)
    if (b.accepted_at_ms >= cmd.from_ms && b.accepted_at_ms < cmd.to_ms && !s.voided_early(b))
      c.bets.push_back(id);
  if (c.bets.empty())
    return caf::make_message(view_of(s));
  std::sort(c.bets.begin(), c.bets.end());
  // Refunds, like a result's payouts, leave once the cancellation is
  // durable. Clients see nothing change: no version, no update.
  return change(self, {c}, std::make_shared<std::vector<market_update>>(), true);
}

caf::result<caf::message> withdraw_selection(market_actor* self,
                                             const withdraw_selection_cmd& cmd) {
  auto& s = self->state.book->state();
  if (!s.defined)
    return make_error(errc::not_found, "no such market");
  auto& sel = cmd.selection.value;
  if (s.find_selection(sel) == nullptr)
    return make_error(errc::not_found, "no such selection");
  if (s.is_withdrawn(sel))
    return caf::make_message(view_of(s));
  if (s.result)
    return make_error(errc::illegal_transition, "the market is resulted");
  auto updates = std::make_shared<std::vector<market_update>>();
  // The refunds go out through the outbox once the withdrawal is durable.
  auto result = change(self, {selection_withdrawn{cmd.selection}}, updates, true);
  updates->push_back(status_update(s));
  updates->back().withdrawn = {sel};
  return result;
}

caf::result<caf::message> define(market_actor* self, const market_definition& d, bool create) {
  auto& s = self->state.book->state();
  if (auto err = check_definition(d))
    return err;
  if (d.id != self->state.id)
    return make_error(errc::invalid_field, "market_id does not match", "market_id");
  if (create && s.defined) {
    if (definition_to_json(s.definition) == definition_to_json(d))
      return caf::make_message(view_of(s));
    return make_error(errc::already_exists, "a market with this id exists");
  }
  if (!create && !s.defined)
    return make_error(errc::not_found, "no such market");
  if (!create) {
    if (s.status == market_status::settled || s.status == market_status::voided)
      return make_error(errc::illegal_transition, "the market is resulted");
    for (auto& [sel, l] : s.liability)
      if (std::none_of(d.selections.begin(), d.selections.end(),
                       [&](const selection& x) { return x.id.value == sel; }))
        return make_error(errc::invalid_field, "a selection with bets cannot be removed",
                          "selections");
  }
  auto updates = std::make_shared<std::vector<market_update>>();
  auto result = change(self, {market_defined{d}}, updates, false);
  updates->push_back({s.definition.id, s.version, false, s.status, all_prices(s)});
  return result;
}

caf::behavior running(market_actor* self);

caf::behavior recovering(market_actor* self) {
  return {
    [self](recovered_atom, market_recovery& r) {
      auto& st = self->state;
      if (r->error) {
        log().error("market/{}: recovery failed: {}", st.id.value,
                    self->system().render(r->error));
        return self->quit(r->error);
      }
      check_invariants(r->state);
      st.book->recovered(std::move(r->state));
      end_recovery(self, running(self));
      pump_outbox(self); // a settlement cut short by a crash resumes here
    },
    [self](persisted_atom, uint64_t token, caf::error& err) {
      self->state.book->on_persisted(self, token, err);
    },
  };
}

caf::behavior running(market_actor* self) {
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& subs = self->state.subscribers;
    subs.erase(std::remove_if(subs.begin(), subs.end(),
                              [&](const caf::actor& a) { return a.address() == dm.source; }),
               subs.end());
  });
  return {
    [self](create_market_cmd& cmd) { return define(self, cmd.definition, true); },
    [self](update_market_cmd& cmd) { return define(self, cmd.definition, false); },
    [self](set_status_cmd& cmd) { return set_status(self, cmd.status); },
    [self](set_prices_cmd& cmd) { return set_prices(self, cmd); },
    [self](settle_cmd& cmd) { return settle(self, cmd); },
    [self](withdraw_selection_cmd& cmd) { return withdraw_selection(self, cmd); },
    [self](cancel_bets_cmd& cmd) { return cancel_bets(self, cmd); },
    [self](unsettle_cmd&) { return unsettle(self); },
    [self](market_query) -> caf::result<market_view> {
      auto& s = self->state.book->state();
      if (!s.defined)
        return make_error(errc::not_found, "no such market");
      return view_of(s);
    },
    [self](accept_bet_cmd& cmd) { return accept_bet(self, cmd); },
    [self](release_leg_cmd& cmd) { return release_leg(self, cmd); },
    [self](cashout_bet_cmd& cmd) { return cashout_bet(self, cmd); },
    [self](cashout_lookup_atom, std::string& key, bool read, std::string& text) {
      on_cashout_lookup(self, key, read, text);
    },
    [self](cashout_due_atom, std::string& key) { decide_cashout(self, key); },
    [self](leg_lookup_atom, bet_id& bet, caf::error& err, bool decided) {
      auto& st = self->state;
      auto i = st.release_lookups.find(bet.value);
      if (i == st.release_lookups.end())
        return;
      auto waiting = std::move(i->second);
      st.release_lookups.erase(i);
      for (auto& rp : waiting) {
        if (err)
          rp.deliver(err);
        else if (decided)
          rp.deliver(leg_release_ack{bet}); // released or refused before
        else
          refuse_unasked_leg(self, bet, rp);
      }
    },
    [self](subscribe_cmd& cmd) -> caf::result<market_view> {
      auto& st = self->state;
      auto& s = st.book->state();
      if (!s.defined)
        return make_error(errc::not_found, "no such market");
      if (st.subscribers.size() >= st.options.subscribers_max)
        return make_error(errc::unavailable, "too many subscribers");
      if (std::find(st.subscribers.begin(), st.subscribers.end(), cmd.subscriber)
          == st.subscribers.end()) {
        self->monitor(cmd.subscriber);
        st.subscribers.push_back(cmd.subscriber);
      }
      return view_of(s);
    },
    [self](unsubscribe_cmd& cmd) {
      auto& subs = self->state.subscribers;
      subs.erase(std::remove(subs.begin(), subs.end(), cmd.subscriber), subs.end());
      self->demonitor(cmd.subscriber);
    },
    [self](decide_atom, std::string& key) {
      auto& st = self->state;
      auto i = st.delayed.find(key);
      if (i == st.delayed.end())
        return;
      auto pending = std::move(i->second);
      st.delayed.erase(i);
      record_decision(self, judge(st.book->state(), pending.cmd), pending.cmd,
                      std::move(pending.waiters), pending.early);
    },
    [self](outbox_atom) {
      self->state.outbox_armed = false;
      pump_outbox(self);
    },
    [self](decision_lookup_atom, uint64_t token, std::string& text) {
      auto& st = self->state;
      auto i = st.lookups.find(token);
      if (i == st.lookups.end())
        return;
      if (auto d = bet_decision_from_json(text))
        deliver_all(i->second, *d);
      else
        deliver_all(i->second, make_error(errc::unavailable, "decision not readable yet"));
      st.lookups.erase(i);
    },
    [self](persisted_atom, uint64_t token, caf::error& err) {
      if (!self->state.book->on_persisted(self, token, err))
        reload(self, err);
    },
    [self](passivate_atom) {
      self->state.passivating = true;
      maybe_finish_passivation(self);
    },
  };
}

} // namespace

market_view view_of(const market_state& s) {
  market_view v{s.definition, s.status, s.version, {}, {s.withdrawn.begin(), s.withdrawn.end()}};
  for (auto& [sel, l] : s.liability)
    v.liability[sel] = l.minor;
  return v;
}

activate_fn market_activator(std::shared_ptr<journal> j, market_options options) {
  auto fill = [j, options](market_actor_state& st, const std::string& key, const directory& dir) {
    st.store = j;
    st.options = options;
    st.dir = dir;
    st.id = market_id{key};
  };
  return journaled_activator<market_traits, market_actor>(j, "market", options.snapshot_every,
                                                          fill, recovering);
}

} // namespace wager
