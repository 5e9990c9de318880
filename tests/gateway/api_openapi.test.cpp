// docs/openapi.json describes exactly the routes the API serves.

#include "wager/gateway/api.hpp"

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

TEST_CASE("the OpenAPI document lists exactly the served routes") {
  auto file = std::filesystem::path{__FILE__}.parent_path().parent_path().parent_path()
              / "docs" / "openapi.json";
  std::ifstream in{file};
  REQUIRE(in);
  std::stringstream text;
  text << in.rdbuf();
  auto doc = boost::json::parse(text.str());
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
  for (auto& r : served)
    CHECK_MESSAGE(documented.count(r) == 1, r.first << " " << r.second << " is not documented");
  for (auto& r : documented)
    CHECK_MESSAGE(served.count(r) == 1, r.first << " " << r.second << " is not served");
}
