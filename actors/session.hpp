#pragma once

// What the login session entity (`session/<session id>`, user.hpp) does
// beyond its token: it carries its user's requests to the wallet, the token
// checked and a request budget applied on every one, and it feeds the user's
// live streams (WebSocket connections) with the wallet's bet and balance
// changes.
//
// Errors: unauthorized (unknown, expired, revoked or wrong token),
// rate_limited (detail: the seconds to wait), and the wallet's own.

#include "wager/actors/user.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/runtime/message_types.hpp"

#include <caf/actor.hpp>
#include <caf/atom.hpp>
#include <caf/message.hpp>
#include <caf/meta/type_name.hpp>

#include <chrono>
#include <string>

namespace wager {

// Requests one session carries: a burst, then this many per second. Logins
// are limited per user (gateway/api.hpp), which bounds how many sessions,
// and so budgets, one user can have at a time.
inline constexpr double session_request_burst = 200;
inline constexpr double session_requests_per_s = 100;

// How long a session waits for the wallet when a stream attaches.
inline constexpr std::chrono::milliseconds session_wallet_timeout{10'000};

// One of the user's requests, carried by their session: the token is checked
// as by check_session_cmd, one request is taken from the session's budget,
// then `request` goes to the user's wallet (wallet/<user id>) and the
// wallet's answer, sent straight to the caller, is the answer. An empty
// `request` answers the session_info, for the caller's own work on this
// session (TOTP enrolment, revocation).
struct session_request_cmd {
  std::string secret_sha256;
  caf::message request;
};

// A stream connection's actor attaches to the session: the token is
// checked, the session follows the user's wallet (watch_cmd) while it has
// streams and sends each `bet` and `wallet_balance` the wallet reports to
// every stream, none dropped. A revoked or expired session sends its streams
// (session_closed_atom, std::string why) and forgets them. A session that
// passivates or crashes just ends: a stream monitors `session` and attaches
// again through the directory. -> stream_attached
struct attach_stream_cmd {
  std::string secret_sha256;
  caf::actor stream;
};

struct stream_attached {
  session_info info;
  wallet_balance balance; // the wallet now: what the stream shows first
  caf::actor session;
};

using session_closed_atom = caf::atom_constant<caf::atom("sessclosed")>;

template <class I>
typename I::result_type inspect(I& f, session_request_cmd& x) {
  return f(caf::meta::type_name("wager::session_request_cmd"), x.secret_sha256, x.request);
}
template <class I>
typename I::result_type inspect(I& f, attach_stream_cmd& x) {
  return f(caf::meta::type_name("wager::attach_stream_cmd"), x.secret_sha256, x.stream);
}
template <class I>
typename I::result_type inspect(I& f, stream_attached& x) {
  return f(caf::meta::type_name("wager::stream_attached"), x.info, x.balance, x.session);
}

// The messages above that may cross nodes (runtime/message_types.hpp).
inline constexpr message_types session_messages{
  message_type<session_request_cmd>{"wager::session_request_cmd"},
  message_type<attach_stream_cmd>{"wager::attach_stream_cmd"},
  message_type<stream_attached>{"wager::stream_attached"},
};

} // namespace wager
