#pragma once

// The shell the user and session entities share (user.cpp, session.cpp):
// recovery from the journal, persisting an event before answering, and
// passivation. Private to actors/; the entities' interface is user.hpp.

#include "wager/actors/journaled.hpp"
#include "wager/actors/user.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json.hpp>
#include <caf/all.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace wager::identity_entity {

namespace json = boost::json;

inline std::string str(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_string() ? std::string{v->as_string()} : std::string{};
}

inline int64_t int_of(const json::object& o, std::string_view key) {
  auto* v = o.if_contains(key);
  return v && v->is_int64() ? v->as_int64() : 0;
}

// Compares two secrets' digests without stopping at the first difference,
// so the time taken says nothing about how much of a guess was right.
inline bool constant_time_same(std::string_view a, std::string_view b) {
  if (a.size() != b.size())
    return false;
  unsigned char diff = 0;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i]);
  return diff == 0;
}

// The journal's events are these entities' events: nothing to translate.
struct identity_events {
  using event_type = event;
  static std::optional<event> decode(const event& e) { return e; }
  static event encode(const event& e) { return e; }
};

// -- the shared entity shell ---------------------------------------------------

template <class Traits>
struct identity_state {
  std::unique_ptr<journaled<Traits>> book;
  std::string key; // the username or the session id
  bool passivating = false;
  directory dir; // the way to other entities
  typename Traits::live_type live;
  static inline const char* name = "wager.identity";
};

template <class Traits>
using identity_actor = caf::stateful_actor<identity_state<Traits>>;

template <class Traits>
void maybe_quit(identity_actor<Traits>* self) {
  if (self->state.passivating && self->state.book->pending() == 0)
    self->quit();
}

// Persists `e` and answers `reply(state)` once it is durable.
template <class Traits, class Reply>
caf::result<caf::message> persist_then(identity_actor<Traits>* self, event e, Reply reply) {
  auto rp = self->make_response_promise();
  self->state.book->persist(self, {std::move(e)}, nullptr,
                            [self, rp, reply](const caf::error& err) mutable {
                              if (err)
                                rp.deliver(err);
                              else
                                rp.deliver(reply(self->state.book->state()));
                              maybe_quit(self);
                            });
  return rp;
}

// Recovers, then runs `running(self)`. A failed append stops the entity: its
// callers got the error, and the next message activates it from the
// journal again.
template <class Traits, class Running>
activate_fn identity_activator(std::shared_ptr<journal> j, const char* kind,
                               identity_options options, Running running) {
  using actor_type = identity_actor<Traits>;
  using recovery_ptr = std::shared_ptr<recovery<typename Traits::state_type>>;
  return [j, kind, options, running](const activation_context& ctx) -> caf::actor {
    auto key = ctx.id.key;
    auto dir = ctx.dir;
    return ctx.system.spawn([j, kind, options, running, key,
                             dir](actor_type* self) -> caf::behavior {
      auto& st = self->state;
      st.key = key;
      st.dir = dir;
      st.book = std::make_unique<journaled<Traits>>(j, std::string{kind} + "/" + key,
                                                    options.snapshot_every);
      begin_recovery(self);
      if (auto err = st.book->recover(self)) {
        self->quit(err);
        return {};
      }
      return {
        [self, running](recovered_atom, recovery_ptr& r) {
          if (r->error)
            return self->quit(r->error);
          self->state.book->recovered(std::move(r->state));
          caf::behavior handlers = running(self).or_else(
            [self](persisted_atom, uint64_t token, caf::error& err) {
              if (!self->state.book->on_persisted(self, token, err))
                self->quit(err);
            },
            [self](passivate_atom) {
              self->state.passivating = true;
              maybe_quit(self);
            });
          end_recovery(self, std::move(handlers));
        },
      };
    });
  };
}

} // namespace wager::identity_entity
