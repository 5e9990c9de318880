// What the log layout's in-memory index (log_journal.hpp) costs: heap bytes
// per stored request and per record, frames taken in per second, and
// request lookups per second, hit and miss, and lookups of a stream's
// records from a seq per second. Prints one JSON line.
//
// The log it builds is the match day's shape (shared/WORKLOAD.md) without
// the actors: each bet is a wallet record that stores the bet's request and
// a market record, and a settled bet adds a wallet record that stores its
// payout request; frames hold --batch records, as group commit makes them.
// Heap bytes are glibc's (mallinfo2, mapped chunks included) before and
// after taking the frames in, so the figure is the index's own, not the
// frames it was fed.
//
//   wager_bench_log_index [--bets N] [--wallets W] [--markets M] [--batch B]

#include "wager/persistence/log_frame.hpp"
#include "wager/persistence/log_journal.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json.hpp>

#include <malloc.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

using namespace wager;
using clock_type = std::chrono::steady_clock;

namespace {

struct settings {
  uint64_t bets = 1'000'000;
  uint64_t wallets = 100'000;
  uint64_t markets = 1'000;
  uint64_t batch = 256;
};

int usage(const char* why) {
  std::fprintf(stderr,
               "wager_bench_log_index: %s\n"
               "usage: wager_bench_log_index [--bets N] [--wallets W] [--markets M] [--batch B]\n",
               why);
  return 2;
}

// In use: chunks from the heap and chunks mapped alone (the large arrays).
uint64_t heap_bytes() {
  auto m = mallinfo2();
  return m.uordblks + m.hblkhd;
}

double seconds_since(clock_type::time_point start) {
  return std::chrono::duration<double>(clock_type::now() - start).count();
}

// Builds the frames in order, each stream's records chained to its previous
// frame as the index checks.
class log_builder {
public:
  explicit log_builder(uint64_t batch) : batch_(batch) {}

  void add(std::string stream, std::string event_type, std::string payload,
           std::optional<request_record> request) {
    auto& s = streams_[stream];
    log_record r;
    r.stream = std::move(stream);
    r.first_seq = s.last_seq + 1;
    r.previous_position = s.last_position == position_ ? s.before_position : s.last_position;
    r.events = {log_event{std::move(event_type), 1, std::move(payload), at_ms_}};
    r.request = std::move(request);
    if (r.request)
      r.request_at_ms = at_ms_;
    s.last_seq = r.first_seq;
    if (s.last_position != position_) {
      s.before_position = s.last_position;
      s.last_position = position_;
    }
    frame_.records.push_back(std::move(r));
    if (frame_.records.size() == batch_)
      seal();
  }

  // The frame built so far, encoded; none when it is empty.
  void seal() {
    if (frame_.records.empty())
      return;
    frame_.position = position_;
    frame_.previous = previous_;
    auto bytes = encode(frame_);
    if (!bytes) {
      std::fprintf(stderr, "encoding frame %llu: %s\n",
                   static_cast<unsigned long long>(position_), message_of(bytes.error()).c_str());
      std::exit(1);
    }
    previous_ = hash_of_frame(*bytes);
    frames_.push_back(log_frame{});
    std::swap(frames_.back(), frame_);
    encoded_.push_back(std::move(*bytes));
    ++position_;
    at_ms_ += 1;
  }

  std::vector<log_frame>& frames() { return frames_; }
  std::vector<frame_bytes>& encoded() { return encoded_; }

private:
  struct stream_state {
    uint64_t last_seq = 0;
    uint64_t last_position = 0;
    uint64_t before_position = 0;
  };
  uint64_t batch_;
  uint64_t position_ = 1;
  int64_t at_ms_ = 1764900000000;
  frame_hash previous_{};
  log_frame frame_;
  std::unordered_map<std::string, stream_state> streams_;
  std::vector<log_frame> frames_;
  std::vector<frame_bytes> encoded_;
};

} // namespace

int main(int argc, char** argv) {
  settings s;
  for (int i = 1; i < argc; ++i) {
    auto flag = std::string{argv[i]};
    if (i + 1 >= argc)
      return usage(("missing value after " + flag).c_str());
    char* end = nullptr;
    auto value = std::strtoull(argv[++i], &end, 10);
    if (*end != '\0' || value == 0)
      return usage((flag + " takes a positive integer").c_str());
    if (flag == "--bets")
      s.bets = value;
    else if (flag == "--wallets")
      s.wallets = value;
    else if (flag == "--markets")
      s.markets = value;
    else if (flag == "--batch")
      s.batch = value;
    else
      return usage(("unknown option " + flag).c_str());
  }

  // The log: every bet placed, then settled (every other one a winner, so
  // its wallet stores a payout request).
  log_builder log{s.batch};
  uint64_t requests = 0;
  uint64_t records = 0;
  auto bet_id = [](uint64_t bet) { return "b-" + std::to_string(1000000000 + bet); };
  for (uint64_t bet = 0; bet < s.bets; ++bet) {
    auto wallet = "wallet/u" + std::to_string(bet % s.wallets);
    auto market = "market/m" + std::to_string(bet % s.markets);
    log.add(wallet, "bet_placed", R"({"bet_id":")" + bet_id(bet) + R"(","stake":2550})",
            request_record{"c64-" + std::to_string(bet), R"({"bet_id":")" + bet_id(bet) + "\"}"});
    log.add(market, "bet_accepted", R"({"bet_id":")" + bet_id(bet) + R"(","price":"3.75"})",
            std::nullopt);
    requests += 1;
    records += 2;
  }
  for (uint64_t bet = 0; bet < s.bets; bet += 2) {
    auto wallet = "wallet/u" + std::to_string(bet % s.wallets);
    log.add(wallet, "bet_won", R"({"bet_id":")" + bet_id(bet) + R"(","payout":9562})",
            request_record{"payout/" + bet_id(bet), "{}"});
    requests += 1;
    records += 1;
  }
  log.seal();
  auto& frames = log.frames();

  auto heap_before = heap_bytes();
  auto index = std::make_unique<log_index>();
  auto start = clock_type::now();
  for (size_t i = 0; i < frames.size(); ++i)
    if (auto err = index->apply(frames[i], log.encoded()[i])) {
      std::fprintf(stderr, "applying frame %zu: %s\n", i + 1, message_of(err).c_str());
      return 1;
    }
  auto apply_seconds = seconds_since(start);
  auto heap_after = heap_bytes();

  // Lookups: every stored bet request (hits), then as many never stored
  // (misses, which read no frame when the index says no).
  uint64_t hits = 0;
  start = clock_type::now();
  for (uint64_t bet = 0; bet < s.bets; ++bet)
    hits += !index->request_frames("wallet/u" + std::to_string(bet % s.wallets),
                                   "c64-" + std::to_string(bet))
               .empty();
  auto hit_seconds = seconds_since(start);
  uint64_t false_hits = 0;
  start = clock_type::now();
  for (uint64_t bet = 0; bet < s.bets; ++bet)
    false_hits += !index->request_frames("wallet/u" + std::to_string(bet % s.wallets),
                                         "c65-" + std::to_string(bet))
                     .empty();
  auto miss_seconds = seconds_since(start);

  // A stream's records from a seq (an entity reading after its snapshot):
  // each wallet from its middle (it has bets x 1.5 / wallets records).
  uint64_t found_records = 0;
  auto middle = std::max<uint64_t>(1, s.bets / s.wallets * 3 / 4);
  start = clock_type::now();
  for (uint64_t w = 0; w < s.wallets; ++w)
    found_records += index->records_from("wallet/u" + std::to_string(w), middle, 2).size();
  auto records_seconds = seconds_since(start);

  // The index checkpoint: saved (what the writer does every so many
  // frames), then loaded into a new index (what an opening does).
  start = clock_type::now();
  auto checkpoint = index->save();
  auto save_seconds = seconds_since(start);
  log_index loaded;
  start = clock_type::now();
  auto load_error = loaded.load(checkpoint);
  auto load_seconds = seconds_since(start);
  if (load_error) {
    std::fprintf(stderr, "loading the checkpoint: %s\n", message_of(load_error).c_str());
    return 1;
  }

  auto index_bytes = static_cast<double>(heap_after - heap_before);
  boost::json::object line;
  line["bench"] = "log_index";
  line["bets"] = s.bets;
  line["wallets"] = s.wallets;
  line["markets"] = s.markets;
  line["batch"] = s.batch;
  line["frames"] = frames.size();
  line["records"] = records;
  line["stored_requests"] = index->requests();
  line["index_mb"] = index_bytes / 1e6;
  line["bytes_per_bet"] = index_bytes / static_cast<double>(s.bets);
  line["frames_per_s"] = static_cast<double>(frames.size()) / apply_seconds;
  line["records_per_s"] = static_cast<double>(records) / apply_seconds;
  line["hits"] = hits;
  line["hit_lookups_per_s"] = static_cast<double>(s.bets) / hit_seconds;
  line["false_hits"] = false_hits;
  line["miss_lookups_per_s"] = static_cast<double>(s.bets) / miss_seconds;
  line["record_lookups_per_s"] = static_cast<double>(s.wallets) / records_seconds;
  line["records_found"] = found_records;
  line["checkpoint_mb"] = static_cast<double>(checkpoint.size()) / 1e6;
  line["checkpoint_save_ms"] = save_seconds * 1e3;
  line["checkpoint_load_ms"] = load_seconds * 1e3;
  std::printf("%s\n", boost::json::serialize(line).c_str());
  return hits == s.bets && requests == index->requests() && loaded.applied() == index->applied()
           ? 0
           : 1;
}
