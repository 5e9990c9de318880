// The operator's view of intrusion detection: the blocked addresses, and
// lifting a block.

#include "wager/gateway/api_internal.hpp"

namespace wager {

using namespace api;

void client_api::impl::admin_blocks(const call_ptr& c) {
  if (!admin(c, "list_blocks"))
    return;
  if (!parse_query(c, {}))
    return;
  json::array blocks;
  for (auto& b : intrusion->blocks())
    blocks.push_back(json::object{{"address", b.address},
                                  {"reason", to_string(b.reason)},
                                  {"blocked_until", format_time(b.blocked_until_ms)},
                                  {"blocks", b.blocks}});
  c->respond(json_response(200, json::object{{"blocks", std::move(blocks)}}));
}

void client_api::impl::admin_lift_block(const call_ptr& c) {
  if (!admin(c, "lift_block"))
    return;
  if (!parse_query(c, {}))
    return;
  auto who = "key:" + sha256_hex(bearer_token(c->req)).substr(0, 12);
  if (!intrusion->lift(c->params.at(0), who))
    return c->respond(error_response(errc::not_found, "this address is not blocked"));
  c->respond(no_content());
}

} // namespace wager
