#pragma once

// Journal results as actor messages. Journal callbacks run on the journal's
// threads; an actor must never block on them, so reply_to() makes a callback
// that sends the result to the actor as a journal_reply<T>, tagged with a
// number the actor chose (to match it to the command that started it):
//
//   auto err = j.append(std::move(req), reply_to<append_ack>(self, next_tag++));
//   ...
//   [=](journal_reply<append_ack>& r) { if (r.result) ... else ... r.result.error() }
//
// Replies of one stream's appends arrive in the order the appends were made.
// The messages are local (the journal is in the actor's process), so they
// are not registered for serialization.

#include "wager/persistence/journal.hpp"

#include <caf/actor.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/send.hpp>

#include <cstdint>
#include <type_traits>

namespace wager {

template <class T>
struct journal_reply {
  uint64_t tag;
  caf::expected<T> result;
};

template <class T>
result_callback<T> reply_to(caf::actor receiver, uint64_t tag) {
  return [receiver = std::move(receiver), tag](caf::expected<T> result) {
    caf::anon_send(receiver, journal_reply<T>{tag, std::move(result)});
  };
}

} // namespace wager

namespace caf {

template <class T>
struct allowed_unsafe_message_type<wager::journal_reply<T>> : std::true_type {};

} // namespace caf
