// Wallet and bets: the routes that move money. Each request goes through
// the user's session entity to the wallet (carry, api_session.cpp). Each
// one's request_id goes to the wallet, which answers a repeat with its first
// answer, so a replay over HTTP gets the same status and body.

#include "wager/gateway/api_internal.hpp"

#include "wager/actors/wallet_state.hpp"

#include <caf/make_message.hpp>

#include <algorithm>
#include <cmath>
#include <iterator>

namespace wager {

using namespace api;

namespace {

json::object receipt_json(const wallet_receipt& r) {
  return {{"transaction_id", r.transaction_id},
          {"available", r.available.minor},
          {"held", r.held.minor}};
}

// "t42" (a transaction_id) or "42" -> 42.
std::optional<uint64_t> parse_before(std::string_view text) {
  if (!text.empty() && text.front() == 't')
    text.remove_prefix(1);
  if (text.empty() || text.size() > 19)
    return std::nullopt;
  uint64_t v = 0;
  for (char c : text) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v == 0 ? std::nullopt : std::optional<uint64_t>{v};
}

} // namespace

void client_api::impl::get_wallet(const call_ptr& c) {
  authenticated(c, [this, c] {
    if (!parse_query(c, {}))
      return;
    carry<wallet_balance>(c, caf::make_message(balance_query{}),
                 [c, currency = options.currency](caf::expected<wallet_balance> b) {
                   if (!b)
                     return c->respond(error_response(b.error()));
                   c->respond(json_response(200, json::object{{"currency", currency},
                                                              {"available", b->available.minor},
                                                              {"held", b->held.minor}}));
                 });
  });
}

void client_api::impl::move_money(const call_ptr& c, bool deposit) {
  authenticated(c, [this, c, deposit] {
    auto body = parse_body(c);
    if (!body)
      return;
    fields f{*body};
    f.allow({"request_id", "amount"});
    auto request = f.id("request_id");
    auto amount = f.amount("amount");
    if (!f.ok())
      return c->respond(f.error());
    auto done = [c](caf::expected<wallet_receipt> r) {
      if (!r)
        return c->respond(error_response(r.error()));
      c->respond(json_response(201, receipt_json(*r)));
    };
    if (deposit)
      carry<wallet_receipt>(c, caf::make_message(deposit_cmd{request_id{*request}, money{*amount}}),
                            done);
    else
      carry<wallet_receipt>(c, caf::make_message(withdraw_cmd{request_id{*request}, money{*amount}}),
                            done);
  });
}

void client_api::impl::get_transactions(const call_ptr& c) {
  authenticated(c, [this, c] {
    auto q = parse_query(c, {"limit", "before"});
    if (!q)
      return;
    transactions_query query;
    auto limit = parse_limit(c, *q, options.list_limit_default,
                             std::min<uint32_t>(options.list_limit_max, wallet_ledger_max));
    if (!limit)
      return;
    query.limit = *limit;
    if (auto i = q->find("before"); i != q->end()) {
      auto before = parse_before(i->second);
      if (!before)
        return c->respond(error_response(
          errc::invalid_field, "before must be a transaction_id such as t42", "before"));
      query.before_seq = *before;
    }
    auto respond = [c, limit = query.limit](caf::expected<std::vector<wallet_transaction>> ts) {
      if (!ts)
        return c->respond(error_response(ts.error()));
      json::array out;
      for (auto& t : *ts)
        out.push_back(json::object{{"transaction_id", t.transaction_id},
                                   {"kind", t.kind},
                                   {"amount", t.amount.minor},
                                   {"available_after", t.available_after.minor},
                                   {"at", format_time(t.at_ms)},
                                   {"ref", t.ref}});
      // A full page may have older ones after it.
      json::value next = nullptr;
      if (ts->size() == limit)
        next = json::value(ts->back().transaction_id);
      c->respond(json_response(200, json::object{{"transactions", out}, {"next", next}}));
    };
    // The wallet's memory first; what it no longer holds, from the history.
    carry<transactions_page>(
      c, caf::make_message(query),
      [self = shared_from_this(), c, query, respond](caf::expected<transactions_page> page) {
        if (!page)
          return respond(page.error());
        auto* history = self->plat.history();
        if (page->complete || history == nullptr)
          return respond(std::move(page->transactions));
        self->with_session(c, [c, query, history, respond] {
          history->transactions(user_id{c->session->user_id}, query, respond);
        });
      });
  });
}

namespace {

// A bet's refusal. A well-formed body that cannot be a bet (two legs on one
// market, a wrong number of legs for the type, each-way where a market has
// no terms) is 422 invalid_field, as "Version 1.1" of the API says; the
// rest of invalid_field is 400.
http_response bet_error(const caf::error& err) {
  auto res = error_response(err);
  auto field = detail_of(err);
  if (code_of(err) == errc::invalid_field && (field == "legs" || field == "each_way"))
    res.status = 422;
  return res;
}

// The optional `accept` of a bet body: exact unless it says otherwise.
accept_policy accept_of(fields& f) {
  auto accept = accept_policy::exact;
  if (auto a = f.string("accept", 1, 16, false)) {
    auto p = parse_accept_policy(*a);
    if (!p)
      f.fail(errc::invalid_field, "accept", "accept must be exact, better or any");
    else
      accept = *p;
  }
  return accept;
}

// Answers a placed bet (single or slip) and counts it.
template <class Counter>
std::function<void(caf::expected<bet>)> placed(const call_ptr& c, Counter counter) {
  return [c, counter](caf::expected<bet> b) {
    counter->count(b);
    if (!b)
      return c->respond(bet_error(b.error()));
    c->respond(json_response(201, bet_json(*b)));
  };
}

} // namespace

void client_api::impl::place_bet(const call_ptr& c) {
  authenticated(c, [this, c] {
    auto body = parse_body(c);
    if (!body)
      return;
    if (body->contains("type") || body->contains("legs"))
      return place_slip(c, *body);
    fields f{*body};
    f.allow({"request_id", "market_id", "selection_id", "stake", "price", "accept", "each_way"});
    auto request = f.id("request_id");
    auto market = f.id("market_id");
    auto selection = f.id("selection_id");
    auto stake = f.amount("stake");
    auto asked = f.price_of("price");
    auto accept = accept_of(f);
    auto each_way = f.boolean("each_way", false);
    if (!f.ok())
      return c->respond(f.error());
    place_bet_cmd cmd{request_id{*request}, market_id{*market}, selection_id{*selection},
                      money{*stake}, *asked, accept, each_way.value_or(false)};
    carry<bet>(c, caf::make_message(std::move(cmd)), placed(c, bets));
  });
}

// POST /v1/bets with {request_id, type, legs: [{market_id, selection_id,
// price}], stake, each_way?, accept?} ("Version 1.1"): a slip.
void client_api::impl::place_slip(const call_ptr& c, const json::object& body) {
  fields f{body};
  f.allow({"request_id", "type", "legs", "stake", "accept", "each_way"});
  auto request = f.id("request_id");
  auto type_name = f.string("type", 1, 32);
  auto legs = f.array("legs");
  auto stake = f.amount("stake");
  auto accept = accept_of(f);
  auto each_way = f.boolean("each_way", false);
  std::optional<slip_type> type;
  if (type_name) {
    type = parse_slip_type(*type_name);
    if (!type)
      f.fail(errc::invalid_field, "type",
             "type must be single, accumulator, trixie, patent, yankee, lucky15, canadian, "
             "lucky31, heinz, lucky63, super_heinz or goliath");
  }
  std::vector<leg_request> asked;
  if (legs != nullptr) {
    if (legs->empty() || legs->size() > slip_legs_max)
      f.fail(errc::invalid_field, "legs", "legs must have 1 to 20 entries");
    for (size_t i = 0; f.ok() && i < legs->size(); ++i) {
      auto& v = (*legs)[i];
      if (!v.is_object()) {
        f.fail(errc::invalid_field, "legs", "each leg must be an object");
        break;
      }
      fields lf{v.get_object()};
      lf.allow({"market_id", "selection_id", "price"});
      auto market = lf.id("market_id");
      auto selection = lf.id("selection_id");
      auto p = lf.price_of("price");
      if (!lf.ok()) {
        f.fail(errc::invalid_field, "legs",
               "leg " + std::to_string(i + 1) + " is invalid: it needs market_id, "
               "selection_id and a price from 1.01 to 1000.00, and nothing else");
        break;
      }
      asked.push_back({market_id{*market}, selection_id{*selection}, *p});
    }
  }
  if (!f.ok())
    return c->respond(f.error());
  place_slip_cmd cmd{request_id{*request}, *type, std::move(asked), money{*stake}, accept,
                     each_way.value_or(false)};
  carry<bet>(c, caf::make_message(std::move(cmd)), placed(c, bets));
}

void client_api::impl::get_bet(const call_ptr& c) {
  authenticated(c, [this, c] {
    auto q = parse_query(c, {"odds"});
    if (!q)
      return;
    auto odds = parse_odds(c, *q);
    if (!odds)
      return;
    bet_id id{c->params.at(0)};
    auto respond = [c, odds = *odds](caf::expected<bet> b) {
      if (!b)
        return c->respond(error_response(b.error()));
      c->respond(json_response(200, bet_json(*b, odds)));
    };
    carry<bet>(c, caf::make_message(bet_query{id}),
               [self = shared_from_this(), c, id, respond](caf::expected<bet> b) {
                 auto* history = self->plat.history();
                 if (b || history == nullptr || code_of(b.error()) != errc::not_found)
                   return respond(std::move(b));
                 self->with_session(c, [c, id, history, respond] {
                   history->bet(user_id{c->session->user_id}, id, respond);
                 });
               });
  });
}

namespace {

json::object quote_json(const cashout_quote& q) {
  return json::object{{"bet_id", q.bet.value},
                      {"amount", q.amount.minor},
                      {"quote_id", q.quote_id},
                      {"expires_at", format_time(q.expires_at_ms)}};
}

// `fraction` as ten-thousandths: a number in (0, 1] with at most four
// decimals; nullopt otherwise.
std::optional<int32_t> fraction_bp(const json::value& v) {
  double f = 0;
  if (v.is_int64())
    f = static_cast<double>(v.get_int64());
  else if (v.is_uint64())
    f = static_cast<double>(v.get_uint64());
  else if (v.is_double())
    f = v.get_double();
  else
    return std::nullopt;
  if (!(f > 0) || f > 1)
    return std::nullopt;
  auto bp = std::llround(f * 10'000);
  if (bp < 1 || bp > 10'000 || std::fabs(static_cast<double>(bp) / 10'000 - f) > 1e-9)
    return std::nullopt;
  return static_cast<int32_t>(bp);
}

} // namespace

// GET /v1/bets/{bet_id}/cashout: a quote.
void client_api::impl::get_cashout(const call_ptr& c) {
  authenticated(c, [this, c] {
    carry<cashout_quote>(c, caf::make_message(cashout_quote_query{bet_id{c->params.at(0)}}),
                         [c](caf::expected<cashout_quote> q) {
                           if (!q)
                             return c->respond(error_response(q.error()));
                           c->respond(json_response(200, quote_json(*q)));
                         });
  });
}

// POST /v1/bets/{bet_id}/cashout with {request_id, quote_id, fraction?}.
void client_api::impl::cash_out(const call_ptr& c) {
  authenticated(c, [this, c] {
    auto body = parse_body(c);
    if (!body)
      return;
    fields f{*body};
    f.allow({"request_id", "quote_id", "fraction"});
    auto request = f.id("request_id");
    auto quote = f.id("quote_id");
    int32_t bp = 10'000;
    if (auto* v = f.get("fraction", false)) {
      if (auto parsed = fraction_bp(*v))
        bp = *parsed;
      else
        f.fail(errc::invalid_field, "fraction",
               "fraction is a number in (0, 1] with at most four decimals");
    }
    if (!f.ok())
      return c->respond(f.error());
    bet_id id{c->params.at(0)};
    cashout_cmd cmd{request_id{*request}, id, *quote, bp};
    carry<wager::bet>(c, caf::make_message(std::move(cmd)),
               [self = shared_from_this(), c, bet = id](caf::expected<wager::bet> b) {
                 if (b)
                   return c->respond(json_response(201, bet_json(*b)));
                 if (code_of(b.error()) != errc::price_changed)
                   return c->respond(error_response(b.error()));
                 // A moved price (or an expired quote) comes with a fresh quote.
                 auto refused = error_response(b.error());
                 self->carry<cashout_quote>(
                   c, caf::make_message(cashout_quote_query{bet}),
                   [c, refused](caf::expected<cashout_quote> q) mutable {
                     if (!q)
                       return c->respond(code_of(q.error()) == errc::cashout_unavailable
                                           ? error_response(q.error())
                                           : refused);
                     auto doc = json::parse(refused.body);
                     doc.as_object()["error"].as_object()["quote"] = quote_json(*q);
                     refused.body = json::serialize(doc);
                     c->respond(std::move(refused));
                   });
               });
  });
}

void client_api::impl::list_bets(const call_ptr& c) {
  authenticated(c, [this, c] {
    auto q = parse_query(c, {"status", "limit", "before", "odds"});
    if (!q)
      return;
    auto odds = parse_odds(c, *q);
    if (!odds)
      return;
    bool settled = false;
    if (auto i = q->find("status"); i != q->end()) {
      if (i->second != "open" && i->second != "settled")
        return c->respond(
          error_response(errc::invalid_field, "status must be open or settled", "status"));
      settled = i->second == "settled";
    }
    auto limit = parse_limit(c, *q, options.list_limit_default, options.list_limit_max);
    if (!limit)
      return;
    std::string before;
    if (auto i = q->find("before"); i != q->end()) {
      if (!valid_id(i->second))
        return c->respond(
          error_response(errc::invalid_field, "before must be a bet_id", "before"));
      before = i->second;
    }
    auto respond = [c, odds = *odds](const std::vector<bet>& page, bool more) {
      json::array out;
      for (auto& b : page)
        out.push_back(bet_json(b, odds));
      json::value next = nullptr;
      if (more && !page.empty())
        next = json::value(page.back().id.value);
      c->respond(json_response(200, json::object{{"bets", out}, {"next", next}}));
    };
    carry<bets_page>(c, caf::make_message(bets_query{settled}),
              [self = shared_from_this(), c, limit = *limit, before, respond](
                caf::expected<bets_page> bs) {
                auto* history = self->plat.history();
                if (!bs)
                  return c->respond(error_response(bs.error()));
                // Newest first; the page starts after the cursor's bet.
                auto& all = bs->bets;
                auto from = all.begin();
                bool found = true;
                if (!before.empty()) {
                  auto at = std::find_if(all.begin(), all.end(),
                                         [&](const bet& b) { return b.id.value == before; });
                  found = at != all.end();
                  from = found ? std::next(at) : all.end();
                }
                auto left = static_cast<size_t>(std::distance(from, all.end()));
                bool memory_only = bs->complete || history == nullptr;
                if (found && (left >= limit || memory_only)) {
                  auto n = std::min<size_t>(left, limit);
                  // A full page is followed by more when the memory has more,
                  // or had to let older ones go.
                  return respond(std::vector<bet>(from, from + n),
                                 left > limit || (left == limit && !bs->complete));
                }
                if (!found && memory_only)
                  return c->respond(error_response(
                    errc::invalid_field, "before must be the bet_id of a bet in this list",
                    "before"));
                // Settled bets the wallet's memory no longer holds: all from the
                // history, one more than the page to know whether another follows.
                self->with_session(c, [c, history, respond, limit, before] {
                  history->settled_bets(
                    user_id{c->session->user_id}, settled_bets_query{limit + 1, before},
                    [c, respond, limit](caf::expected<std::vector<bet>> older) {
                      if (!older)
                        return c->respond(error_response(older.error()));
                      bool more = older->size() > limit;
                      if (more)
                        older->resize(limit);
                      respond(*older, more);
                    });
                });
              });
  });
}

} // namespace wager
