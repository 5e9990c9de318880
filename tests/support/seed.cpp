#include "support/seed.hpp"

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <stdexcept>
#include <string>

namespace wager::test {

std::optional<uint64_t> seed_from_environment() {
  const char* text = std::getenv("WAGER_SEED");
  if (text == nullptr || *text == '\0')
    return std::nullopt;
  std::string_view digits{text};
  uint64_t seed = 0;
  auto [end, error] = std::from_chars(digits.data(), digits.data() + digits.size(), seed);
  if (error != std::errc{} || end != digits.data() + digits.size())
    throw std::invalid_argument("WAGER_SEED=\"" + std::string{digits}
                                + "\" is not a seed: expected a decimal number from 0 to "
                                + std::to_string(UINT64_MAX));
  return seed;
}

void print_seed(uint64_t seed, std::string_view what) {
  auto prefix = what.empty() ? std::string{} : std::string{what} + ": ";
  std::fprintf(stderr, "%sseed: %llu (replay with WAGER_SEED=%llu)\n", prefix.c_str(),
               static_cast<unsigned long long>(seed), static_cast<unsigned long long>(seed));
  std::fflush(stderr);
}

uint64_t fresh_seed() {
  std::random_device device;
  return (static_cast<uint64_t>(device()) << 32) | device();
}

uint64_t seed_for_run() {
  auto seed = seed_from_environment();
  if (!seed)
    seed = fresh_seed();
  print_seed(*seed);
  return *seed;
}

} // namespace wager::test
