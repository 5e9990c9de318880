#include "wager/actors/resume.hpp"

#include "wager/actors/market.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/metrics.hpp"

#include <caf/all.hpp>
#include <prometheus/counter.h>

#include <algorithm>
#include <deque>
#include <string>
#include <vector>

namespace wager {

namespace {

using page_atom = caf::atom_constant<caf::atom("resumepg")>;
using refill_atom = caf::atom_constant<caf::atom("resumetk")>;

// The per-second bound is spent in tenths, so a second's budget is not
// started in one burst.
constexpr auto refill_interval = std::chrono::milliseconds{100};

// Markets first: their payouts settle wallets, and a wallet waiting for a
// decision asks a market that may itself be resuming.
constexpr const char* resume_kinds[] = {"market", "wallet"};

struct resumer_state {
  journal* store = nullptr;
  directory dir;
  resume_options options;
  size_t kind = 0;           // index into resume_kinds
  std::string after;         // last stream name read of this kind
  bool page_pending = false; // a page read is in flight
  bool kind_exhausted = false;
  std::deque<std::string> waiting; // stream names read, not yet activated
  std::vector<bool> shard_wanted;  // empty: every shard
  uint32_t tokens = 0;             // activations left this tenth of a second
  uint32_t in_flight = 0;
  uint64_t resumed = 0, failed = 0;
  prometheus::Family<prometheus::Counter>* counted = nullptr;
  static inline const char* name = "wager.resumer";
};

using resumer_actor = caf::stateful_actor<resumer_state>;

void pump(resumer_actor* self);

bool wanted(const resumer_state& st, const std::string& stream) {
  if (st.shard_wanted.empty())
    return true;
  auto slash = stream.find('/');
  if (slash == std::string::npos)
    return false;
  entity_id id{stream.substr(0, slash), stream.substr(slash + 1)};
  return st.shard_wanted[shard_of(id, static_cast<uint32_t>(st.shard_wanted.size()))];
}

void read_page(resumer_actor* self) {
  auto& st = self->state;
  st.page_pending = true;
  auto target = caf::actor{self};
  auto* j = st.store;
  std::string kind = resume_kinds[st.kind];
  auto after = st.after;
  auto max = st.options.page_max;
  auto err = j->post_read([j, target, kind, after, max] {
    auto page = j->list_open_streams(kind, after, max);
    if (page)
      caf::anon_send(target, page_atom::value, std::move(*page), caf::error{});
    else
      caf::anon_send(target, page_atom::value, std::vector<std::string>{}, page.error());
  });
  if (err)
    caf::anon_send(target, page_atom::value, std::vector<std::string>{}, std::move(err));
}

void finished(resumer_actor* self, const std::string& kind, bool ok) {
  auto& st = self->state;
  --st.in_flight;
  ++(ok ? st.resumed : st.failed);
  st.counted->Add({{"kind", kind}, {"outcome", ok ? "activated" : "failed"}}).Increment();
  pump(self);
}

void activate(resumer_actor* self, const std::string& stream) {
  auto& st = self->state;
  auto slash = stream.find('/');
  entity_id id{stream.substr(0, slash), stream.substr(slash + 1)};
  auto kind = id.kind;
  auto timeout = caf::duration{st.options.activation_timeout};
  ++st.in_flight;
  auto failed = [self, kind, stream](caf::error& err) {
    log().warn("resume: {} not activated: {}", stream, message_of(err));
    finished(self, kind, false);
  };
  if (kind == "market")
    st.dir.request(self, timeout, id, market_query{})
      .then([self, kind](market_view&) { finished(self, kind, true); }, failed);
  else
    st.dir.request(self, timeout, id, balance_query{})
      .then([self, kind](wallet_balance&) { finished(self, kind, true); }, failed);
}

uint32_t tokens_per_refill(const resume_options& o) {
  return std::max<uint32_t>(1, o.per_second_max / 10);
}

void pump(resumer_actor* self) {
  auto& st = self->state;
  bool bounded = st.options.per_second_max > 0;
  while (st.in_flight < st.options.in_flight_max && !st.waiting.empty()
         && (!bounded || st.tokens > 0)) {
    auto stream = std::move(st.waiting.front());
    st.waiting.pop_front();
    if (bounded)
      --st.tokens;
    activate(self, stream);
  }
  if (!st.waiting.empty() || st.page_pending)
    return;
  if (!st.kind_exhausted) {
    read_page(self);
    return;
  }
  // This kind is done once its activations have answered: the next kind's
  // entities may depend on them.
  if (st.in_flight > 0)
    return;
  if (++st.kind < std::size(resume_kinds)) {
    st.after.clear();
    st.kind_exhausted = false;
    read_page(self);
    return;
  }
  if (st.resumed + st.failed > 0)
    log().info("resume: activated {} entities with open work, {} failed", st.resumed, st.failed);
  self->quit();
}

caf::behavior resumer(resumer_actor* self, journal* j, directory dir,
                      prometheus::Family<prometheus::Counter>* counted, resume_options options) {
  auto& st = self->state;
  st.store = j;
  st.dir = std::move(dir);
  st.counted = counted;
  st.options = options;
  if (!st.options.shards.empty()) {
    st.shard_wanted.assign(st.dir.shards(), false);
    for (auto s : st.options.shards)
      if (s < st.shard_wanted.size())
        st.shard_wanted[s] = true;
  }
  if (st.options.per_second_max > 0) {
    st.tokens = tokens_per_refill(st.options);
    self->delayed_send(self, refill_interval, refill_atom::value);
  }
  read_page(self);
  return {
    [self](refill_atom) {
      auto& st = self->state;
      st.tokens = tokens_per_refill(st.options);
      self->delayed_send(self, refill_interval, refill_atom::value);
      pump(self);
    },
    [self](page_atom, std::vector<std::string>& page, caf::error& err) {
      auto& st = self->state;
      st.page_pending = false;
      if (err) {
        // Nothing is lost: the marks stay, and each entity resumes at its
        // next touch.
        log().error("resume: cannot list {} streams with open work: {}",
                    resume_kinds[st.kind], message_of(err));
        st.kind_exhausted = true;
      } else {
        st.kind_exhausted = page.size() < st.options.page_max;
        if (!page.empty())
          st.after = page.back();
        for (auto& stream : page)
          if (wanted(st, stream))
            st.waiting.push_back(std::move(stream));
      }
      pump(self);
    },
  };
}

} // namespace

caf::actor spawn_resumer(caf::actor_system& sys, journal* j, directory dir, metrics& m,
                         resume_options options) {
  auto& counted = prometheus::BuildCounter()
                    .Name("wager_resumed_entities_total")
                    .Help("Entities activated at start because their last append left work open")
                    .Register(m.registry());
  return sys.spawn(resumer, j, std::move(dir), &counted, options);
}

} // namespace wager
