// libFuzzer target over the client API's request parsing and validation:
// query strings, JSON bodies through every field reader, times, prices,
// stored password hashes and base32. None of it may crash, hang or leak.

#include "wager/gateway/api_internal.hpp"

#include <cstddef>
#include <cstdint>
#include <string>

using namespace wager;
using namespace wager::api;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string input(reinterpret_cast<const char*>(data), size);
  auto nl = input.find('\n');
  auto c = std::make_shared<call>();
  c->req.query = input.substr(0, nl);
  c->req.body = nl == std::string::npos ? std::string{} : input.substr(nl + 1);
  c->respond_fn = [](http_response) {};
  (void) parse_query(c, {"limit", "before", "status"});
  if (auto body = parse_body(c, true)) {
    fields f{*body};
    f.allow({"request_id", "market_id", "selection_id", "stake", "price", "accept",
             "selections", "limits", "prices", "winners", "void"});
    (void) f.id("request_id", false);
    (void) f.id("market_id", false);
    (void) f.amount("stake", false);
    (void) f.price_of("price", false);
    (void) f.string("accept", 1, 16, false);
    (void) f.array("selections", false);
    (void) f.object("limits", false);
    (void) f.boolean("void", false);
    (void) f.integer("in_play_delay_ms", 0, 60'000, false);
  }
  (void) parse_time(input);
  (void) parse_price(input);
  (void) base32_decode(input);
  // A stored hash whose iteration field is over four characters is not
  // verified: the parsing is the same below, and the ten million iterations
  // such a field may name take minutes under ASan, past the run's 30 s
  // timeout (1.2 million took 22 s).
  auto first = input.find('$');
  auto second = first == std::string::npos ? first : input.find('$', first + 1);
  if (size < 256 && (second == std::string::npos || second - first <= 5))
    (void) verify_password("password", input);
  return 0;
}
