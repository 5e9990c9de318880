// libFuzzer target over the client API's router (gateway/api_router.hpp):
// the input is a method, a newline, and a path. Besides not crashing (nor
// reading out of bounds: ASan), it checks:
//   - no two routes can take one request: once, over the table itself, and
//     for every input against an independent matcher;
//   - a match is the one route whose pattern is the path, and its
//     parameters put back into the pattern give the path again;
//   - 404 and 405 agree across methods: a path is 404 for every method or
//     for none; a 405 lists each method of the path once, not the one
//     asked, in table order, and each method it lists finds a route.

#include "wager/actors/ids.hpp"
#include "wager/gateway/api_router.hpp"
#include "wager/runtime/assert.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

using namespace wager;
using namespace wager::api;

namespace {

// Two segments of patterns of the same length that one path segment could
// both match.
bool overlap(std::string_view a, std::string_view b) {
  if (a == "{}" && b == "{}")
    return true;
  if (a == "{}")
    return valid_id(b);
  if (b == "{}")
    return valid_id(a);
  return a == b;
}

void check_table() {
  auto& table = routes();
  for (size_t i = 0; i < table.size(); ++i)
    for (size_t j = 0; j < i; ++j) {
      auto& a = table[i];
      auto& b = table[j];
      if (a.method != b.method || a.pattern.size() != b.pattern.size())
        continue;
      bool all = true;
      for (size_t k = 0; k < a.pattern.size(); ++k)
        all = all && overlap(a.pattern[k], b.pattern[k]);
      WAGER_ASSERT(!all, "two routes of one method can match the same path");
    }
}

// The matcher's specification, written apart from it: the path is "/" and
// the pattern's segments joined by "/", each "{}" an id. Fills `params`.
bool matches(const route& r, std::string_view path, std::vector<std::string>& params) {
  params.clear();
  for (auto seg : r.pattern) {
    if (path.empty() || path[0] != '/')
      return false;
    path.remove_prefix(1);
    size_t n = 0;
    while (n < path.size() && path[n] != '/')
      ++n;
    auto got = path.substr(0, n);
    if (seg == "{}") {
      if (!valid_id(got))
        return false;
      params.emplace_back(got);
    } else if (got != seg) {
      return false;
    }
    path.remove_prefix(n);
  }
  return path.empty();
}

std::string fill(const route& r, const std::vector<std::string>& params) {
  std::string out;
  size_t next = 0;
  for (auto seg : r.pattern) {
    out += '/';
    if (seg == "{}") {
      WAGER_ASSERT(next < params.size(), "fewer parameters than {} in the pattern");
      out += params[next++];
    } else {
      out += seg;
    }
  }
  WAGER_ASSERT(next == params.size(), "more parameters than {} in the pattern");
  return out;
}

// A path is known to the router (200 or 405) for every method or for none.
void check_known_alike(std::string_view path, bool known) {
  for (std::string_view other : {"GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", ""}) {
    auto o = match_route(other, path);
    WAGER_ASSERT((o.matched != nullptr || !o.allowed.empty()) == known,
                 "a path is 404 for some methods only");
  }
}

void check(std::string_view method, std::string_view path) {
  auto m = match_route(method, path);
  check_known_alike(path, m.matched != nullptr || !m.allowed.empty());
  const route* expected = nullptr;
  std::vector<std::string> expected_params;
  std::vector<std::string_view> path_methods;
  for (auto& r : routes()) {
    std::vector<std::string> params;
    if (!matches(r, path, params))
      continue;
    if (r.method == method) {
      WAGER_ASSERT(expected == nullptr, "two routes take one request");
      expected = &r;
      expected_params = params;
    } else {
      path_methods.push_back(r.method);
    }
  }
  WAGER_ASSERT(m.matched == expected, "matched another route than the path names");
  if (m.matched) {
    WAGER_ASSERT(m.params == expected_params, "parameters differ from the path's");
    WAGER_ASSERT(fill(*m.matched, m.params) == path, "parameters do not give the path back");
    WAGER_ASSERT(m.allowed.empty(), "a match lists allowed methods");
    return;
  }
  WAGER_ASSERT(m.params.empty(), "parameters without a match");
  std::string allowed;
  for (size_t i = 0; i < path_methods.size(); ++i) {
    for (size_t j = 0; j < i; ++j)
      WAGER_ASSERT(path_methods[i] != path_methods[j], "405 lists a method twice");
    allowed += i == 0 ? "" : ", ";
    allowed += path_methods[i];
  }
  WAGER_ASSERT(m.allowed == allowed, "405 lists other methods than the path's routes");
  for (auto other : path_methods)
    WAGER_ASSERT(match_route(other, path).matched != nullptr,
                 "a method 405 lists finds no route");
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const bool table_checked = (check_table(), true);
  (void) table_checked;
  std::string_view input{reinterpret_cast<const char*>(data), size};
  auto nl = input.find('\n');
  if (nl == std::string_view::npos)
    return check("GET", input), 0;
  check(input.substr(0, nl), input.substr(nl + 1));
  return 0;
}
