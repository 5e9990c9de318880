// A custom actor an operator writes: a risk trader that watches a market's
// liability and suspends the market once any selection's liability passes a
// threshold. It talks to the market like any other code does, through the
// entity directory, and never blocks.
//
//   wager_example_risk_trader [data-dir]

#include <wager/actors/platform.hpp>
#include <wager/wager.hpp>

#include <caf/all.hpp>

#include <cstdio>
#include <filesystem>

using namespace wager;

namespace {

using check_atom = caf::atom_constant<caf::atom("check")>;

struct risk_trader_state {
  bool suspended = false;
  static inline const char* name = "risk_trader";
};

// Polls the market every `interval`; past `threshold` (minor units) on any
// selection, suspends it and stops.
caf::behavior risk_trader(caf::stateful_actor<risk_trader_state>* self, directory dir,
                          market_id market, int64_t threshold,
                          std::chrono::milliseconds interval) {
  entity_id id{"market", market.value};
  self->send(self, check_atom::value);
  return {
    [=](check_atom) {
      dir.request(self, caf::duration{std::chrono::seconds{5}}, id, market_query{})
        .then(
          [=](market_view& view) {
            for (auto& [selection, liability] : view.liability) {
              if (liability > threshold && view.status == market_status::open) {
                std::printf("risk trader: %s liability %ld.%02ld on %s is over the limit, "
                            "suspending\n",
                            market.value.c_str(), liability / 100, liability % 100,
                            selection.c_str());
                dir.request(self, caf::duration{std::chrono::seconds{5}}, id,
                            set_status_cmd{market_status::suspended})
                  .then([=](market_view&) { self->quit(); },
                        [=](caf::error& err) { self->quit(err); });
                return;
              }
            }
            self->delayed_send(self, interval, check_atom::value);
          },
          [=](caf::error&) { self->delayed_send(self, interval, check_atom::value); });
    },
  };
}

} // namespace

int main(int argc, char** argv) {
  std::string dir = argc > 1 ? argv[1] : "risk-trader-data";
  std::filesystem::remove_all(dir);
  auto started = platform::start({.data_dir = dir});
  if (!started) {
    std::fprintf(stderr, "cannot start: %s\n", message_of(started.error()).c_str());
    return 1;
  }
  auto& p = **started;
  market_id derby{"derby"};
  market_definition def{derby, "The Derby", "Winner",
                        {{selection_id{"red"}, "Red Rum", {400}},
                         {selection_id{"blue"}, "Blue Bell", {150}}},
                        {money{100'000}, money{100'000'000}}, 0};
  if (!await<market_view>([&](auto done) { p.create_market(def, done); })
      || !await<market_view>([&](auto done) {
            p.set_market_status(derby, market_status::open, done);
          })) {
    std::fprintf(stderr, "cannot open the market\n");
    return 1;
  }

  // The trader suspends the Derby once "red" stands to lose over 1,000.00.
  auto trader = p.system().spawn(risk_trader, p.directory(), derby, int64_t{100'000},
                                 std::chrono::milliseconds{5});

  // Punters back Red Rum at 4.00 (liability 3 x stake each) until refused.
  int accepted = 0;
  for (int i = 0; i < 1000; ++i) {
    user_id punter{"punter-" + std::to_string(i)};
    if (!await<wallet_receipt>([&](auto done) {
          p.deposit(punter, request_id{"d"}, money{5'000}, done);
        }))
      return 1;
    auto b = await<bet>([&](auto done) {
      p.place_bet(punter,
                  {request_id{"b"}, derby, selection_id{"red"}, money{5'000}, price{400},
                   accept_policy::exact},
                  done);
    });
    if (!b) {
      if (code_of(b.error()) != errc::market_not_open) {
        std::fprintf(stderr, "unexpected refusal: %s\n",
                     std::string{to_code(code_of(b.error()))}.c_str());
        return 1;
      }
      std::printf("bet %d refused: market_not_open\n", i);
      break;
    }
    ++accepted;
  }
  auto view = await<market_view>([&](auto done) { p.get_market(derby, done); });
  bool ok = view && view->status == market_status::suspended && accepted >= 7;
  std::printf("accepted %d bets; market is %s\n", accepted,
              view ? std::string{to_string(view->status)}.c_str() : "unknown");
  std::printf("risk trader example: %s\n", ok ? "OK" : "FAILED");
  caf::anon_send_exit(trader, caf::exit_reason::user_shutdown);
  p.stop();
  return ok ? 0 : 1;
}
