#pragma once

// The visitor of several lambdas for std::visit:
//   std::visit(overloaded{[](const a&) {...}, [](const b&) {...}}, v);

namespace wager {

template <class... Ts>
struct overloaded : Ts... {
  using Ts::operator()...;
};

} // namespace wager
