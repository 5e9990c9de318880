// POST /v1/admin/feed: feed lines in a body (shared/API.md "Feed"), for
// producers that cannot hold a TCP connection and for operators replaying a
// file. The body is newline-delimited JSON, one message per line; the answer
// comes once every line was applied or skipped.

#include "wager/gateway/api_internal.hpp"

#include "wager/actors/feed.hpp"

namespace wager {

using namespace api;

namespace {

// Lines per body: a 64 KiB body holds a few hundred messages; this bounds
// the work one request can queue even if the body limit grows.
constexpr size_t feed_body_lines_max = 10'000;

std::vector<std::string> split_lines(std::string_view body) {
  std::vector<std::string> out;
  while (!body.empty()) {
    auto nl = body.find('\n');
    auto line = body.substr(0, nl);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' '))
      line.remove_suffix(1);
    if (!line.empty())
      out.emplace_back(line);
    if (nl == std::string_view::npos)
      break;
    body.remove_prefix(nl + 1);
  }
  return out;
}

json::object result_json(const feed_batch_result& r) {
  json::array errors;
  for (auto& e : r.errors) {
    json::object o{{"line", e.line},
                   {"reason", std::string{to_string(e.reason)}},
                   {"message", e.message}};
    if (!e.field.empty())
      o["field"] = e.field;
    errors.push_back(std::move(o));
  }
  return {{"received", r.received},
          {"applied", r.applied},
          {"invalid", r.invalid},
          {"errors", std::move(errors)}};
}

} // namespace

void client_api::impl::admin_feed(const call_ptr& c) {
  if (!admin(c, "feed"))
    return;
  if (!parse_query(c, {}))
    return;
  if (options.feed == nullptr)
    return c->respond(error_response(errc::unavailable, "this node takes no feed"));
  auto lines = split_lines(c->req.body);
  if (lines.empty())
    return c->respond(
      error_response(errc::missing_field, "the body holds no feed lines", "body"));
  if (lines.size() > feed_body_lines_max)
    return c->respond(error_response(errc::too_large, "at most 10000 lines per body"));
  options.feed->submit_batch(std::move(lines), [c](feed_batch_result r) {
    c->respond(json_response(200, result_json(r)));
  });
}

} // namespace wager
