#include "wager/actors/money.hpp"

namespace wager {

std::optional<price> parse_price(std::string_view text) {
  if (text.empty() || text.size() > 7)
    return std::nullopt;
  int64_t whole = 0;
  int64_t fraction = 0;
  size_t i = 0;
  size_t whole_digits = 0;
  for (; i < text.size() && text[i] >= '0' && text[i] <= '9'; ++i, ++whole_digits)
    whole = whole * 10 + (text[i] - '0');
  if (whole_digits == 0 || (whole_digits > 1 && text[0] == '0'))
    return std::nullopt;
  int decimals = 0;
  if (i < text.size()) {
    if (text[i] != '.')
      return std::nullopt;
    ++i;
    for (; i < text.size(); ++i, ++decimals) {
      if (text[i] < '0' || text[i] > '9' || decimals == 2)
        return std::nullopt;
      fraction = fraction * 10 + (text[i] - '0');
    }
    if (decimals == 0)
      return std::nullopt;
  }
  if (decimals == 1)
    fraction *= 10;
  auto hundredths = whole * 100 + fraction;
  price p{static_cast<int32_t>(hundredths)};
  if (hundredths > price_max_hundredths || !valid_price(p))
    return std::nullopt;
  return p;
}

std::string format_price(price p) {
  auto whole = std::to_string(p.hundredths / 100);
  auto cents = p.hundredths % 100;
  return whole + (cents < 10 ? ".0" : ".") + std::to_string(cents);
}

} // namespace wager
