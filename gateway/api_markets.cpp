// Markets (public reads) and the operator's admin routes.

#include "wager/gateway/api_internal.hpp"

#include "wager/actors/feed_message.hpp"
#include "wager/actors/ids.hpp"
#include "wager/actors/market_status.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/runtime/metrics.hpp"

#include <prometheus/gauge.h>

#include <algorithm>
#include <limits>
#include <mutex>

namespace wager {

using namespace api;

namespace {

constexpr size_t selections_max = feed_selections_max; // per market
constexpr uint32_t list_page = 256;

void answer_market(const call_ptr& c, int status, caf::expected<market_view> m,
                   odds_format odds = odds_format::decimal) {
  if (!m)
    return c->respond(error_response(m.error()));
  c->respond(json_response(status, market_json(*m, odds)));
}

} // namespace

void client_api::impl::get_market(const call_ptr& c) {
  auto q = parse_query(c, {"odds"});
  if (!q)
    return;
  auto odds = parse_odds(c, *q);
  if (!odds)
    return;
  plat.get_market(market_id{c->params.at(0)}, [c, odds = *odds](caf::expected<market_view> m) {
    answer_market(c, 200, std::move(m), odds);
  });
}

namespace {

// One GET /v1/markets: pages of market ids in id order read on the API's
// pool (a journal read), each page's markets asked for at once, the status
// filter applied in id order before the limit. The answer's `next` is the
// id of the last market read, or null once the last market was read.
struct market_scan : std::enable_shared_from_this<market_scan> {
  std::shared_ptr<client_api::impl> api;
  call_ptr c;
  std::optional<market_status> wanted;
  odds_format odds = odds_format::decimal;
  uint32_t limit = 0;
  std::string after; // the cursor: the last market id read
  uint32_t read = 0;
  json::array found;

  void post_read_page() {
    auto self = shared_from_this();
    if (!api->pool->post([self] { self->read_page(); }))
      c->respond(error_response(errc::unavailable, "too many requests at once, retry later"));
  }

  void read_page() {
    auto want = std::min<uint32_t>(list_page, api->options.markets_scan_max - read);
    auto page = api->plat.journal().list_streams("market", after.empty() ? "" : "market/" + after,
                                                 want);
    if (!page)
      return c->respond(error_response(page.error()));
    if (page->empty())
      return finish(false);
    std::vector<std::string> ids;
    for (auto& s : *page) {
      auto slash = s.find('/');
      ids.push_back(slash == std::string::npos ? s : s.substr(slash + 1));
    }
    ask(std::move(ids), page->size() == want);
  }

  void ask(std::vector<std::string> ids, bool page_full) {
    struct gather {
      std::mutex mutex;
      size_t left;
      std::vector<std::optional<market_view>> views;
    };
    auto g = std::make_shared<gather>();
    g->left = ids.size();
    g->views.resize(ids.size());
    auto shared_ids = std::make_shared<std::vector<std::string>>(std::move(ids));
    for (size_t i = 0; i < shared_ids->size(); ++i) {
      api->plat.get_market(market_id{(*shared_ids)[i]},
                           [self = shared_from_this(), g, i, shared_ids,
                            page_full](caf::expected<market_view> m) {
                             std::unique_lock lock{g->mutex};
                             // A market that cannot be read now is left out,
                             // not a failed list.
                             if (m)
                               g->views[i] = std::move(*m);
                             if (--g->left > 0)
                               return;
                             lock.unlock();
                             self->take(*shared_ids, g->views, page_full);
                           });
    }
  }

  void take(const std::vector<std::string>& ids,
            const std::vector<std::optional<market_view>>& views, bool page_full) {
    for (size_t i = 0; i < ids.size(); ++i) {
      after = ids[i];
      ++read;
      auto& v = views[i];
      if (v && (!wanted || v->status == *wanted))
        found.push_back(market_json(*v, odds));
      if (found.size() == limit)
        return finish(i + 1 < ids.size() || page_full);
    }
    if (!page_full)
      return finish(false);
    if (read >= api->options.markets_scan_max)
      return finish(true);
    post_read_page();
  }

  void finish(bool more) {
    json::value next = more ? json::value(after) : json::value(nullptr);
    c->respond(json_response(
      200, json::object{{"markets", std::move(found)}, {"next", std::move(next)}}));
  }
};

} // namespace

void client_api::impl::list_markets(const call_ptr& c) {
  auto q = parse_query(c, {"status", "limit", "after", "odds"});
  if (!q)
    return;
  auto odds = parse_odds(c, *q);
  if (!odds)
    return;
  std::optional<market_status> wanted;
  if (auto i = q->find("status"); i != q->end()) {
    wanted = parse_market_status(i->second);
    if (!wanted)
      return c->respond(error_response(
        errc::invalid_field,
        "status must be pending, open, suspended, closed, settled or voided", "status"));
  }
  auto limit = parse_limit(c, *q, options.list_limit_default, options.list_limit_max);
  if (!limit)
    return;
  std::string after;
  if (auto i = q->find("after"); i != q->end()) {
    if (!valid_id(i->second))
      return c->respond(
        error_response(errc::invalid_field, "after must be a market_id", "after"));
    after = i->second;
  }
  auto scan = std::make_shared<market_scan>();
  scan->api = shared_from_this();
  scan->c = c;
  scan->wanted = wanted;
  scan->odds = *odds;
  scan->limit = *limit;
  scan->after = std::move(after);
  scan->post_read_page();
}

void client_api::impl::admin_create_market(const call_ptr& c) {
  if (!admin(c, "create_market"))
    return;
  auto body = parse_body(c);
  if (!body)
    return;
  // The same reading as the feed's `market` message (actors/feed_message.hpp).
  field_error error;
  auto def = market_definition_from_json(*body, {}, error);
  if (!def)
    return c->respond(error_response(error.code, error.message, error.field));
  plat.create_market(std::move(*def),
                     [c](caf::expected<market_view> m) { answer_market(c, 201, std::move(m)); });
}

void client_api::impl::admin_market_status(const call_ptr& c) {
  if (!admin(c, "set_market_status"))
    return;
  auto body = parse_body(c);
  if (!body)
    return;
  fields f{*body};
  f.allow({"status"});
  std::optional<market_status> status;
  if (auto s = f.string("status", 1, 16)) {
    status = parse_market_status(*s);
    if (!status || (*status != market_status::open && *status != market_status::suspended
                    && *status != market_status::closed))
      f.fail(errc::invalid_field, "status", "status must be open, suspended or closed");
  }
  if (!f.ok())
    return c->respond(f.error());
  plat.set_market_status(market_id{c->params.at(0)}, *status,
                         [c](caf::expected<market_view> m) { answer_market(c, 200, std::move(m)); });
}

void client_api::impl::admin_market_prices(const call_ptr& c) {
  if (!admin(c, "set_prices"))
    return;
  auto body = parse_body(c);
  if (!body)
    return;
  fields f{*body};
  f.allow({"prices"});
  std::map<std::string, price> prices;
  if (auto* ps = f.object("prices")) {
    if (ps->empty() || ps->size() > selections_max)
      f.fail(errc::invalid_field, "prices", "prices must name 1 to 100 selections");
    for (auto& kv : *ps) {
      std::optional<price> p;
      if (kv.value().is_string())
        p = parse_price(kv.value().as_string());
      if (!valid_id(kv.key()) || !p) {
        f.fail(errc::invalid_field, "prices",
               "prices maps selection ids to prices such as \"2.50\"");
        break;
      }
      prices.emplace(std::string{kv.key()}, *p);
    }
  }
  if (!f.ok())
    return c->respond(f.error());
  plat.set_prices(market_id{c->params.at(0)}, std::move(prices),
                  [c](caf::expected<market_view> m) { answer_market(c, 200, std::move(m)); });
}

void client_api::impl::admin_settle(const call_ptr& c) {
  if (!admin(c, "settle_market"))
    return;
  auto body = parse_body(c);
  if (!body)
    return;
  field_error problem;
  auto result = market_result_from_json(*body, {}, problem);
  if (!result)
    return c->respond(error_response(problem.code, problem.message, problem.field));
  auto who = "key:" + sha256_hex(bearer_token(c->req)).substr(0, 12);
  auto done = [c, intrusion = intrusion, who](caf::expected<market_view> m) {
    if (m)
      intrusion->settled(c->req.remote_address, who);
    answer_market(c, 200, std::move(m));
  };
  plat.settle_market_result(market_id{c->params.at(0)}, std::move(*result), done);
}

void client_api::impl::admin_cancel_bets(const call_ptr& c) {
  if (!admin(c, "cancel_bets"))
    return;
  auto body = parse_body(c, true);
  if (!body)
    return;
  fields f{*body};
  f.allow({"from", "to"});
  int64_t from = 0;
  int64_t to = std::numeric_limits<int64_t>::max();
  for (auto [key, out] : {std::pair{"from", &from}, std::pair{"to", &to}}) {
    if (auto text = f.string(key, 1, 64, false)) {
      if (auto ms = parse_time(*text))
        *out = *ms;
      else
        f.fail(errc::invalid_field, key, std::string{key} + " must be an RFC 3339 time");
    }
  }
  if (f.ok() && from > to)
    f.fail(errc::invalid_field, "from", "from is after to");
  if (!f.ok())
    return c->respond(f.error());
  plat.cancel_bets(market_id{c->params.at(0)}, from, to,
                   [c](caf::expected<market_view> m) { answer_market(c, 200, std::move(m)); });
}

void client_api::impl::admin_unsettle(const call_ptr& c) {
  if (!admin(c, "unsettle_market"))
    return;
  if (!empty_body(c))
    return;
  plat.unsettle_market(market_id{c->params.at(0)},
                       [c](caf::expected<market_view> m) { answer_market(c, 200, std::move(m)); });
}

void client_api::impl::admin_withdraw_selection(const call_ptr& c) {
  if (!admin(c, "withdraw_selection"))
    return;
  if (!empty_body(c))
    return;
  plat.withdraw_selection(market_id{c->params.at(0)}, selection_id{c->params.at(1)},
                          [c](caf::expected<market_view> m) { answer_market(c, 200, std::move(m)); });
}

namespace {

// Live entities per kind, as the directory counts them (wager_actors_alive).
json::object entities_alive(metrics& m) {
  json::object out;
  for (auto kind : {"wallet", "market", "session", "user"})
    out[kind] = static_cast<int64_t>(m.actors_alive().Add({{"kind", kind}}).Value());
  return out;
}

} // namespace

void client_api::impl::admin_drain(const call_ptr& c) {
  if (!admin(c, "drain"))
    return;
  if (!parse_query(c, {}))
    return;
  if (!empty_body(c))
    return;
  if (!options.drain)
    return c->respond(
      error_response(errc::unavailable, "this node cannot be drained over HTTP: send it SIGTERM"));
  auto res = json_response(202, json::object{{"node_id", options.node_id}, {"status", "draining"}});
  // Started only once the 202 is out: the drain closes every connection.
  res.on_sent = options.drain;
  c->respond(std::move(res));
}

void client_api::impl::admin_health(const call_ptr& c) {
  if (!admin(c, "health"))
    return;
  if (!parse_query(c, {}))
    return;
  auto health = plat.journal().health();
  bool draining = options.draining && options.draining();
  auto status = draining ? "draining" : health.writable ? "ready" : "degraded";
  json::array members;
  uint32_t shards_owned = plat.options().shards;
  if (options.cluster) {
    auto cluster = options.cluster();
    for (auto& m : cluster.members)
      members.push_back(
        json::object{{"node_id", m.node_id}, {"address", m.address}, {"status", m.status}});
    shards_owned = cluster.shards_owned;
  } else {
    // A node alone is its cluster's one member: up, or leaving while it
    // drains (member statuses are joining, up, leaving, down; the node's
    // readiness is `status` above).
    members.push_back(json::object{
      {"node_id", options.node_id}, {"address", ""}, {"status", draining ? "leaving" : "up"}});
  }
  c->respond(json_response(200, json::object{{"node_id", options.node_id},
                                             {"status", status},
                                             {"members", std::move(members)},
                                             {"shards_owned", shards_owned},
                                             {"entities", entities_alive(plat.metrics())}}));
}

} // namespace wager
