// Authenticated routes reach the platform through the user's session entity
// (actors/session.hpp): it checks the token, applies the session's request
// budget and carries the request to the wallet, which answers here. Each
// call goes through the directory's long-lived callers (directory::call), as
// the platform's own calls do; the answer comes back on an actor thread and goes to the connection's strand
// through the responder, so no I/O thread waits.

#include "wager/gateway/api_internal.hpp"

#include "wager/actors/session.hpp"

#include <caf/all.hpp>

namespace wager {

using namespace api;

api::bet_counter::bet_counter(prometheus::Registry& registry)
  : family(&prometheus::BuildCounter()
              .Name("wager_bets_total")
              .Help("Bets answered: accepted, rejected (by reason) or failed (no final answer)")
              .Register(registry)),
    accepted(&family->Add({{"outcome", "accepted"}, {"reason", ""}})) {}

void api::bet_counter::count(const caf::expected<bet>& b) const {
  if (b)
    return accepted->Increment();
  // Codes that are not the bet's final answer (the client retries with the
  // same request id) count as failed.
  auto code = code_of(b.error());
  if (b.error().category() != error_category)
    code = errc::unavailable;
  bool final_answer =
    code != errc::unavailable && code != errc::internal && code != errc::journal_failure;
  family->Add({{"outcome", final_answer ? "rejected" : "failed"}, {"reason", std::string{to_code(code)}}})
    .Increment();
}

void client_api::impl::authenticated(const call_ptr& c, std::function<void()> next) {
  auto bearer = bearer_token(c->req);
  if (bearer.empty())
    return c->respond(error_response(errc::unauthorized, "a bearer token is required"));
  auto token = parse_session_token(bearer);
  if (!token)
    return c->respond(error_response(errc::unauthorized,
                                     "the token is missing, unknown, expired or revoked"));
  c->token = std::move(*token);
  // A route may refuse a bad body before it reaches the session; the
  // session is asked first even then, so a bad token is 401 before
  // anything else, and a budget spent is 429, as if it was checked first.
  auto self = shared_from_this();
  std::weak_ptr<call> weak = c;
  c->before_first_answer = [self, weak](http_response res) {
    auto c = weak.lock();
    if (!c)
      return;
    self->carry<session_info>(c, caf::message{},
                              [c, res = std::move(res)](caf::expected<session_info> s) mutable {
                                c->finish(s ? std::move(res) : error_response(s.error()));
                              });
  };
  next();
}

void client_api::impl::with_session(const call_ptr& c, std::function<void()> next) {
  carry<session_info>(c, caf::message{},
                      [c, next = std::move(next)](caf::expected<session_info> s) {
                        if (!s)
                          return c->respond(error_response(s.error()));
                        c->session = std::move(*s);
                        next();
                      });
}

template <class T>
void client_api::impl::carry(const call_ptr& c, caf::message request,
                             std::function<void(caf::expected<T>)> done) {
  // The session hears this request: the deferred check is not needed.
  c->before_first_answer = nullptr;
  entity_id id{"session", c->token->session_id};
  session_request_cmd cmd{c->token->secret_sha256, std::move(request)};
  plat.directory().call<T>(caf::duration{plat.options().call_timeout}, id,
                           caf::make_message(std::move(cmd)), std::move(done));
}

// What the routes carry (api_money.cpp, api_users.cpp).
template void client_api::impl::carry<session_info>(const call_ptr&, caf::message,
                                                    std::function<void(caf::expected<session_info>)>);
template void client_api::impl::carry<wallet_balance>(
  const call_ptr&, caf::message, std::function<void(caf::expected<wallet_balance>)>);
template void client_api::impl::carry<wallet_receipt>(
  const call_ptr&, caf::message, std::function<void(caf::expected<wallet_receipt>)>);
template void client_api::impl::carry<wallet_limits>(
  const call_ptr&, caf::message, std::function<void(caf::expected<wallet_limits>)>);
template void client_api::impl::carry<transactions_page>(
  const call_ptr&, caf::message, std::function<void(caf::expected<transactions_page>)>);
template void client_api::impl::carry<bet>(const call_ptr&, caf::message,
                                           std::function<void(caf::expected<bet>)>);
template void client_api::impl::carry<cashout_quote>(
  const call_ptr&, caf::message, std::function<void(caf::expected<cashout_quote>)>);
template void client_api::impl::carry<bets_page>(
  const call_ptr&, caf::message, std::function<void(caf::expected<bets_page>)>);

} // namespace wager
