// Google Benchmark micro-benchmarks for the pieces every bet goes through:
// price and money parsing and formatting, wallet and market event encoding
// and decoding, the bet decision's stored form, one journal batch append
// (fsync'd, on a temporary file), and a log frame's encoding and decoding.
// Regressions show up as numbers:
//
//   build/bench/wager_bench_micro --benchmark_format=json

#include <wager/actors/market_state.hpp>
#include <wager/actors/money.hpp>
#include <wager/actors/wallet_state.hpp>
#include <wager/persistence/log_frame.hpp>
#include <wager/persistence/sqlite_journal.hpp>

#include <benchmark/benchmark.h>

#include <filesystem>
#include <future>
#include <unistd.h>

using namespace wager;

namespace {

void price_parse(benchmark::State& state) {
  const char* texts[] = {"2.50", "1.5", "17", "999.99", "3.05"};
  size_t i = 0;
  for (auto _ : state)
    benchmark::DoNotOptimize(parse_price(texts[i++ % 5]));
}
BENCHMARK(price_parse);

void price_format(benchmark::State& state) {
  int32_t h = 150;
  for (auto _ : state) {
    benchmark::DoNotOptimize(format_price(price{h}));
    h = h == 900 ? 150 : h + 1;
  }
}
BENCHMARK(price_format);

void money_payout_and_liability(benchmark::State& state) {
  int64_t stake = 100;
  for (auto _ : state) {
    benchmark::DoNotOptimize(potential_payout(money{stake}, price{275}));
    benchmark::DoNotOptimize(liability(money{stake}, price{275}));
    stake = stake == 5000 ? 100 : stake + 1;
  }
}
BENCHMARK(money_payout_and_liability);

stake_held a_stake_held() {
  return stake_held{request_id{"c64-12-123456"}, bet_id{"b-0123456789abcdef"}, market_id{"m17"},
                    selection_id{"s2"}, money{2550}, price{375}, accept_policy::exact, 0x1234abcd};
}

void wallet_event_encode(benchmark::State& state) {
  wallet_event e = a_stake_held();
  for (auto _ : state)
    benchmark::DoNotOptimize(encode(e));
}
BENCHMARK(wallet_event_encode);

void wallet_event_decode(benchmark::State& state) {
  auto ev = encode(wallet_event{a_stake_held()});
  for (auto _ : state)
    benchmark::DoNotOptimize(decode_wallet_event(ev));
}
BENCHMARK(wallet_event_decode);

bet_accepted a_bet_accepted() {
  return bet_accepted{bet_id{"b-0123456789abcdef"}, user_id{"w12345"}, selection_id{"s2"},
                      money{2550}, price{375}};
}

void market_event_encode(benchmark::State& state) {
  market_event e = a_bet_accepted();
  for (auto _ : state)
    benchmark::DoNotOptimize(encode(e));
}
BENCHMARK(market_event_encode);

void market_event_decode(benchmark::State& state) {
  auto ev = encode(market_event{a_bet_accepted()});
  for (auto _ : state)
    benchmark::DoNotOptimize(decode_market_event(ev));
}
BENCHMARK(market_event_decode);

void market_prices_changed_encode(benchmark::State& state) {
  market_event e = prices_changed{{{"s0", price{250}}, {"s1", price{310}}, {"s2", price{420}}}};
  for (auto _ : state)
    benchmark::DoNotOptimize(encode(e));
}
BENCHMARK(market_prices_changed_encode);

void bet_decision_round_trip(benchmark::State& state) {
  bet_decision d{bet_id{"b-0123456789abcdef"}, true, price{375}, errc::none, price{}};
  for (auto _ : state)
    benchmark::DoNotOptimize(bet_decision_from_json(to_json_text(d)));
}
BENCHMARK(bet_decision_round_trip);

// One batch of `range(0)` appends (a stake_held each, on as many wallet
// streams) queued at once and waited for: one group commit and its fsync.
// With `building`, every other append names the event of the one queued
// just before it (append_request::after), as a wallet's commit names its
// market's decision: the cost of that check.
void batch_append(benchmark::State& state, bool building) {
  namespace fs = std::filesystem;
  auto dir = fs::temp_directory_path() / ("wager-micro-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  journal_options o;
  o.path = (dir / "journal.db").string();
  auto j = open_sqlite_journal(o);
  if (!j) {
    state.SkipWithError("cannot open the journal");
    return;
  }
  auto batch = static_cast<int>(state.range(0));
  std::vector<uint64_t> seq(static_cast<size_t>(batch), 0);
  auto ev = encode(wallet_event{a_stake_held()});
  for (auto _ : state) {
    std::vector<std::future<bool>> acks;
    event_position previous;
    for (int i = 0; i < batch; ++i) {
      auto done = std::make_shared<std::promise<bool>>();
      acks.push_back(done->get_future());
      auto& s = seq[static_cast<size_t>(i)];
      append_request r{"wallet/w" + std::to_string(i), s, {ev}};
      if (building && i % 2 == 1)
        r.after = {previous};
      previous = position_of(r.stream, s + 1, ev);
      auto err = (*j)->append(std::move(r),
                              [done](caf::expected<append_ack> a) { done->set_value(bool(a)); });
      if (err)
        done->set_value(false);
      ++s;
    }
    for (auto& a : acks)
      if (!a.get())
        state.SkipWithError("an append failed");
  }
  state.SetItemsProcessed(state.iterations() * batch);
  j->reset();
  fs::remove_all(dir);
}

void journal_batch_append(benchmark::State& state) {
  batch_append(state, false);
}
BENCHMARK(journal_batch_append)->Arg(1)->Arg(64)->Arg(512)->UseRealTime();

void journal_batch_append_after(benchmark::State& state) {
  batch_append(state, true);
}
BENCHMARK(journal_batch_append_after)->Arg(64)->Arg(512)->UseRealTime();

// A group commit of 64 bets as the ordered log stores it: one record each
// (a stake_held event, its request's answer, a back-pointer), encoded with
// its CRC32C and SHA-256, then decoded and checked as a reader would.
log_frame a_64_record_frame() {
  log_frame f;
  f.position = 1000;
  f.previous.fill(0x5a);
  auto payload = encode(wallet_event{a_stake_held()}).payload;
  for (int i = 0; i < 64; ++i) {
    auto id = "c64-12-" + std::to_string(123456 + i);
    f.records.push_back(log_record{"wallet/w" + std::to_string(i), 40,
                                   {log_event{"stake_held", 1, payload, 1764900000000 + i}},
                                   request_record{id, R"({"bet_id":"b-0123456789abcdef"})"},
                                   true, 990});
  }
  return f;
}

void log_frame_encode_decode(benchmark::State& state) {
  auto f = a_64_record_frame();
  size_t bytes = 0;
  for (auto _ : state) {
    auto encoded = encode(f);
    auto hash = hash_of_frame(*encoded);
    benchmark::DoNotOptimize(hash);
    auto decoded = decode_log_frame(*encoded);
    if (!decoded)
      state.SkipWithError("the frame did not decode");
    benchmark::DoNotOptimize(decoded);
    bytes = encoded->size();
  }
  state.SetItemsProcessed(state.iterations() * 64);
  state.SetBytesProcessed(state.iterations() * static_cast<int64_t>(bytes));
}
BENCHMARK(log_frame_encode_decode);

} // namespace

BENCHMARK_MAIN();
