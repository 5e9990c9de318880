#include "wager/actors/wallet.hpp"

#include "wager/actors/history.hpp"
#include "wager/actors/journaled.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/wallet_codec.hpp"
#include "wager/runtime/crash_point.hpp"

#include <caf/all.hpp>

#include <random>

namespace wager {

namespace {

struct wallet_traits {
  using state_type = wallet_state;
  using event_type = wallet_event;
  static constexpr uint32_t snapshot_version = wallet_snapshot_version;
  static uint64_t seq_of(const wallet_state& s) { return s.seq; }
  static std::optional<wallet_event> decode(const event& e) { return decode_wallet_event(e); }
  static event encode(const wallet_event& e) { return wager::encode(e); }
  static void apply(wallet_state& s, const wallet_event& e, uint64_t seq, int64_t at) {
    wager::apply(s, e, seq, at);
  }
  static void check(const wallet_state& s) { check_invariants(s); }
  // A held stake waits for its market's decision; a released slip's
  // markets are still to forget their legs.
  static bool open_work(const wallet_state& s) {
    return !s.holds.empty() || !s.releasing.empty();
  }
  // What a snapshot lists: held stakes, open and recently settled bets,
  // remembered requests, the minutes of the rolling periods.
  static uint64_t snapshot_size(const wallet_state& s) {
    return s.holds.size() + s.open_bets.size() + s.settled_bets.size() + s.requests.size()
           + s.activity.size();
  }
  static boost::json::value to_json(const wallet_state& s) { return wager::to_json(s); }
  static std::optional<wallet_state> from_json(const boost::json::value& v) {
    return wallet_state_from_json(v);
  }
};

using wallet_recovery = std::shared_ptr<recovery<wallet_state>>;
using ask_market_atom = caf::atom_constant<caf::atom("askmarket")>;
using answer_due_atom = caf::atom_constant<caf::atom("answerdue")>;
using lookup_atom = caf::atom_constant<caf::atom("lookup")>;
using stored_atom = caf::atom_constant<caf::atom("stored")>;
using ask_leg_atom = caf::atom_constant<caf::atom("askleg")>;
using release_atom = caf::atom_constant<caf::atom("release")>;
using slip_cashout_atom = caf::atom_constant<caf::atom("slipcash")>;
using cashout_due_atom = caf::atom_constant<caf::atom("cashdue")>;
using cashout_lookup_atom = caf::atom_constant<caf::atom("cashlook")>;
using payout_lookup_atom = caf::atom_constant<caf::atom("paylookup")>;
using restored_atom = caf::atom_constant<caf::atom("restored")>;

} // namespace
} // namespace wager

CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wager::wallet_recovery)

namespace wager {

namespace {

// Answers for requests refused without events (insufficient funds, ...),
// kept so a retry gets the same answer without a journal read.
inline constexpr size_t rejections_max = 1024;

struct wallet_actor_state {
  std::unique_ptr<journaled<wallet_traits>> book;
  std::shared_ptr<journal> store;
  wallet_options options;
  directory dir;
  user_id user;
  // bet id -> bettors waiting for the saga's answer
  std::unordered_map<std::string, std::vector<caf::response_promise>> waiters;
  std::unordered_map<std::string, std::chrono::milliseconds> backoff;
  std::unordered_map<std::string, request_entry> rejections;
  ring_queue<std::string> rejection_order;
  // Journal look-ups in flight, by token.
  std::unordered_map<uint64_t, caf::response_promise> lookups;
  std::unordered_map<uint64_t, std::vector<caf::response_promise>> stored_lookups;
  uint64_t next_lookup = 1;
  std::vector<caf::actor> watchers;
  // A slip's legs' decisions while its saga runs, by bet, in the order of
  // its legs. Not journaled: a saga resumed after a restart asks again, and
  // every market answers as it did.
  std::unordered_map<std::string, std::vector<std::optional<bet_decision>>> votes;
  // Released slips: the markets that have forgotten their legs, and the
  // releases in flight ("<bet>/<market>").
  std::unordered_map<std::string, std::set<std::string>> released;
  std::set<std::string> releases_in_flight;
  std::set<std::string> legs_released_writing;
  // Cash-out quotes handed out and not yet expired, by quote id: the bet,
  // the prices they read (per leg; 0 for a leg with a result) and the
  // longest in-play delay of its open legs' markets. Not journaled: a quote
  // lost to a restart is expired, and the client asks for another.
  struct quote_entry {
    std::string bet;
    std::vector<price> prices;
    int64_t expires_ms = 0;
    int64_t delay_ms = 0;
  };
  std::unordered_map<std::string, quote_entry> quotes;
  // Cash-outs waiting for their answer, by cashout_key: who waits, and for
  // a slip the request being carried out.
  struct cashout_waiting {
    std::vector<caf::response_promise> waiters;
    cashout_cmd cmd;
    uint64_t hash = 0;
    money stake;
    quote_entry quote;
  };
  std::unordered_map<std::string, cashout_waiting> cashouts;
  // Credits of cash-outs for bets this wallet no longer remembers, waiting
  // for the journal to say whether they were taken, by cashout_key.
  std::unordered_map<std::string, caf::response_promise> cashout_credits;
  // Payouts for bets no longer in memory, waiting for the journal to say
  // whether they were applied, by token.
  std::unordered_map<uint64_t, std::pair<credit_payout_cmd, caf::response_promise>>
    payout_lookups;
  // Resettlements waiting for their bet from the history read model, by
  // token: the command (credit_payout_cmd or leg_result_cmd) and its promise.
  struct restore_pending {
    caf::message cmd;
    caf::response_promise rp;
  };
  std::unordered_map<uint64_t, restore_pending> restores;
  bool passivating = false;
  bool reloading = false;

  static inline const char* name = "wallet";
};

using wallet_actor = caf::stateful_actor<wallet_actor_state>;

// The time the wallet's rules read, from the same clock as its events' times.
int64_t wall_ms(const wallet_actor_state& st) {
  return st.options.clock_ms ? st.options.clock_ms() : now_ms();
}

// Bet ids are 96 random bits: markets and the ledger know a bet by its id
// alone, so ids of different wallets must never meet. One generator per
// scheduler thread, seeded with 256 bits: a generator per wallet seeded with
// one 32-bit random_device draw gave two of 100,000 wallets the same ids
// about two times in three (and cost 2.5 kB per wallet).
std::mt19937_64& bet_id_source() {
  thread_local std::mt19937_64 rng = [] {
    std::random_device rd;
    std::seed_seq seed{rd(), rd(), rd(), rd(), rd(), rd(), rd(), rd()};
    return std::mt19937_64{seed};
  }();
  return rng;
}

// `prefix` and 96 random bits in hex: bet ids ("b-") and quote ids ("q-").
std::string random_id(const char* prefix) {
  static constexpr char hex[] = "0123456789abcdef";
  std::string id = prefix;
  auto& rng = bet_id_source();
  for (int word = 0; word < 2; ++word) {
    auto bits = rng();
    for (int i = 0; i < 12; ++i, bits >>= 4)
      id.push_back(hex[bits & 0xf]);
  }
  return id;
}

bet_id new_bet_id() {
  return bet_id{random_id("b-")};
}

void remember_rejection(wallet_actor_state& st, const std::string& request,
                        request_entry entry) {
  if (st.rejections.emplace(request, std::move(entry)).second)
    st.rejection_order.push_back(request);
  if (st.rejection_order.size() > rejections_max) {
    st.rejections.erase(st.rejection_order.front());
    st.rejection_order.pop_front();
  }
}

const request_entry* known_request(const wallet_actor_state& st, const std::string& id) {
  auto& requests = st.book->state().requests;
  if (auto i = requests.find(id); i != requests.end())
    return &i->second;
  if (auto i = st.rejections.find(id); i != st.rejections.end())
    return &i->second;
  return nullptr;
}

void fail_waiters(wallet_actor_state& st, const std::string& bet, const caf::error& err) {
  if (auto i = st.waiters.find(bet); i != st.waiters.end()) {
    for (auto& rp : i->second)
      rp.deliver(err);
    st.waiters.erase(i);
  }
}

void answer_waiters(wallet_actor_state& st, const std::string& bet_key, const bet& b) {
  auto i = st.waiters.find(bet_key);
  if (i == st.waiters.end())
    return;
  for (auto& rp : i->second)
    rp.deliver(b);
  st.waiters.erase(i);
}

void answer_waiters(wallet_actor_state& st, const std::string& bet_key,
                    const std::string& response) {
  auto i = st.waiters.find(bet_key);
  if (i == st.waiters.end())
    return;
  auto msg = replay_message(st.book->state(), bet_key, response);
  for (auto& rp : i->second) {
    if (msg.bet_answer)
      rp.deliver(*msg.bet_answer);
    else
      rp.deliver(msg.error);
  }
  st.waiters.erase(i);
}

void maybe_finish_passivation(wallet_actor* self) {
  auto& st = self->state;
  if (!st.passivating || st.book->pending() > 0 || !st.book->state().holds.empty()
      || !st.book->state().releasing.empty())
    return;
  st.book->snapshot_now();
  for (auto& w : st.watchers)
    self->send(w, watch_ended_atom::value, st.user);
  self->quit();
}

// Tells watchers what just became durable.
void notify(wallet_actor* self, const bet* changed) {
  auto& st = self->state;
  if (st.watchers.empty())
    return;
  auto& s = st.book->state();
  for (auto& w : st.watchers) {
    if (changed != nullptr)
      self->send(w, *changed);
    self->send(w, wallet_balance{s.available, s.held});
  }
}

// A failed append: memory is ahead of the disk. Everything in flight was
// answered with the error; rebuild from the journal and carry on.
void reload(wallet_actor* self, const caf::error& err);

caf::behavior recovering(wallet_actor* self);
caf::behavior running(wallet_actor* self);

// The journal holds a first answer for `request` that this wallet no longer
// had in memory (request_id_reused): answer the waiting callers with it.
void answer_from_journal(wallet_actor* self, const std::string& request,
                         std::vector<caf::response_promise> promises);

// Queues events; `then` runs once they are durable. On failure the wallet
// reloads itself from the journal.
void persist(wallet_actor* self, std::vector<wallet_event> events,
             journaled<wallet_traits>::record_fn record,
             std::function<void(const caf::error&)> then,
             std::vector<event_position> after = {}) {
  self->state.book->persist(self, std::move(events), record, std::move(then), std::move(after));
}

// Refuses a request for good: the answer is stored (no events) so a retry
// gets it again.
caf::result<caf::message> reject(wallet_actor* self, const std::string& request,
                                 uint64_t hash, errc code, std::string message,
                                 std::string field = {}) {
  auto response = error_json(code, message, {}, field);
  remember_rejection(self->state, request, {hash, {}, response});
  auto rp = self->make_response_promise();
  persist(self, {},
          [request, response](const wallet_state&) {
            return std::optional<request_record>{request_record{request, response}};
          },
          [self, rp, code, message, field, request](const caf::error& err) mutable {
            if (code_of(err) == errc::request_id_reused)
              answer_from_journal(self, request, {rp});
            else if (err)
              rp.deliver(err);
            else if (field.empty())
              rp.deliver(make_error(code, message));
            else
              rp.deliver(make_error(code, message, field));
          });
  return rp;
}

std::string exclusion_message(const gambling_limits& l, int64_t now) {
  return now < l.self_exclude_until_ms ? "this account is self-excluded"
                                       : "this account is on a time-out";
}

// Asks the bet's market for its decision. `first`: the first ask of a hold
// this wallet has just made durable, which the market may answer before its
// own decision is durable.
void ask_market(wallet_actor* self, const std::string& bet_key, bool first = false);

void send_releases(wallet_actor* self, const std::string& bet_key);

// Ends a bet's saga with `events` (its commit or its release), answering
// the bettors once they are durable.
void conclude(wallet_actor* self, const std::string& bet_key, const std::string& request,
              std::vector<wallet_event> events, std::vector<event_position> after);

void decide(wallet_actor* self, const std::string& bet_key, const bet_decision& d) {
  auto& st = self->state;
  auto& holds = st.book->state().holds;
  auto h = holds.find(bet_key);
  if (h == holds.end())
    return; // decided already (a duplicate answer after a retry)
  crash_point("wallet.decision_received");
  auto request = h->second.request.value;
  st.backoff.erase(bet_key);
  std::vector<wallet_event> events;
  if (d.accepted)
    events.emplace_back(stake_committed{d.bet, d.at, d.place_fraction});
  else
    events.emplace_back(hold_released{d.bet, d.reason,
                                      d.current.hundredths != 0
                                        ? std::optional<price>{d.current}
                                        : std::nullopt});
  // A decision the market has not made durable yet: the commit or release
  // builds on its event, and fails (the wallet reloads and asks again) if
  // that event never reaches the journal.
  std::vector<event_position> after;
  if (d.recorded.seq != 0)
    after.push_back(d.recorded);
  conclude(self, bet_key, request, std::move(events), std::move(after));
}

void conclude(wallet_actor* self, const std::string& bet_key, const std::string& request,
              std::vector<wallet_event> events, std::vector<event_position> after) {
  persist(self, std::move(events),
          [request, bet_key](const wallet_state& s) {
            // apply() has just stored the answer a retry gets: the record
            // is that text, unless the request has left the wallet's ring.
            if (auto q = s.requests.find(request);
                q != s.requests.end() && !q->second.response.empty())
              return std::optional<request_record>{
                request_record{"answer/" + request, q->second.response}};
            return std::optional<request_record>{
              request_record{"answer/" + request, bet_response_json(s, bet_key, request)}};
          },
          [self, bet_key, request](const caf::error& err) {
            auto& st = self->state;
            // The market's event was lost (or this copy is stale): the bet
            // is still undecided, and a retry with the same id finds it.
            if (code_of(err) == errc::sequence_conflict)
              return fail_waiters(st, bet_key,
                                  make_error(errc::unavailable,
                                             "the bet is not decided yet; retry with the same "
                                             "request_id"));
            if (err)
              return fail_waiters(st, bet_key, err);
            crash_point("wallet.bet_durable");
            // An accepted bet is answered as it stands (what its stored
            // answer reads back as); a refusal from the stored answer.
            if (auto* b = st.book->state().find_bet(bet_key))
              answer_waiters(st, bet_key, *b);
            else
              answer_waiters(st, bet_key, bet_response_json(st.book->state(), bet_key, request));
            notify(self, st.book->state().find_bet(bet_key));
            send_releases(self, bet_key);
            maybe_finish_passivation(self);
          },
          std::move(after));
}

// -- slips -------------------------------------------------------------------

void ask_leg(wallet_actor* self, const std::string& bet_key, size_t leg, bool first);

// One leg's market decided. The first refusal ends the saga: the hold goes
// back, and every other leg's market (it may have taken its leg, or may yet)
// is told to forget it. The last acceptance commits the slip.
void on_leg_decision(wallet_actor* self, const std::string& bet_key, size_t leg,
                     const bet_decision& d) {
  auto& st = self->state;
  auto& holds = st.book->state().holds;
  auto h = holds.find(bet_key);
  if (h == holds.end())
    return;
  auto& hold = h->second;
  auto& votes = st.votes[bet_key];
  votes.resize(hold.legs.size());
  if (votes[leg])
    return;
  votes[leg] = d;
  crash_point("wallet.decision_received");
  auto request = hold.request.value;
  std::vector<event_position> after;
  if (!d.accepted) {
    std::vector<std::string> release;
    for (size_t i = 0; i < hold.legs.size(); ++i)
      if (!votes[i] || votes[i]->accepted)
        release.push_back(hold.legs[i].market.value);
    if (d.recorded.seq != 0)
      after.push_back(d.recorded);
    hold_released r{d.bet, d.reason,
                    d.current.hundredths != 0 ? std::optional<price>{d.current} : std::nullopt,
                    std::move(release)};
    st.votes.erase(bet_key);
    return conclude(self, bet_key, request, {r}, std::move(after));
  }
  if (std::any_of(votes.begin(), votes.end(), [](auto& v) { return !v.has_value(); }))
    return;
  // The lowest cap wins: the node's, and every leg's market's.
  stake_committed c{d.bet, votes[0]->at, votes[0]->place_fraction, {}, st.options.max_payout};
  for (auto& v : votes) {
    if (v->max_payout.minor > 0 && (c.max_payout.minor == 0 || v->max_payout < c.max_payout))
      c.max_payout = v->max_payout;
    c.legs.push_back({v->at, v->place_fraction});
    if (v->recorded.seq != 0)
      after.push_back(v->recorded);
  }
  st.votes.erase(bet_key);
  conclude(self, bet_key, request, {c}, std::move(after));
}

// The slip as asked, for the liability each leg's market counts: at the
// asked prices, and each-way at a place fraction of one (the market's own
// terms are not known yet; a whole one bounds them).
slip asked_slip(const stake_held& h) {
  slip out;
  out.type = h.type;
  out.stake = h.stake;
  out.each_way = h.each_way;
  for (auto& l : h.legs) {
    slip_leg leg;
    leg.taken = l.asked;
    if (h.each_way)
      leg.place_fraction = ratio{1, 1};
    out.legs.push_back(leg);
  }
  return out;
}

void ask_leg(wallet_actor* self, const std::string& bet_key, size_t leg, bool first) {
  auto& st = self->state;
  auto& holds = st.book->state().holds;
  auto h = holds.find(bet_key);
  if (h == holds.end())
    return;
  auto& hold = h->second;
  auto& votes = st.votes[bet_key];
  votes.resize(hold.legs.size());
  if (votes[leg])
    return;
  auto& l = hold.legs[leg];
  // No slip wins more than its cap, so no leg risks more.
  auto liability = leg_liability(asked_slip(hold), leg);
  if (st.options.max_payout.minor > 0)
    liability = std::min(liability, st.options.max_payout);
  accept_bet_cmd cmd{hold.bet,    st.user, l.selection,   hold.stake, l.asked,
                     hold.accept, first,   hold.each_way, true,       liability};
  st.dir.request(self, caf::duration{st.options.market_timeout}, entity_id{"market", l.market.value},
                 std::move(cmd))
    .then([self, bet_key, leg](bet_decision& d) { on_leg_decision(self, bet_key, leg, d); },
          [self, bet_key, leg](caf::error& err) {
            auto& st = self->state;
            if (code_of(err) == errc::not_found) {
              bet_decision no{bet_id{bet_key}, false, {}, errc::not_found, {}};
              return on_leg_decision(self, bet_key, leg, no);
            }
            auto& delay = st.backoff[bet_key + "#" + std::to_string(leg)];
            delay = delay.count() == 0 ? st.options.retry_min
                                       : std::min(delay * 2, st.options.retry_max);
            log().debug("wallet/{}: a leg's market did not answer for {} ({}), retry in {} ms",
                        st.user.value, bet_key, self->system().render(err), delay.count());
            self->delayed_send(self, delay, ask_leg_atom::value, bet_key,
                               static_cast<uint32_t>(leg));
          });
}

// Records that every market of a released slip forgot its leg, once they
// all said so. Its record tells a leg's result that may still come that
// nothing is owed.
void finish_release(wallet_actor* self, const std::string& bet_key) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto i = s.releasing.find(bet_key);
  if (i == s.releasing.end() || st.legs_released_writing.count(bet_key) > 0)
    return;
  auto& done = st.released[bet_key];
  for (auto& m : i->second)
    if (done.count(m) == 0)
      return;
  st.legs_released_writing.insert(bet_key);
  persist(self, {legs_released{bet_id{bet_key}}},
          [bet_key](const wallet_state&) {
            return std::optional<request_record>{request_record{"payout/" + bet_key, "{}"}};
          },
          [self, bet_key](const caf::error& err) {
            auto& st = self->state;
            st.legs_released_writing.erase(bet_key);
            if (err)
              return;
            st.released.erase(bet_key);
            maybe_finish_passivation(self);
          });
}

void send_releases(wallet_actor* self, const std::string& bet_key) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto i = s.releasing.find(bet_key);
  if (i == s.releasing.end())
    return;
  auto& done = st.released[bet_key];
  for (auto& m : i->second) {
    auto flight = bet_key + "/" + m;
    if (done.count(m) > 0 || st.releases_in_flight.count(flight) > 0)
      continue;
    st.releases_in_flight.insert(flight);
    auto on_done = [self, bet_key, m, flight] {
      crash_point("wallet.leg_release_acknowledged");
      auto& st = self->state;
      st.releases_in_flight.erase(flight);
      st.released[bet_key].insert(m);
      st.backoff.erase(flight);
      finish_release(self, bet_key);
    };
    st.dir
      .request(self, caf::duration{st.options.market_timeout}, entity_id{"market", m},
               release_leg_cmd{bet_id{bet_key}})
      .then([on_done](leg_release_ack&) { on_done(); },
            [self, bet_key, flight, on_done](caf::error& err) {
              auto& st = self->state;
              if (code_of(err) == errc::not_found)
                return on_done(); // no such market: nothing to forget
              st.releases_in_flight.erase(flight);
              auto& delay = st.backoff[flight];
              delay = delay.count() == 0 ? st.options.retry_min
                                         : std::min(delay * 2, st.options.retry_max);
              self->delayed_send(self, delay, release_atom::value, bet_key);
            });
  }
  finish_release(self, bet_key);
}

void ask_market(wallet_actor* self, const std::string& bet_key, bool first) {
  auto& st = self->state;
  auto& holds = st.book->state().holds;
  auto h = holds.find(bet_key);
  if (h == holds.end())
    return;
  auto& hold = h->second;
  if (hold.is_slip()) {
    for (size_t leg = 0; leg < hold.legs.size(); ++leg)
      ask_leg(self, bet_key, leg, first);
    return;
  }
  accept_bet_cmd cmd{hold.bet,   st.user,     hold.selection, hold.stake,
                     hold.asked, hold.accept, first,          hold.each_way};
  st.dir.request(self, caf::duration{st.options.market_timeout},
                 entity_id{"market", hold.market.value}, std::move(cmd))
    .then([self, bet_key](bet_decision& d) { decide(self, bet_key, d); },
          [self, bet_key](caf::error& err) {
            auto& st = self->state;
            if (code_of(err) == errc::not_found) {
              bet_decision no{bet_id{bet_key}, false, {}, errc::not_found, {}};
              return decide(self, bet_key, no);
            }
            // No answer is not a "no": keep the hold and ask again.
            auto& delay = st.backoff[bet_key];
            delay = delay.count() == 0 ? st.options.retry_min
                                       : std::min(delay * 2, st.options.retry_max);
            log().debug("wallet/{}: market did not answer for {} ({}), retry in {} ms",
                        st.user.value, bet_key, self->system().render(err), delay.count());
            self->delayed_send(self, delay, ask_market_atom::value, bet_key);
          });
}

void reload(wallet_actor* self, const caf::error& err) {
  auto& st = self->state;
  log().warn("wallet/{}: append failed ({}), reloading from the journal", st.user.value,
             self->system().render(err));
  // The failed append was another request's: these bets' outcome is not
  // known until the wallet has reloaded, and a retry with the same request
  // id gets it then.
  auto retry = make_error(errc::unavailable,
                          "the wallet is reloading from the journal; retry with the same "
                          "request_id");
  for (auto& [bet, promises] : st.waiters)
    for (auto& rp : promises)
      rp.deliver(retry);
  st.waiters.clear();
  st.rejections.clear();
  st.rejection_order.clear();
  st.votes.clear();
  st.releases_in_flight.clear();
  st.book->reload();
  st.reloading = true;
  begin_recovery(self);
  self->become(recovering(self));
  if (auto e = st.book->recover(self))
    self->quit(e);
}

void answer_from_journal(wallet_actor* self, const std::string& request,
                         std::vector<caf::response_promise> promises) {
  auto& st = self->state;
  auto token = st.next_lookup++;
  st.stored_lookups.emplace(token, std::move(promises));
  auto target = caf::actor{self};
  auto err = st.store->find_request_async(
    st.book->stream(), request,
    [target, token, request](caf::expected<std::optional<stored_request>> r) {
      std::string text;
      if (r && *r)
        text = (*r)->result;
      caf::anon_send(target, stored_atom::value, token, request, std::move(text));
    });
  if (err) {
    for (auto& rp : st.stored_lookups[token])
      rp.deliver(err);
    st.stored_lookups.erase(token);
  }
}

// A stored first answer arrived. A bet's first record only names the bet
// while its saga runs; its answer is stored under "answer/<request id>" (a '/' never appears in a client id).
void on_stored(wallet_actor* self, uint64_t token, const std::string& request,
               const std::string& text) {
  auto& st = self->state;
  auto i = st.stored_lookups.find(token);
  if (i == st.stored_lookups.end())
    return;
  auto promises = std::move(i->second);
  st.stored_lookups.erase(i);
  if (text.find("\"pending\":true") != std::string::npos
      && request.rfind("answer/", 0) != 0)
    return answer_from_journal(self, "answer/" + request, std::move(promises));
  auto answer = text.empty()
                  ? replayed_answer{{}, {}, make_error(errc::unavailable,
                                                        "the first answer is not stored yet")}
                  : replay_message(st.book->state(), {}, text);
  for (auto& rp : promises) {
    if (answer.bet_answer)
      rp.deliver(*answer.bet_answer);
    else if (answer.receipt)
      rp.deliver(*answer.receipt);
    else
      rp.deliver(answer.error);
  }
}

caf::behavior recovering(wallet_actor* self) {
  return {
    [self](recovered_atom, wallet_recovery& r) {
      auto& st = self->state;
      if (r->error) {
        log().error("wallet/{}: recovery failed: {}", st.user.value,
                    self->system().render(r->error));
        return self->quit(r->error);
      }
      st.book->recovered(std::move(r->state));
      st.reloading = false;
      end_recovery(self, running(self));
      // Sagas cut short by a crash resume here: ask the market again, and
      // tell the markets of released slips again to forget their legs.
      for (auto& [bet, hold] : st.book->state().holds)
        ask_market(self, bet);
      for (auto& [bet, markets] : st.book->state().releasing)
        send_releases(self, bet);
    },
    [self](persisted_atom, uint64_t token, caf::error& err) {
      self->state.book->on_persisted(self, token, err);
    },
  };
}

// A bet request seen before: its first answer, or a wait for it while its
// saga runs. nullopt for a request not seen.
std::optional<caf::result<caf::message>> known_bet_request(wallet_actor* self,
                                                           const std::string& request,
                                                           uint64_t hash) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto* known = known_request(st, request);
  if (known == nullptr)
    return std::nullopt;
  if (known->body_hash != hash)
    return caf::result<caf::message>{
      make_error(errc::request_id_reused, "request_id was used with another body")};
  if (!known->bet.empty() && s.holds.count(known->bet) > 0) {
    auto rp = self->make_response_promise();
    st.waiters[known->bet].push_back(rp);
    return caf::result<caf::message>{rp};
  }
  auto msg = replay_message(s, known->bet, known->response);
  if (msg.bet_answer)
    return caf::result<caf::message>{caf::make_message(*msg.bet_answer)};
  return caf::result<caf::message>{msg.error};
}

// The checks every bet passes before its stake is held: self-exclusion,
// the wallet's bound on undecided bets, the balance and the loss limits.
// nullopt when the stake may be held.
std::optional<caf::result<caf::message>> refuse_stake(wallet_actor* self,
                                                      const std::string& request,
                                                      uint64_t hash, money total) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto now = wall_ms(st);
  auto limits = in_force(s.limits, now);
  if (excluded(limits, now))
    return reject(self, request, hash, errc::self_excluded, exclusion_message(limits, now));
  if (s.holds.size() >= st.options.holds_max)
    return caf::result<caf::message>{
      make_error(errc::limit_exceeded, "too many bets awaiting a decision")};
  if (s.available < total)
    return reject(self, request, hash, errc::insufficient_funds,
                  "the stake is more than the available balance");
  if (auto r = stake_refusal(limits, s.activity, now, s.held.minor, total.minor))
    return reject(self, request, hash, r->code, r->message, r->field);
  return std::nullopt;
}

// Holds the stake and starts the saga; the answer comes when it ends.
caf::result<caf::message> hold_stake(wallet_actor* self, stake_held hold);

caf::result<caf::message> place_bet(wallet_actor* self, place_bet_cmd& cmd) {
  if (!valid_id(cmd.request.value))
    return make_error(errc::invalid_field, "request_id is 1-64 of [A-Za-z0-9_.:-]",
                      "request_id");
  auto hash = place_bet_hash(cmd);
  if (auto known = known_bet_request(self, cmd.request.value, hash))
    return std::move(*known);
  if (!valid_id(cmd.market.value) || !valid_id(cmd.selection.value))
    return make_error(errc::invalid_field, "ids are 1-64 of [A-Za-z0-9_.:-]", "market_id");
  if (!valid_amount(cmd.stake.minor))
    return make_error(errc::invalid_field, "stake must be 1 to 10^12 minor units", "stake");
  auto total = money{cmd.stake.minor * (cmd.each_way ? 2 : 1)};
  if (!valid_amount(total.minor))
    return make_error(errc::invalid_field, "an each-way bet's two stakes must be at most 10^12",
                      "stake");
  if (!valid_price(cmd.asked))
    return make_error(errc::invalid_field, "prices run from 1.01 to 1000.00", "price");
  if (auto no = refuse_stake(self, cmd.request.value, hash, total))
    return std::move(*no);
  return hold_stake(self, stake_held{cmd.request, new_bet_id(), cmd.market, cmd.selection,
                                     cmd.stake, cmd.asked, cmd.accept, hash, cmd.each_way});
}

caf::result<caf::message> place_slip(wallet_actor* self, place_slip_cmd& cmd) {
  if (cmd.type == slip_type::single && cmd.legs.size() == 1) {
    place_bet_cmd single{cmd.request,    cmd.legs[0].market, cmd.legs[0].selection,
                         cmd.stake,      cmd.legs[0].asked,  cmd.accept,
                         cmd.each_way};
    return place_bet(self, single);
  }
  if (!valid_id(cmd.request.value))
    return make_error(errc::invalid_field, "request_id is 1-64 of [A-Za-z0-9_.:-]",
                      "request_id");
  auto hash = place_slip_hash(cmd);
  if (auto known = known_bet_request(self, cmd.request.value, hash))
    return std::move(*known);
  slip asked;
  asked.type = cmd.type;
  asked.stake = cmd.stake;
  asked.each_way = cmd.each_way;
  std::set<std::string> markets;
  for (auto& l : cmd.legs) {
    if (!valid_id(l.market.value) || !valid_id(l.selection.value))
      return make_error(errc::invalid_field, "ids are 1-64 of [A-Za-z0-9_.:-]", "legs");
    if (!markets.insert(l.market.value).second)
      return make_error(errc::invalid_field, "each leg must be on a different market", "legs");
    slip_leg leg;
    leg.taken = l.asked;
    if (cmd.each_way)
      leg.place_fraction = ratio{1, 1};
    asked.legs.push_back(leg);
  }
  if (auto no = check_slip(asked))
    return make_error(errc::invalid_field, no->message, no->field);
  auto first = cmd.legs.front();
  stake_held hold{cmd.request, new_bet_id(), first.market, first.selection, cmd.stake,
                  first.asked, cmd.accept,   hash,         cmd.each_way,    cmd.type,
                  cmd.legs};
  if (auto no = refuse_stake(self, cmd.request.value, hash, hold.amount()))
    return std::move(*no);
  return hold_stake(self, std::move(hold));
}

caf::result<caf::message> hold_stake(wallet_actor* self, stake_held hold) {
  auto& st = self->state;
  auto id = hold.bet;
  auto hash = hold.body_hash;
  auto rp = self->make_response_promise();
  st.waiters[id.value].push_back(rp);
  st.dir.send_later(self->ctrl(), caf::duration{st.options.answer_timeout},
                    caf::make_message(answer_due_atom::value, id.value));
  auto request = hold.request.value;
  persist(self, {std::move(hold)},
          [request, id, hash](const wallet_state&) {
            return std::optional<request_record>{request_record{
              request, pending_bet_json(id.value, hash)}};
          },
          [self, key = id.value, request](const caf::error& err) {
            auto& st = self->state;
            if (code_of(err) == errc::request_id_reused) {
              auto i = st.waiters.find(key);
              if (i == st.waiters.end())
                return;
              auto promises = std::move(i->second);
              st.waiters.erase(i);
              return answer_from_journal(self, request, std::move(promises));
            }
            if (err)
              return fail_waiters(st, key, err);
            crash_point("wallet.hold_durable");
            notify(self, nullptr);
            ask_market(self, key, st.options.early_decisions);
          });
  return rp;
}

caf::result<caf::message> move_money(wallet_actor* self, const request_id& request,
                                     money amount, bool deposit) {
  auto& st = self->state;
  auto& s = st.book->state();
  if (!valid_id(request.value))
    return make_error(errc::invalid_field, "request_id is 1-64 of [A-Za-z0-9_.:-]",
                      "request_id");
  auto hash = body_hash({deposit ? "deposit" : "withdraw", std::to_string(amount.minor)});
  if (auto* known = known_request(st, request.value)) {
    auto expected = known->body_hash;
    if (expected != 0 && expected != hash)
      return make_error(errc::request_id_reused, "request_id was used with another body");
    auto msg = replay_message(s, {}, known->response);
    if (msg.receipt)
      return caf::make_message(*msg.receipt);
    return msg.error;
  }
  if (!valid_amount(amount.minor))
    return make_error(errc::invalid_field, "amount must be 1 to 10^12 minor units", "amount");
  if (deposit) {
    auto now = wall_ms(st);
    auto limits = in_force(s.limits, now);
    if (excluded(limits, now))
      return reject(self, request.value, hash, errc::self_excluded,
                    exclusion_message(limits, now));
    if (auto r = deposit_refusal(limits, s.activity, now, amount.minor))
      return reject(self, request.value, hash, r->code, r->message, r->field);
  } else if (s.available < amount) {
    return reject(self, request.value, hash, errc::insufficient_funds,
                  "the amount is more than the available balance");
  }
  wallet_event e = deposit ? wallet_event{deposited{request, amount, hash}}
                           : wallet_event{withdrawn{request, amount, hash}};
  // persist() applies the event now, so the answer is the state right after it.
  wallet_receipt receipt{"t" + std::to_string(s.seq + 1),
                         deposit ? s.available + amount : s.available - amount, s.held};
  auto rp = self->make_response_promise();
  persist(self, {e},
          [request](const wallet_state& after) {
            return std::optional<request_record>{
              request_record{request.value, transaction_response(after.seq, after)}};
          },
          [self, rp, receipt, id = request.value](const caf::error& err) mutable {
            if (code_of(err) == errc::request_id_reused)
              return answer_from_journal(self, id, {rp});
            if (err)
              return rp.deliver(err);
            rp.deliver(receipt);
            notify(self, nullptr);
          });
  return rp;
}

caf::result<caf::message> set_limits(wallet_actor* self, const set_limits_cmd& cmd) {
  auto& st = self->state;
  auto now = wall_ms(st);
  auto to_std = [](const caf::optional<int64_t>& v) {
    return v ? std::optional<int64_t>{*v} : std::nullopt;
  };
  limits_change change;
  for (size_t i = 0; i < 3; ++i) {
    change.deposit[i] = to_std(cmd.deposit[i]);
    change.loss[i] = to_std(cmd.loss[i]);
  }
  auto day = static_cast<size_t>(limit_period::day);
  if (cmd.daily_deposit_limit) {
    if (change.deposit[day] && *change.deposit[day] != *cmd.daily_deposit_limit)
      return make_error(errc::invalid_field,
                        "daily_deposit_limit and deposit_limits.day differ",
                        "daily_deposit_limit");
    change.deposit[day] = *cmd.daily_deposit_limit;
  }
  change.time_out_until_ms = to_std(cmd.time_out_until_ms);
  change.self_exclude_until_ms = to_std(cmd.self_exclude_until_ms);
  change.reality_check_minutes = to_std(cmd.reality_check_minutes);
  auto result = change_limits(st.book->state().limits, change, now);
  if (auto* r = std::get_if<limits_refusal>(&result))
    return make_error(r->code, r->message, r->field);
  // Written even when nothing changes: a change still in flight may fail,
  // and the answer must wait for what it confirms.
  auto next = std::get<gambling_limits>(std::move(result));
  auto rp = self->make_response_promise();
  persist(self, {limits_set{next}}, nullptr, [self, rp, next](const caf::error& err) mutable {
    if (err)
      return rp.deliver(err);
    rp.deliver(wallet_limits{next});
  });
  return rp;
}

// The record a single's payout (or its reversal) of settlement round
// `round` leaves in the journal, so a repeat is known once the bet has
// left the memory: "payout/<bet>" for round 1, "payout/<bet>/<round>"
// after.
std::string payout_record(const std::string& bet, uint32_t round) {
  return round <= 1 ? "payout/" + bet : "payout/" + bet + "/" + std::to_string(round);
}

// A payout or leg result for a bet no longer in memory: credited long ago
// (or a slip released), or never ours. The journal's record `key` knows.
caf::result<caf::message> ack_if_settled(wallet_actor* self, const bet_id& bet,
                                         const std::string& key) {
  auto& st = self->state;
  auto rp = self->make_response_promise();
  auto token = st.next_lookup++;
  st.lookups.emplace(token, rp);
  auto target = caf::actor{self};
  auto err = st.store->find_request_async(
    st.book->stream(), key,
    [target, token, bet](caf::expected<std::optional<stored_request>> r) {
      caf::anon_send(target, lookup_atom::value, token, bet, r && r->has_value());
    });
  if (err) {
    st.lookups.erase(token);
    rp.deliver(err);
  }
  return rp;
}

// The bet `key` as the wallet holds it, open or settled; nullptr when it
// has left the memory.
const bet* held_bet(const wallet_state& s, const std::string& key) {
  if (auto i = s.open_bets.find(key); i != s.open_bets.end())
    return &i->second;
  return s.find_bet(key);
}

// Writes `events` (a settlement, or a resettlement: the reversal of what the
// bet was paid, then its new payout; first the bet itself when it came back
// from the history) and acknowledges the market through `rp`.
void settle_events(wallet_actor* self, const bet_id& bet, std::vector<wallet_event> events,
                   std::string record, caf::response_promise rp) {
  journaled<wallet_traits>::record_fn keep;
  if (!record.empty())
    keep = [record](const wallet_state&) {
      return std::optional<request_record>{request_record{record, "{}"}};
    };
  bool reversal = std::any_of(events.begin(), events.end(), [](const wallet_event& e) {
    return std::holds_alternative<payout_reversed>(e);
  });
  persist(self, std::move(events), std::move(keep),
          [self, rp, bet, record, reversal](const caf::error& err) mutable {
            if (err)
              return rp.deliver(err);
            if (reversal)
              crash_point("wallet.reversal_durable");
            if (!record.empty())
              crash_point("wallet.payout_durable");
            rp.deliver(payout_ack{bet});
            notify(self, self->state.book->state().find_bet(bet.value));
            maybe_finish_passivation(self);
          });
}

// Starts `events` with the bet brought back from the history, if it was.
std::vector<wallet_event> restoring(const std::optional<bet>& restored,
                                    std::vector<wallet_event> events) {
  if (restored && !events.empty())
    events.insert(events.begin(), bet_restored{*restored});
  return events;
}

// What a settled bet's result paid (not its cash-outs): what a reversal
// takes back.
money result_paid(const bet& b) {
  return b.status == bet_status::cashed_out ? money{} : b.payout;
}

// A leg's result (or its reversal) on slip `b`, held in memory or
// `restored` from the history.
void apply_leg_result(wallet_actor* self, const leg_result_cmd& cmd, const bet& b,
                      const std::optional<bet>& restored, caf::response_promise rp) {
  auto key = cmd.bet.value;
  auto leg = std::find_if(b.legs.begin(), b.legs.end(),
                          [&](const bet_leg& l) { return l.market == cmd.market; });
  if (leg == b.legs.end())
    return rp.deliver(make_error(errc::not_found, "the slip has no leg on that market"));
  // A round the leg has had is a repeat; a result recorded before rounds
  // were kept is too, unless the market has rolled it back since.
  if (cmd.round <= leg->round || (leg->round == 0 && leg->result != leg_result::open
                                  && cmd.result == leg->result && cmd.dead_heat == leg->dead_heat
                                  && cmd.rule4 == leg->rule4))
    return rp.deliver(payout_ack{cmd.bet});
  if (cmd.dead_heat.n < 1 || cmd.dead_heat.n > cmd.dead_heat.d || cmd.rule4 < 0
      || cmd.rule4 > rule4_max)
    return rp.deliver(make_error(errc::invalid_field, "not a leg's result", "result"));
  if (b.status == bet_status::cashed_out)
    return rp.deliver(payout_ack{cmd.bet}); // cashed out in full: nothing rides on it
  auto index = static_cast<uint32_t>(leg - b.legs.begin());
  auto after = b;
  auto& changed = after.legs[index];
  changed.result = cmd.result;
  changed.dead_heat = cmd.dead_heat;
  changed.rule4 = cmd.rule4;
  changed.round = cmd.round;
  bool was_settled = b.status != bet_status::open;
  bool now_settled = settled(as_slip(after));
  std::vector<wallet_event> events;
  auto paid = now_settled ? settle_slip(after) : slip_settlement{};
  bool reverse =
    was_settled && (!now_settled || paid.outcome != b.status || paid.amount != b.payout);
  // The leg's new result changes what the slip pays: take back what it was
  // paid, then pay it again if it is still settled.
  if (reverse)
    events.emplace_back(payout_reversed{cmd.bet, result_paid(b), cmd.round});
  events.emplace_back(
    leg_settled{cmd.bet, index, cmd.result, cmd.dead_heat, cmd.rule4, cmd.round});
  bool pay = now_settled && (!was_settled || reverse);
  if (pay)
    events.emplace_back(payout_credited{cmd.bet, paid.outcome, paid.amount, cmd.round});
  // A slip never reversed leaves "payout/<bet>" when it settles (legs of a
  // slip out of memory look for it); after a reversal, one record per leg
  // and round.
  std::string record;
  if (reverse || (pay && b.round != 0))
    record = "payout/" + key + "@" + cmd.market.value + "/" + std::to_string(cmd.round);
  else if (pay)
    record = "payout/" + key;
  settle_events(self, cmd.bet, restoring(restored, std::move(events)), std::move(record),
                std::move(rp));
}

// A settled bet no longer in memory, as the history read model keeps it,
// for `cmd` (a leg_result_cmd or a credit_payout_cmd): applied when it
// comes. Without a history the market's outbox keeps asking.
void restore_into(wallet_actor* self, const bet_id& bet, caf::message cmd,
                  caf::response_promise rp) {
  auto& st = self->state;
  if (st.options.history == nullptr)
    return rp.deliver(make_error(errc::unavailable, "bet " + bet.value
                                                      + " has left the wallet's memory and "
                                                        "there is no history to read it"));
  auto token = st.next_lookup++;
  st.restores.emplace(token, wallet_actor_state::restore_pending{std::move(cmd), rp});
  auto target = caf::actor{self};
  st.options.history->bet(st.user, bet, [target, token](caf::expected<wager::bet> b) {
    if (b)
      caf::anon_send(target, restored_atom::value, token, true, std::move(*b), false);
    else
      caf::anon_send(target, restored_atom::value, token, false, wager::bet{},
                     code_of(b.error()) == errc::not_found);
  });
}

caf::result<caf::message> restore_then(wallet_actor* self, const bet_id& bet, caf::message cmd) {
  auto rp = self->make_response_promise();
  restore_into(self, bet, std::move(cmd), rp);
  return rp;
}

caf::result<caf::message> leg_result(wallet_actor* self, leg_result_cmd& cmd) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto key = cmd.bet.value;
  if (s.holds.count(key) > 0)
    return make_error(errc::unavailable, "the slip is not committed yet");
  if (s.releasing.count(key) > 0)
    return caf::make_message(payout_ack{cmd.bet}); // released: nothing is owed
  auto* held = held_bet(s, key);
  if (held == nullptr) {
    // A first result for a slip long settled (a lost accumulator's other
    // legs) changes nothing; a resettlement does, on the slip as the
    // history kept it.
    if (cmd.resettled)
      return restore_then(self, cmd.bet, caf::make_message(cmd));
    return ack_if_settled(self, cmd.bet, "payout/" + key);
  }
  auto rp = self->make_response_promise();
  apply_leg_result(self, cmd, *held, std::nullopt, rp);
  return rp;
}

// -- cash-out ------------------------------------------------------------------

inline constexpr size_t quotes_max = 256;

// The legs of a bet still waiting for a result, as (index, market,
// selection); a single's one leg is its market and selection.
struct open_leg {
  size_t index = 0;
  market_id market;
  selection_id selection;
};

std::vector<open_leg> open_legs(const bet& b) {
  std::vector<open_leg> out;
  if (!b.is_slip()) {
    out.push_back({0, b.market, b.selection});
    return out;
  }
  for (size_t i = 0; i < b.legs.size(); ++i)
    if (b.legs[i].result == leg_result::open)
      out.push_back({i, b.legs[i].market, b.legs[i].selection});
  return out;
}

// What the markets of a bet's open legs say now: each leg's current price,
// and the longest in-play delay among them; cashout_unavailable when one is
// not open or its runner is gone.
struct leg_prices {
  std::vector<price> prices; // by leg index; 0 where the leg has a result
  int64_t delay_ms = 0;
};

using prices_callback = std::function<void(caf::expected<leg_prices>)>;

// Reads the markets of `b`'s open legs (market_query), then calls `done`
// in the wallet.
void read_prices(wallet_actor* self, const bet& b, prices_callback done) {
  auto legs = open_legs(b);
  struct gather {
    leg_prices out;
    size_t left = 0;
    caf::error failed;
    prices_callback done;
  };
  auto g = std::make_shared<gather>();
  g->out.prices.assign(b.is_slip() ? b.legs.size() : 1, price{});
  g->left = legs.size();
  g->done = std::move(done);
  auto& st = self->state;
  for (auto& leg : legs) {
    auto finish = [g] {
      if (--g->left > 0)
        return;
      if (g->failed)
        g->done(g->failed);
      else
        g->done(std::move(g->out));
    };
    st.dir
      .request(self, caf::duration{st.options.market_timeout},
               entity_id{"market", leg.market.value}, market_query{})
      .then(
        [g, leg, finish](market_view& v) {
          bool withdrawn = std::find(v.withdrawn.begin(), v.withdrawn.end(),
                                     leg.selection.value) != v.withdrawn.end();
          auto sel = std::find_if(v.definition.selections.begin(), v.definition.selections.end(),
                                  [&](const selection& s) { return s.id == leg.selection; });
          if (v.status != market_status::open || withdrawn || sel == v.definition.selections.end()) {
            if (!g->failed)
              g->failed = make_error(errc::cashout_unavailable,
                                     "market " + leg.market.value + " is not open for cash-out");
          } else {
            g->out.prices[leg.index] = sel->current;
            g->out.delay_ms = std::max(g->out.delay_ms, v.definition.in_play_delay_ms);
          }
          finish();
        },
        [g, finish](caf::error& err) {
          if (!g->failed)
            g->failed = code_of(err) == errc::not_found
                          ? make_error(errc::cashout_unavailable, "a leg's market is gone")
                          : make_error(errc::unavailable, "a leg's market did not answer; retry");
          finish();
        });
  }
  if (legs.empty())
    g->done(make_error(errc::cashout_unavailable, "no leg of the bet is still running"));
}

// The open bet's cash-out worth of `stake` at `prices`.
money cashout_worth(const wallet_actor_state& st, const bet& b, money stake,
                    const std::vector<price>& prices) {
  auto s = as_slip(b);
  s.stake = stake;
  return cashout_value(s, prices, st.options.margin);
}

caf::result<caf::message> quote_cashout(wallet_actor* self, const cashout_quote_query& q) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto i = s.open_bets.find(q.bet.value);
  if (i == s.open_bets.end()) {
    if (s.find_bet(q.bet.value) != nullptr || s.holds.count(q.bet.value) > 0)
      return make_error(errc::cashout_unavailable, "the bet is not running");
    return make_error(errc::not_found, "no such bet");
  }
  auto rp = self->make_response_promise();
  read_prices(self, i->second, [self, rp, bet = q.bet](caf::expected<leg_prices> r) mutable {
    auto& st = self->state;
    if (!r)
      return rp.deliver(r.error());
    auto& s = st.book->state();
    auto b = s.open_bets.find(bet.value);
    if (b == s.open_bets.end())
      return rp.deliver(make_error(errc::cashout_unavailable, "the bet is not running"));
    auto amount = cashout_worth(st, b->second, b->second.stake, r->prices);
    if (amount.minor == 0)
      return rp.deliver(make_error(errc::cashout_unavailable, "the bet can no longer pay"));
    auto now = wall_ms(st);
    auto life = r->delay_ms > 0 ? st.options.quote_life_in_play : st.options.quote_life;
    for (auto q = st.quotes.begin(); q != st.quotes.end();)
      q = q->second.expires_ms <= now ? st.quotes.erase(q) : std::next(q);
    if (st.quotes.size() >= quotes_max)
      st.quotes.erase(st.quotes.begin());
    auto id = random_id("q-");
    st.quotes[id] = {bet.value, r->prices, now + life.count(), r->delay_ms};
    rp.deliver(cashout_quote{bet, amount, id, now + life.count()});
  });
  return rp;
}

void answer_cashout(wallet_actor_state& st, const std::string& key, const caf::message& answer) {
  auto i = st.cashouts.find(key);
  if (i == st.cashouts.end())
    return;
  for (auto& rp : i->second.waiters)
    rp.deliver(answer);
  st.cashouts.erase(i);
}

// Records a cash-out and answers whoever waits for it with the bet.
void record_cashout(wallet_actor* self, cashed_out c, caf::response_promise* ack) {
  auto key = cashout_key(c.bet.value, c.request.value);
  auto request = c.request.value;
  std::optional<caf::response_promise> acked;
  if (ack != nullptr)
    acked = *ack;
  persist(self, {c},
          [request, c](const wallet_state& s) -> std::optional<request_record> {
            // The answer a retry gets: the bet as the cash-out left it; for
            // a bet no longer in memory (settled long before its credit
            // came), what the cash-out paid.
            auto q = s.requests.find(request);
            if (q == s.requests.end() || q->second.response.empty())
              return request_record{
                request, error_json(errc::cashout_unavailable,
                                    "the bet settled before this cash-out of "
                                      + std::to_string(c.amount.minor) + " was credited",
                                    {})};
            return request_record{request, q->second.response};
          },
          [self, key, bet = c.bet, acked](const caf::error& err) mutable {
            auto& st = self->state;
            if (err) {
              if (acked)
                acked->deliver(err);
              return answer_cashout(st, key, caf::make_message(err));
            }
            crash_point("wallet.cashout_durable");
            if (acked)
              acked->deliver(payout_ack{bet});
            auto* b = st.book->state().find_bet(bet.value);
            if (b != nullptr)
              answer_cashout(st, key, caf::make_message(*b));
            else
              answer_cashout(st, key,
                             caf::make_message(make_error(errc::internal, "the bet is gone")));
            notify(self, b);
            maybe_finish_passivation(self);
          });
}

// A slip's cash-out, after its markets' in-play delay: the prices read
// again must be the quote's.
void cash_out_slip(wallet_actor* self, const std::string& key) {
  auto& st = self->state;
  auto i = st.cashouts.find(key);
  if (i == st.cashouts.end())
    return;
  auto& s = st.book->state();
  auto b = s.open_bets.find(i->second.cmd.bet.value);
  if (b == s.open_bets.end())
    return answer_cashout(st, key,
                          caf::make_message(make_error(errc::cashout_unavailable,
                                                       "the bet is not running")));
  read_prices(self, b->second, [self, key](caf::expected<leg_prices> r) {
    auto& st = self->state;
    auto i = st.cashouts.find(key);
    if (i == st.cashouts.end())
      return;
    if (!r)
      return answer_cashout(st, key, caf::make_message(r.error()));
    auto& w = i->second;
    auto& s = st.book->state();
    auto b = s.open_bets.find(w.cmd.bet.value);
    if (b == s.open_bets.end() || w.stake > b->second.stake)
      return answer_cashout(st, key,
                            caf::make_message(make_error(errc::cashout_unavailable,
                                                         "the bet is not running")));
    for (size_t k = 0; k < r->prices.size(); ++k)
      if (r->prices[k].hundredths != 0 && r->prices[k] != w.quote.prices[k])
        return answer_cashout(
          st, key,
          caf::make_message(make_error(errc::price_changed,
                                       "a price moved since the quote; ask for a new one")));
    auto amount = cashout_worth(st, b->second, w.stake, w.quote.prices);
    if (amount.minor == 0)
      return answer_cashout(st, key,
                            caf::make_message(make_error(errc::cashout_unavailable,
                                                         "the bet can no longer pay")));
    record_cashout(self, cashed_out{w.cmd.bet, w.cmd.request, w.stake, amount, w.hash}, nullptr);
  });
}

caf::result<caf::message> cash_out(wallet_actor* self, cashout_cmd& cmd) {
  auto& st = self->state;
  auto& s = st.book->state();
  if (!valid_id(cmd.request.value))
    return make_error(errc::invalid_field, "request_id is 1-64 of [A-Za-z0-9_.:-]",
                      "request_id");
  auto hash = body_hash({"cashout", cmd.bet.value, cmd.quote_id, std::to_string(cmd.fraction_bp)});
  if (auto* known = known_request(st, cmd.request.value)) {
    if (known->body_hash != 0 && known->body_hash != hash)
      return make_error(errc::request_id_reused, "request_id was used with another body");
    auto msg = replay_message(s, known->bet, known->response);
    if (msg.bet_answer)
      return caf::make_message(*msg.bet_answer);
    return msg.error;
  }
  auto key = cashout_key(cmd.bet.value, cmd.request.value);
  if (auto i = st.cashouts.find(key); i != st.cashouts.end()) {
    auto rp = self->make_response_promise();
    i->second.waiters.push_back(rp);
    return rp;
  }
  if (cmd.fraction_bp < 1 || cmd.fraction_bp > 10'000)
    return make_error(errc::invalid_field, "fraction is in (0, 1]", "fraction");
  auto b = s.open_bets.find(cmd.bet.value);
  if (b == s.open_bets.end()) {
    if (s.find_bet(cmd.bet.value) != nullptr || s.holds.count(cmd.bet.value) > 0)
      return make_error(errc::cashout_unavailable, "the bet is not running");
    return make_error(errc::not_found, "no such bet");
  }
  auto q = st.quotes.find(cmd.quote_id);
  if (q == st.quotes.end() || q->second.bet != cmd.bet.value
      || q->second.expires_ms <= wall_ms(st))
    return make_error(errc::price_changed, "the quote has expired; ask for a new one");
  auto& bet = b->second;
  auto stake = cmd.fraction_bp == 10'000
                 ? bet.stake
                 : money{bet.stake.minor * cmd.fraction_bp / 10'000};
  if (stake.minor == 0)
    return make_error(errc::invalid_field, "fraction leaves no stake to cash out", "fraction");
  auto rp = self->make_response_promise();
  st.cashouts[key] = {{rp}, cmd, hash, stake, q->second};
  st.dir.send_later(self->ctrl(), caf::duration{st.options.answer_timeout},
                    caf::make_message(cashout_due_atom::value, key));
  if (bet.is_slip()) {
    // The slip's wallet settles it: it waits out the in-play delay, reads
    // the prices again, and records the cash-out itself.
    auto delay = std::chrono::milliseconds{q->second.delay_ms};
    if (delay.count() > 0)
      self->delayed_send(self, delay, slip_cashout_atom::value, key);
    else
      cash_out_slip(self, key);
    return rp;
  }
  // A single's market decides and pays it: the answer comes with its credit.
  cashout_bet_cmd ask{cmd.bet, cmd.request, stake, q->second.prices.at(0), st.options.margin};
  st.dir.request(self, caf::duration{st.options.market_timeout},
                 entity_id{"market", bet.market.value}, std::move(ask))
    .then(
      [self, key](cashout_decision& d) {
        auto& st = self->state;
        if (d.accepted) {
          // Its credit answers; one taken before (a retry) answers now.
          if (st.book->state().cashouts.count(key) > 0) {
            auto bet_key = st.cashouts.count(key) > 0 ? st.cashouts[key].cmd.bet.value : "";
            if (auto* b = st.book->state().find_bet(bet_key))
              answer_cashout(st, key, caf::make_message(*b));
          }
          return;
        }
        auto err = d.reason == errc::price_changed
                     ? make_error(errc::price_changed,
                                  "the price moved since the quote; ask for a new one",
                                  format_price(d.current))
                     : make_error(d.reason, d.reason == errc::cashout_unavailable
                                              ? "the market is not open for cash-out"
                                              : "the market refused the cash-out");
        answer_cashout(self->state, key, caf::make_message(err));
      },
      [self, key](caf::error& err) {
        answer_cashout(self->state, key,
                       caf::make_message(make_error(
                         errc::unavailable, "the market did not answer; retry with the same "
                                            "request_id (" + self->system().render(err) + ")")));
      });
  return rp;
}

caf::result<caf::message> credit_cashout(wallet_actor* self, credit_cashout_cmd& cmd) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto key = cashout_key(cmd.bet.value, cmd.request.value);
  if (s.cashouts.count(key) > 0)
    return caf::make_message(payout_ack{cmd.bet}); // credited before
  if (s.open_bets.count(cmd.bet.value) == 0) {
    // Settled: the journal has the request's record if the credit was
    // taken (the memory may not: a bet restored from the history comes
    // back without its cash-outs); a credit never taken is taken now.
    auto rp = self->make_response_promise();
    auto target = caf::actor{self};
    auto err = st.store->find_request_async(
      st.book->stream(), cmd.request.value,
      [target, cmd](caf::expected<std::optional<stored_request>> r) {
        caf::anon_send(target, cashout_lookup_atom::value, cmd, static_cast<bool>(r),
                       r && r->has_value());
      });
    if (err)
      return err;
    st.cashout_credits[key] = rp;
    return rp;
  }
  uint64_t hash = 0;
  if (auto w = st.cashouts.find(key); w != st.cashouts.end())
    hash = w->second.hash;
  auto rp = self->make_response_promise();
  record_cashout(self, cashed_out{cmd.bet, cmd.request, cmd.stake, cmd.amount, hash}, &rp);
  return rp;
}

// A single's payout (or its reversal) for `b`, held in memory or
// `restored` from the history.
void apply_payout(wallet_actor* self, const credit_payout_cmd& cmd, const bet& b,
                  const std::optional<bet>& restored, caf::response_promise rp) {
  auto key = cmd.bet.value;
  bool open = b.status == bet_status::open;
  // A round the bet has had is a repeat (a payout recorded before rounds
  // were kept has round 0: the market's first round is 1 or more).
  if (cmd.round <= b.round && !(b.round == 0 && open))
    return rp.deliver(payout_ack{cmd.bet});
  if (!open && b.round == 0 && cmd.outcome == b.status && cmd.amount == b.payout)
    return rp.deliver(payout_ack{cmd.bet}); // paid before rounds were kept
  if (b.status == bet_status::cashed_out)
    return rp.deliver(payout_ack{cmd.bet}); // cashed out in full: nothing rides on it
  std::vector<wallet_event> events;
  if (!open || cmd.outcome == bet_status::open)
    events.emplace_back(payout_reversed{cmd.bet, open ? money{} : result_paid(b), cmd.round});
  if (cmd.outcome != bet_status::open)
    events.emplace_back(
      payout_credited{cmd.bet, cmd.outcome, cmd.amount, cmd.round, cmd.result});
  settle_events(self, cmd.bet, restoring(restored, std::move(events)),
                payout_record(key, cmd.round), std::move(rp));
}

caf::result<caf::message> credit_payout(wallet_actor* self, credit_payout_cmd& cmd) {
  auto& st = self->state;
  auto& s = st.book->state();
  auto key = cmd.bet.value;
  if (s.holds.count(key) > 0)
    return make_error(errc::unavailable, "the bet is not committed yet");
  auto* held = held_bet(s, key);
  if (held == nullptr) {
    // Long settled and out of memory: a repeat if its record is there,
    // else a resettlement, applied to the bet as the history kept it.
    auto rp = self->make_response_promise();
    auto token = st.next_lookup++;
    st.payout_lookups.emplace(token, std::pair{cmd, rp});
    auto target = caf::actor{self};
    auto err = st.store->find_request_async(
      st.book->stream(), payout_record(key, cmd.round),
      [target, token](caf::expected<std::optional<stored_request>> r) {
        caf::anon_send(target, payout_lookup_atom::value, token, static_cast<bool>(r),
                       r && r->has_value());
      });
    if (err) {
      st.payout_lookups.erase(token);
      rp.deliver(err);
    }
    return rp;
  }
  auto rp = self->make_response_promise();
  apply_payout(self, cmd, *held, std::nullopt, rp);
  return rp;
}

caf::behavior running(wallet_actor* self) {
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& w = self->state.watchers;
    w.erase(std::remove_if(w.begin(), w.end(),
                           [&](const caf::actor& a) { return a.address() == dm.source; }),
            w.end());
  });
  return {
    [self](deposit_cmd& cmd) { return move_money(self, cmd.request, cmd.amount, true); },
    [self](withdraw_cmd& cmd) { return move_money(self, cmd.request, cmd.amount, false); },
    [self](place_bet_cmd& cmd) { return place_bet(self, cmd); },
    [self](place_slip_cmd& cmd) { return place_slip(self, cmd); },
    [self](leg_result_cmd& cmd) { return leg_result(self, cmd); },
    [self](credit_payout_cmd& cmd) { return credit_payout(self, cmd); },
    [self](cashout_quote_query& q) { return quote_cashout(self, q); },
    [self](cashout_cmd& cmd) { return cash_out(self, cmd); },
    [self](credit_cashout_cmd& cmd) { return credit_cashout(self, cmd); },
    [self](slip_cashout_atom, std::string& key) { cash_out_slip(self, key); },
    [self](cashout_due_atom, std::string& key) {
      // The cash-out goes on; the client retries with the same request id.
      answer_cashout(self->state, key,
                     caf::make_message(make_error(errc::unavailable,
                                                  "the cash-out is not decided yet; retry with "
                                                  "the same request_id")));
    },
    [self](cashout_lookup_atom, credit_cashout_cmd& cmd, bool read, bool taken) {
      auto& st = self->state;
      auto key = cashout_key(cmd.bet.value, cmd.request.value);
      auto i = st.cashout_credits.find(key);
      if (i == st.cashout_credits.end())
        return;
      auto rp = i->second;
      st.cashout_credits.erase(i);
      if (!read)
        return rp.deliver(make_error(errc::unavailable, "the journal could not be read"));
      if (taken)
        return rp.deliver(payout_ack{cmd.bet});
      record_cashout(self, cashed_out{cmd.bet, cmd.request, cmd.stake, cmd.amount, 0}, &rp);
    },
    [self](set_limits_cmd& cmd) { return set_limits(self, cmd); },
    [self](const reality_check_query& q) {
      auto& st = self->state;
      auto& s = st.book->state();
      auto t = activity_since(s.activity, q.since_ms);
      return reality_check_answer{in_force(s.limits, wall_ms(st)).reality_check_minutes,
                                  money{t.staked}, money{t.returned}};
    },
    [self](limits_query) {
      auto& st = self->state;
      return wallet_limits{in_force(st.book->state().limits, wall_ms(st))};
    },
    [self](watch_cmd& cmd) {
      auto& st = self->state;
      if (std::find(st.watchers.begin(), st.watchers.end(), cmd.watcher) == st.watchers.end()) {
        self->monitor(cmd.watcher);
        st.watchers.push_back(cmd.watcher);
      }
      auto& s = st.book->state();
      return wallet_balance{s.available, s.held};
    },
    [self](unwatch_cmd& cmd) {
      auto& w = self->state.watchers;
      w.erase(std::remove(w.begin(), w.end(), cmd.watcher), w.end());
      self->demonitor(cmd.watcher);
    },
    [self](balance_query) {
      auto& s = self->state.book->state();
      return wallet_balance{s.available, s.held};
    },
    [self](transactions_query& q) { return transactions_of(self->state.book->state(), q); },
    [self](bet_query& q) -> caf::result<bet> {
      if (auto* b = self->state.book->state().find_bet(q.bet.value))
        return *b;
      return make_error(errc::not_found, "no such bet");
    },
    [self](bets_query& q) { return bets_of(self->state.book->state(), q.settled); },
    [self](persisted_atom, uint64_t token, caf::error& err) {
      if (!self->state.book->on_persisted(self, token, err))
        reload(self, err);
    },
    [self](ask_market_atom, std::string& bet) { ask_market(self, bet); },
    [self](ask_leg_atom, std::string& bet, uint32_t leg) { ask_leg(self, bet, leg, false); },
    [self](release_atom, std::string& bet) { send_releases(self, bet); },
    [self](answer_due_atom, std::string& bet) {
      // The saga goes on; the bettor retries with the same request id.
      fail_waiters(self->state, bet,
                   make_error(errc::unavailable, "the market has not answered yet"));
    },
    [self](stored_atom, uint64_t token, std::string& request, std::string& text) {
      on_stored(self, token, request, text);
    },
    [self](payout_lookup_atom, uint64_t token, bool read, bool found) {
      auto& st = self->state;
      auto i = st.payout_lookups.find(token);
      if (i == st.payout_lookups.end())
        return;
      auto [cmd, rp] = std::move(i->second);
      st.payout_lookups.erase(i);
      if (!read)
        return rp.deliver(make_error(errc::unavailable, "the journal could not be read"));
      if (found)
        return rp.deliver(payout_ack{cmd.bet}); // applied before
      if (auto* held = held_bet(st.book->state(), cmd.bet.value))
        return apply_payout(self, cmd, *held, std::nullopt, rp);
      restore_into(self, cmd.bet, caf::make_message(cmd), rp);
    },
    [self](restored_atom, uint64_t token, bool ok, bet& b, bool missing) {
      auto& st = self->state;
      auto i = st.restores.find(token);
      if (i == st.restores.end())
        return;
      auto pending = std::move(i->second);
      st.restores.erase(i);
      auto& rp = pending.rp;
      if (!ok)
        return rp.deliver(make_error(missing ? errc::not_found : errc::unavailable,
                                     "the bet could not be read from the history"));
      // Restored meanwhile by another message: the memory has it now.
      std::optional<bet> restored;
      auto* held = held_bet(st.book->state(), b.id.value);
      if (held == nullptr) {
        if (b.status == bet_status::open)
          return rp.deliver(make_error(errc::internal, "the history has bet " + b.id.value
                                                         + " open, the wallet has it settled"));
        restored = b;
        held = &*restored;
      }
      if (pending.cmd.match_element<credit_payout_cmd>(0))
        return apply_payout(self, pending.cmd.get_as<credit_payout_cmd>(0), *held, restored, rp);
      apply_leg_result(self, pending.cmd.get_as<leg_result_cmd>(0), *held, restored, rp);
    },
    [self](lookup_atom, uint64_t token, bet_id& bet, bool found) {
      auto& lookups = self->state.lookups;
      auto i = lookups.find(token);
      if (i == lookups.end())
        return;
      if (found)
        i->second.deliver(payout_ack{bet});
      else
        i->second.deliver(make_error(errc::not_found, "no such bet in this wallet"));
      lookups.erase(i);
    },
    [self](passivate_atom) {
      self->state.passivating = true;
      maybe_finish_passivation(self);
    },
  };
}

} // namespace

uint64_t body_hash(std::initializer_list<std::string_view> parts) {
  uint64_t h = 1469598103934665603ull;
  for (auto part : parts) {
    for (unsigned char c : part) {
      h ^= c;
      h *= 1099511628211ull;
    }
    h ^= 0xff; // separator: ("ab","c") differs from ("a","bc")
    h *= 1099511628211ull;
  }
  return h;
}

activate_fn wallet_activator(std::shared_ptr<journal> j, wallet_options options) {
  auto fill = [j, options](wallet_actor_state& st, const std::string& key, const directory& dir) {
    st.store = j;
    st.options = options;
    st.dir = dir;
    st.user = user_id{key};
  };
  return journaled_activator<wallet_traits, wallet_actor>(j, "wallet", options.snapshot_every,
                                                          fill, recovering, options.clock_ms);
}

} // namespace wager
