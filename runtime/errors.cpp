#include "wager/runtime/errors.hpp"

#include <caf/make_message.hpp>
#include <caf/message.hpp>

namespace wager {

std::optional<errc> parse_code(std::string_view code) noexcept {
  for (uint8_t i = 0; i <= static_cast<uint8_t>(errc::internal); ++i)
    if (to_code(static_cast<errc>(i)) == code)
      return static_cast<errc>(i);
  return std::nullopt;
}

std::string_view to_code(errc code) noexcept {
  switch (code) {
    case errc::none: return "none";
    case errc::invalid_field: return "invalid_field";
    case errc::missing_field: return "missing_field";
    case errc::unknown_field: return "unknown_field";
    case errc::invalid_json: return "invalid_json";
    case errc::unauthorized: return "unauthorized";
    case errc::invalid_credentials: return "invalid_credentials";
    case errc::mfa_required: return "mfa_required";
    case errc::invalid_mfa_code: return "invalid_mfa_code";
    case errc::forbidden: return "forbidden";
    case errc::self_excluded: return "self_excluded";
    case errc::not_found: return "not_found";
    case errc::insufficient_funds: return "insufficient_funds";
    case errc::price_changed: return "price_changed";
    case errc::market_not_open: return "market_not_open";
    case errc::request_id_reused: return "request_id_reused";
    case errc::username_taken: return "username_taken";
    case errc::already_exists: return "already_exists";
    case errc::illegal_transition: return "illegal_transition";
    case errc::cashout_unavailable: return "cashout_unavailable";
    case errc::sequence_conflict: return "sequence_conflict";
    case errc::too_large: return "too_large";
    case errc::limit_exceeded: return "limit_exceeded";
    case errc::rate_limited: return "rate_limited";
    case errc::unavailable: return "unavailable";
    case errc::journal_failure: return "journal_failure";
    case errc::restart_intensity_exceeded: return "restart_intensity_exceeded";
    case errc::internal: return "internal";
  }
  return "internal";
}

int http_status(errc code) noexcept {
  switch (code) {
    case errc::none: return 200;
    case errc::invalid_field:
    case errc::missing_field:
    case errc::unknown_field:
    case errc::invalid_json: return 400;
    case errc::unauthorized:
    case errc::invalid_credentials:
    case errc::mfa_required:
    case errc::invalid_mfa_code: return 401;
    case errc::forbidden:
    case errc::self_excluded: return 403;
    case errc::not_found: return 404;
    case errc::insufficient_funds:
    case errc::price_changed:
    case errc::market_not_open:
    case errc::request_id_reused:
    case errc::username_taken:
    case errc::already_exists:
    case errc::illegal_transition:
    case errc::cashout_unavailable:
    case errc::sequence_conflict: return 409;
    case errc::too_large: return 413;
    case errc::limit_exceeded: return 422;
    case errc::rate_limited: return 429;
    case errc::unavailable:
    case errc::journal_failure:
    case errc::restart_intensity_exceeded: return 503;
    case errc::internal: return 500;
  }
  return 500;
}

caf::error make_error(errc code) {
  return caf::error{static_cast<uint8_t>(code), error_category};
}

caf::error make_error(errc code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), error_category,
                    caf::make_message(std::move(message))};
}

caf::error make_error(errc code, std::string message, std::string detail) {
  return caf::error{static_cast<uint8_t>(code), error_category,
                    caf::make_message(std::move(message), std::move(detail))};
}

errc code_of(const caf::error& err) noexcept {
  if (!err)
    return errc::none;
  if (err.category() != error_category)
    return errc::internal;
  return static_cast<errc>(err.code());
}

std::string message_of(const caf::error& err) {
  if (err.category() != error_category)
    return {};
  auto& ctx = err.context();
  if (ctx.match_elements<std::string>() || ctx.match_elements<std::string, std::string>())
    return ctx.get_as<std::string>(0);
  return {};
}

std::string detail_of(const caf::error& err) {
  if (err.category() == error_category
      && err.context().match_elements<std::string, std::string>())
    return err.context().get_as<std::string>(1);
  return {};
}

} // namespace wager
