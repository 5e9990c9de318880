#include "workload.hpp"

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <thread>

namespace wager::bench {

int64_t funding_per_wallet(const bench_options& o) {
  if (o.fund_minor > 0)
    return o.fund_minor;
  return std::max<int64_t>(stake_high_minor, workload_total_minor / std::max(1, o.wallets));
}

// -- price_board -------------------------------------------------------------

price_board::price_board(int markets, uint64_t seed)
  : markets_(markets), cells_(static_cast<size_t>(markets) * selections_per_market) {
  std::mt19937_64 rng{seed};
  for (auto& c : cells_)
    c = static_cast<int32_t>(price_low + static_cast<int32_t>(rng() % (price_high - price_low + 1)));
}

int32_t price_board::get(int market, int selection) const {
  return cells_[static_cast<size_t>(market * selections_per_market + selection)].load(
    std::memory_order_relaxed);
}

void price_board::set(int market, int selection, int32_t hundredths) {
  cells_[static_cast<size_t>(market * selections_per_market + selection)].store(
    hundredths, std::memory_order_relaxed);
}

// -- zipf_markets ------------------------------------------------------------

zipf_markets::zipf_markets(int markets, double s) : cdf_(static_cast<size_t>(markets)) {
  double sum = 0;
  for (int k = 0; k < markets; ++k)
    cdf_[static_cast<size_t>(k)] = (sum += 1.0 / std::pow(k + 1, s));
  for (auto& x : cdf_)
    x /= sum;
}

int zipf_markets::draw(std::mt19937_64& rng) const {
  auto u = std::uniform_real_distribution<double>{0, 1}(rng);
  auto k = std::lower_bound(cdf_.begin(), cdf_.end(), u) - cdf_.begin();
  return static_cast<int>(std::min<ptrdiff_t>(k, static_cast<ptrdiff_t>(cdf_.size()) - 1));
}

// -- bettor ------------------------------------------------------------------

bettor::bettor(const bench_options& o, const zipf_markets& zipf, const price_board& board,
               std::string prefix, uint64_t seed)
  : o_(o), zipf_(zipf), board_(board), prefix_(std::move(prefix)), rng_(seed) {}

bet_request bettor::next() {
  auto roll = std::uniform_real_distribution<double>{0, 1}(rng_);
  if (roll < o_.repeat_fraction && !recent_.empty()) {
    auto r = recent_[rng_() % recent_.size()].request;
    r.repeat = true;
    return r;
  }
  bet_request r;
  r.wallet = static_cast<int>(rng_() % static_cast<uint64_t>(o_.wallets));
  r.request = prefix_ + std::to_string(serial_++);
  r.market = zipf_.draw(rng_);
  r.selection = static_cast<int>(rng_() % selections_per_market);
  r.stake_minor = stake_low_minor
                  + static_cast<int64_t>(rng_() % (stake_high_minor - stake_low_minor + 1));
  r.price_hundredths = board_.get(r.market, r.selection);
  // A price the bettor saw before the last change: one hundredth off what
  // the board says, which the market must refuse with price_changed.
  if (roll < o_.repeat_fraction + o_.stale_fraction) {
    r.stale = true;
    r.price_hundredths += r.price_hundredths < price_high ? 1 : -1;
  }
  if (o_.multiples > 0 && std::uniform_real_distribution<double>{0, 1}(rng_) < o_.multiples) {
    // A slip: four in five are accumulators of 2 to 5 legs, the rest Lucky
    // 15s (four legs, 15 lines), every leg on another market drawn as a
    // single's is. The stake is a line's: the single's draw over the lines,
    // at least 1.00, so a slip risks about what a single does.
    bool lucky = rng_() % 5 == 0;
    size_t n = lucky ? 4 : 2 + static_cast<size_t>(rng_() % 4);
    r.slip_type = lucky ? "lucky15" : "accumulator";
    r.legs.push_back({r.market, r.selection, r.price_hundredths});
    while (r.legs.size() < std::min<size_t>(n, static_cast<size_t>(o_.markets))) {
      auto m = zipf_.draw(rng_);
      if (std::any_of(r.legs.begin(), r.legs.end(),
                      [&](const leg_request_spec& l) { return l.market == m; }))
        continue;
      auto sel = static_cast<int>(rng_() % selections_per_market);
      r.legs.push_back({m, sel, board_.get(m, sel)});
    }
    if (r.legs.size() < 2) {
      r.legs.clear();
      r.slip_type.clear();
    } else {
      int64_t lines = lucky ? 15 : 1;
      r.stake_minor = std::max<int64_t>(stake_low_minor, r.stake_minor / lines);
    }
  }
  return r;
}

bool bettor::answered(const bet_request& r, const first_answer& a) {
  if (r.repeat) {
    for (auto& m : recent_)
      if (m.request.request == r.request)
        return m.answer == a;
    return true; // forgotten since: nothing to compare
  }
  remembered m{r, a};
  if (recent_.size() < recent_requests_max)
    recent_.push_back(std::move(m));
  else
    recent_[rng_() % recent_requests_max] = std::move(m);
  return true;
}

// -- run_record --------------------------------------------------------------

void run_record::merge(run_record&& other) {
  latencies_ms.insert(latencies_ms.end(), other.latencies_ms.begin(), other.latencies_ms.end());
  accepted += other.accepted;
  slips_accepted += other.slips_accepted;
  legs_accepted += other.legs_accepted;
  accepted_legs += other.accepted_legs;
  rejected += other.rejected;
  price_changed += other.price_changed;
  stale_sent += other.stale_sent;
  repeats += other.repeats;
  repeat_mismatches += other.repeat_mismatches;
  rate_limited += other.rate_limited;
  failed += other.failed;
  for (auto& b : other.accepted_bets)
    accepted_bets.push_back(std::move(b));
}

double quantile(const std::vector<double>& sorted, double p) {
  if (sorted.empty())
    return 0;
  auto i = static_cast<size_t>(p * static_cast<double>(sorted.size()));
  return sorted[std::min(sorted.size() - 1, i)];
}

namespace {

double round3(double x) {
  return std::round(x * 1000.0) / 1000.0;
}

std::string first_line_with(const char* file, const char* prefix) {
  std::ifstream in{file};
  for (std::string line; std::getline(in, line);)
    if (line.rfind(prefix, 0) == 0)
      return line;
  return {};
}

std::string after_colon(const std::string& line) {
  auto i = line.find(':');
  if (i == std::string::npos)
    return {};
  auto s = line.substr(i + 1);
  s.erase(0, s.find_first_not_of(" \t"));
  return s;
}

// The block device under `path` and whether it spins.
boost::json::object disk_of(const std::string& path) {
  namespace fs = std::filesystem;
  boost::json::object d;
  std::error_code ec;
  auto p = fs::absolute(path.empty() ? fs::temp_directory_path() : fs::path{path}, ec);
  while (!p.empty() && !fs::exists(p, ec) && p != p.root_path())
    p = p.parent_path();
  struct stat st {};
  if (::stat(p.c_str(), &st) != 0)
    return d;
  auto dev = std::to_string(major(st.st_dev)) + ":" + std::to_string(minor(st.st_dev));
  std::ifstream in{"/proc/self/mountinfo"};
  for (std::string line; std::getline(in, line);) {
    std::istringstream f{line};
    std::string id, parent, majmin, root, mount;
    f >> id >> parent >> majmin >> root >> mount;
    if (majmin != dev)
      continue;
    auto dash = line.find(" - ");
    if (dash == std::string::npos)
      continue;
    std::istringstream g{line.substr(dash + 3)};
    std::string fstype, source;
    g >> fstype >> source;
    d["fs"] = fstype;
    d["device"] = source;
    auto name = fs::path{source}.filename().string();
    std::ifstream rot{"/sys/block/" + name + "/queue/rotational"};
    int r = -1;
    if (rot >> r)
      d["rotational"] = r == 1;
    break;
  }
  d["path"] = p.string();
  return d;
}

} // namespace

boost::json::object result_line(const bench_options& o, int clients, double seconds,
                                run_record& r) {
  auto& l = r.latencies_ms;
  std::sort(l.begin(), l.end());
  auto per_s = [&](uint64_t n) { return round3(static_cast<double>(n) / seconds); };
  return boost::json::object{
    {"mode", o.mode},
    {"clients", clients},
    {"rate_per_s", o.rate_per_s > 0 ? boost::json::value(o.rate_per_s) : boost::json::value(nullptr)},
    {"seconds", round3(seconds)},
    {"wallets", o.wallets},
    {"markets", o.markets},
    {"early_decisions", o.early_decisions},
    {"journal_page_size", o.journal_page_size},
    {"journal_cache_kib", o.journal_cache_kib},
    {"index_checkpoint_frames", o.index_checkpoint_frames},
    {"journal_batch_wait_us", o.journal_batch_wait_us},
    {"journal_layout", o.journal_layout},
    {"history", o.history},
    {"bets", l.size()},
    {"multiples", o.multiples},
    {"accepted_per_s", per_s(r.accepted)},
    {"singles_accepted_per_s", per_s(r.accepted - r.slips_accepted)},
    {"slips_accepted_per_s", per_s(r.slips_accepted)},
    {"legs_accepted_per_s", per_s(r.legs_accepted)},
    {"rejected_per_s", per_s(r.rejected)},
    {"price_changed_per_s", per_s(r.price_changed)},
    {"stale_sent", r.stale_sent},
    {"repeats", r.repeats},
    {"repeat_mismatches", r.repeat_mismatches},
    {"rate_limited_per_s", per_s(r.rate_limited)},
    {"failed", r.failed},
    {"p50_ms", round3(quantile(l, 0.50))},
    {"p99_ms", round3(quantile(l, 0.99))},
    {"p999_ms", round3(quantile(l, 0.999))},
    {"max_ms", round3(l.empty() ? 0.0 : l.back())},
  };
}

boost::json::object machine_facts(const std::string& data_dir) {
  double load1 = 0;
  std::ifstream{"/proc/loadavg"} >> load1;
  auto mem_kb = after_colon(first_line_with("/proc/meminfo", "MemTotal:"));
  return boost::json::object{
    {"cores", std::thread::hardware_concurrency()},
    {"cpu", after_colon(first_line_with("/proc/cpuinfo", "model name"))},
    {"mem_mb", mem_kb.empty() ? 0 : std::stol(mem_kb) / 1024},
    {"load1_at_start", load1},
    {"disk", disk_of(data_dir)},
  };
}

std::string json_line(const boost::json::value& v) {
  switch (v.kind()) {
    case boost::json::kind::double_: {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.10g", v.get_double());
      return std::isfinite(v.get_double()) ? buf : "null";
    }
    case boost::json::kind::object: {
      std::string out = "{";
      for (auto& [k, x] : v.get_object()) {
        if (out.size() > 1)
          out += ',';
        out += boost::json::serialize(boost::json::string(k)) + ":" + json_line(x);
      }
      return out + "}";
    }
    case boost::json::kind::array: {
      std::string out = "[";
      for (auto& x : v.get_array()) {
        if (out.size() > 1)
          out += ',';
        out += json_line(x);
      }
      return out + "]";
    }
    default: return boost::json::serialize(v);
  }
}

double rss_mb(int pid, bool peak) {
  auto file = pid == 0 ? std::string{"/proc/self/status"}
                       : "/proc/" + std::to_string(pid) + "/status";
  auto v = after_colon(first_line_with(file.c_str(), peak ? "VmHWM:" : "VmRSS:"));
  return v.empty() ? 0.0 : round3(static_cast<double>(std::stol(v)) / 1024.0);
}

} // namespace wager::bench
