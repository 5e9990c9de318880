// docs/openapi.json describes exactly the routes the API serves.

#include "wager/gateway/api.hpp"
#include "wager/gateway/resource_json.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

using namespace wager;

namespace {

std::string with_plain_params(const std::string& path) {
  std::string out;
  bool in_param = false;
  for (char c : path) {
    if (c == '{') {
      in_param = true;
      out += "{}";
    } else if (c == '}') {
      in_param = false;
    } else if (!in_param) {
      out.push_back(c);
    }
  }
  return out;
}

} // namespace

boost::json::value openapi_document() {
  auto file = std::filesystem::path{__FILE__}.parent_path().parent_path().parent_path()
              / "docs" / "openapi.json";
  std::ifstream in{file};
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  return boost::json::parse(text.str());
}

TEST_CASE("the OpenAPI document lists exactly the served routes") {
  auto doc = openapi_document();
  std::set<std::pair<std::string, std::string>> documented;
  for (auto& [path, ops] : doc.at("paths").as_object())
    for (auto& [method, op] : ops.as_object()) {
      std::string m{method};
      for (auto& ch : m)
        ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
      documented.emplace(m, with_plain_params(std::string{path}));
    }
  std::set<std::pair<std::string, std::string>> served;
  for (auto& r : api_routes())
    served.insert(r);
  // Served by the node beside the client API: the stream and operations.
  for (auto path : {"/v1/stream", "/healthz", "/readyz", "/metrics"})
    served.emplace("GET", path);
  for (auto& r : served)
    CHECK_MESSAGE(documented.count(r) == 1, r.first << " " << r.second << " is not documented");
  for (auto& r : documented)
    CHECK_MESSAGE(served.count(r) == 1, r.first << " " << r.second << " is not served");
}

namespace {

// The JSON type a schema property names, following one $ref or allOf.
std::string schema_type(const boost::json::object& doc, const boost::json::object& schema) {
  const boost::json::object* s = &schema;
  if (s->contains("allOf"))
    s = &s->at("allOf").as_array()[0].as_object();
  if (s->contains("$ref")) {
    std::string ref{s->at("$ref").as_string()};
    auto name = ref.substr(ref.rfind('/') + 1);
    s = &doc.at("components").at("schemas").at(name).as_object();
  }
  return std::string{s->at("type").as_string()};
}

std::string json_type(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::string: return "string";
    case boost::json::kind::int64:
    case boost::json::kind::uint64: return "integer";
    case boost::json::kind::object: return "object";
    case boost::json::kind::array: return "array";
    case boost::json::kind::bool_: return "boolean";
    default: return "other";
  }
}

// Every required property is there, and every property is documented with
// the type it has.
void check_against(const boost::json::object& doc, const std::string& name,
                   const boost::json::object& encoded) {
  CAPTURE(name);
  auto& schema = doc.at("components").at("schemas").at(name).as_object();
  auto& properties = schema.at("properties").as_object();
  for (auto& required : schema.at("required").as_array())
    CHECK_MESSAGE(encoded.contains(required.as_string()), required.as_string() << " missing");
  for (auto& [key, value] : encoded) {
    CAPTURE(key);
    REQUIRE_MESSAGE(properties.contains(key), key << " is not documented");
    CHECK(json_type(value) == schema_type(doc, properties.at(key).as_object()));
  }
}

} // namespace

// The encoders REST and the stream share (resource_json.hpp) against the
// schemas of the document.
TEST_CASE("markets and bets are encoded as docs/openapi.json describes them") {
  auto doc = openapi_document().as_object();
  market_view m;
  m.definition = {market_id{"m1"}, "A v B", "Match odds",
                  {{selection_id{"home"}, "A", price{250}}}, {money{100}, money{1000}}, 1500};
  m.status = market_status::open;
  m.version = 3;
  check_against(doc, "Market", market_json(m));
  for (auto odds : {odds_format::decimal, odds_format::fractional, odds_format::american})
    check_against(doc, "Selection",
                  market_json(m, odds).at("selections").as_array().at(0).as_object());
  bet b{bet_id{"b-1"}, market_id{"m1"}, selection_id{"home"}, money{100}, price{250}};
  b.placed_at_ms = 1'700'000'000'000;
  check_against(doc, "Bet", bet_json(b));
  check_against(doc, "Bet", bet_json(b, odds_format::fractional));
  check_against(doc, "Bet", bet_json(b, odds_format::american));
  b.status = bet_status::won;
  b.payout = money{250};
  b.settled_at_ms = 1'700'000'100'000;
  auto settled = bet_json(b);
  CHECK(settled.contains("settled_at"));
  check_against(doc, "Bet", settled);
}

// The REST answers and the stream's error messages take their code from
// api_code: every platform error becomes one of the document's codes.
// Regression (issue 19): the stream sent journal_failure, sequence_conflict
// or internal (for a timeout) where REST answered unavailable.
TEST_CASE("every platform error has an API code the document lists") {
  auto doc = openapi_document();
  std::set<std::string> documented;
  for (auto& code : doc.at("components").at("schemas").at("Error").at("properties").at("error")
                      .at("properties").at("code").at("enum").as_array())
    documented.emplace(code.as_string());
  for (auto i = static_cast<uint8_t>(errc::invalid_field);
       i <= static_cast<uint8_t>(errc::internal); ++i) {
    auto err = make_error(static_cast<errc>(i));
    auto code = std::string{to_code(api_code(err))};
    CAPTURE(to_code(static_cast<errc>(i)));
    CHECK_MESSAGE(documented.count(code) == 1, code << " is not an API error code");
    // Stored codes read back as themselves.
    CHECK(parse_code(to_code(static_cast<errc>(i))) == static_cast<errc>(i));
  }
  CHECK_FALSE(parse_code("no_such_code").has_value());
  CHECK(api_code(make_error(errc::journal_failure)) == errc::unavailable);
  CHECK(api_code(caf::make_error(caf::sec::request_timeout)) == errc::unavailable);
  CHECK(api_code(make_error(errc::price_changed)) == errc::price_changed);
}
