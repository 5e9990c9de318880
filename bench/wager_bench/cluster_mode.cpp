// The steps of bench/cluster/cluster_bench.sh, one JSON line each:
//
// --mode cluster-seed: before any node runs, writes --wallets users into the
// data dir through the library (the user, a login session with a token this
// tool picks, a deposit of --fund), and their tokens to --tokens-file. Over
// HTTP every sign-up and log-in costs the node a PBKDF2 hash of 600,000
// iterations (about 0.1 s of a core each), which makes 100,000 users a
// matter of hours; seeded users share one stored hash of the bench password
// (cheap, and never checked: the tokens come from here, not from a log-in).
//
// --mode cluster-live: GET /v1/wallet once for every token, spread over the
// --url nodes, so every session and wallet is resident on its shard's
// owner; then each node's /v1/admin/health entity counts.
//
// --mode cluster-probe: sends --signal (kill: SIGKILL, failover; term:
// SIGTERM, drain) to --victim-pid and measures, from the signal, when the
// survivors' health shows the victim not up and down, when the victim's
// process is gone, and when each of a sample of the wallets the victim
// owned (rendezvous placement over --members, as the nodes compute it)
// answers 200 through the survivors to a request sent after the victim was
// gone; optionally with closed-loop balance reads over the survivors
// meanwhile, whose failures are counted.

#include "http_client.hpp"
#include "modes.hpp"
#include "workload.hpp"

#include <wager/actors/platform.hpp>
#include <wager/actors/user.hpp>
#include <wager/cluster/placement.hpp>
#include <wager/gateway/auth.hpp>
#include <wager/runtime/entity.hpp>
#include <wager/runtime/errors.hpp>

#include <boost/asio.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace wager::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

// Calls unanswered at once while seeding.
inline constexpr int seed_window = 512;
// Requests a live-mode connection makes before it takes a new source address
// (the gateway allows 200 requests/s per address).
inline constexpr int live_requests_per_address = 150;

double ms_since(clock_type::time_point t0, clock_type::time_point t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

struct seeded_user {
  std::string user_id;
  std::string token;
};

std::string hex_of(std::mt19937_64& rng, size_t chars) {
  static const char* digits = "0123456789abcdef";
  std::string out;
  while (out.size() < chars) {
    auto v = rng();
    for (int i = 0; i < 16 && out.size() < chars; ++i, v >>= 4)
      out += digits[v & 15];
  }
  return out;
}

std::optional<std::vector<seeded_user>> read_tokens(const std::string& file) {
  std::ifstream in{file};
  if (!in)
    return std::nullopt;
  std::vector<seeded_user> users;
  seeded_user u;
  while (in >> u.user_id >> u.token)
    users.push_back(u);
  return users;
}

std::optional<std::vector<endpoint_address>> nodes_of(const std::vector<std::string>& urls) {
  std::vector<endpoint_address> out;
  for (auto& u : urls) {
    auto a = parse_http_url(u);
    if (!a)
      return std::nullopt;
    out.push_back(*a);
  }
  if (out.empty())
    return std::nullopt;
  return out;
}

// GET /v1/admin/health, parsed; null when it did not answer 200.
json::value health_of(blocking_client& c, const std::string& admin_key) {
  auto r = c.request("GET", "/v1/admin/health", {}, admin_key);
  if (r.status != 200)
    return nullptr;
  json::error_code ec;
  auto v = json::parse(r.body, ec);
  if (ec || !v.is_object())
    return nullptr;
  return v;
}

// {node_id: entities} of each node that answers.
json::object entities_of(const std::vector<endpoint_address>& nodes, source_addresses& src,
                         const std::string& admin_key) {
  json::object out;
  for (auto& n : nodes) {
    blocking_client c{n, src.next()};
    auto h = health_of(c, admin_key);
    if (h.is_object() && h.as_object().contains("node_id") && h.as_object().contains("entities"))
      out[h.at("node_id").as_string()] = h.at("entities");
  }
  return out;
}

double sum_rss(const std::vector<int>& pids) {
  double sum = 0;
  for (int p : pids)
    sum += rss_mb(p, false);
  return sum;
}

} // namespace

// -- cluster-seed ------------------------------------------------------------

int run_cluster_seed(const bench_options& o) {
  if (o.data_dir.empty() || o.tokens_file.empty()) {
    std::fprintf(stderr, "wager-bench: --mode cluster-seed needs --data-dir and --tokens-file\n");
    return 2;
  }
  auto facts = machine_facts(o.data_dir);
  platform_options popts;
  popts.data_dir = o.data_dir;
  popts.shards = o.shards;
  auto started = platform::start(popts);
  if (!started) {
    std::fprintf(stderr, "wager-bench: cannot start: %s\n", message_of(started.error()).c_str());
    return 2;
  }
  auto& p = **started;
  auto fund = funding_per_wallet(o);
  // One stored hash for all: cheap iterations, since nobody logs in with it.
  auto hash = hash_password(bench_password, 1000);
  auto expires = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch() + std::chrono::hours{24})
                   .count();
  std::mt19937_64 rng{std::random_device{}()};
  std::vector<seeded_user> users(static_cast<size_t>(o.wallets));
  std::mutex m;
  std::condition_variable cv;
  int in_flight = 0, finished = 0;
  std::atomic<int> failures{0};
  auto done = [&](bool ok) {
    if (!ok)
      ++failures;
    std::lock_guard g{m};
    --in_flight;
    ++finished;
    cv.notify_all();
  };
  auto t0 = clock_type::now();
  for (int i = 0; i < o.wallets; ++i) {
    {
      std::unique_lock lock{m};
      cv.wait(lock, [&] { return in_flight < seed_window; });
      ++in_flight;
    }
    auto username = "cb_" + std::to_string(i);
    auto uid = "u-cb" + std::to_string(i);
    auto sid = hex_of(rng, 32);
    auto secret = hex_of(rng, 64);
    users[static_cast<size_t>(i)] = {uid, sid + "." + secret};
    session_info info{sid, uid, username, expires};
    create_session_cmd session{info, sha256_hex(secret)};
    p.create_user(username, create_user_cmd{uid, hash},
                  [&p, session, uid, fund, done](caf::expected<user_credentials> r) {
                    if (!r) {
                      std::fprintf(stderr, "wager-bench: user %s: %s\n", uid.c_str(),
                                   message_of(r.error()).c_str());
                      return done(false);
                    }
                    p.create_session(session, [&p, uid, fund,
                                               done](caf::expected<session_info> r2) {
                      if (!r2) {
                        std::fprintf(stderr, "wager-bench: session of %s: %s\n", uid.c_str(),
                                     message_of(r2.error()).c_str());
                        return done(false);
                      }
                      p.deposit(user_id{uid}, request_id{"fund-cb"}, money{fund},
                                [done](caf::expected<wallet_receipt> r3) {
                                  done(static_cast<bool>(r3));
                                });
                    });
                  });
  }
  {
    std::unique_lock lock{m};
    cv.wait(lock, [&] { return finished == o.wallets; });
  }
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  p.stop();
  started->reset();
  std::ofstream out{o.tokens_file, std::ios::trunc};
  for (auto& u : users)
    out << u.user_id << ' ' << u.token << '\n';
  out.close();
  json::object line{
    {"mode", "cluster-seed"},
    {"users", o.wallets},
    {"fund_minor", fund},
    {"failed", failures.load()},
    {"seconds", secs},
    {"users_per_s", o.wallets / std::max(secs, 1e-9)},
    {"machine", std::move(facts)},
  };
  std::printf("%s\n", json_line(line).c_str());
  std::fflush(stdout);
  return failures == 0 && out ? 0 : 2;
}

// -- cluster-live ------------------------------------------------------------

int run_cluster_live(const bench_options& o) {
  auto nodes = nodes_of(o.urls);
  auto users = read_tokens(o.tokens_file);
  if (!nodes || !users || users->empty() || o.admin_key.empty()) {
    std::fprintf(stderr, "wager-bench: --mode cluster-live needs --url (one or more), "
                         "--admin-key and a --tokens-file from cluster-seed\n");
    return 2;
  }
  auto facts = machine_facts(o.data_dir);
  source_addresses src{std::random_device{}()};
  std::atomic<uint64_t> ok{0}, failed{0};
  std::map<int, uint64_t> statuses;
  std::mutex m;
  auto t0 = clock_type::now();
  std::vector<std::thread> threads;
  auto n = static_cast<size_t>(o.setup_connections);
  for (size_t t = 0; t < n; ++t)
    threads.emplace_back([&, t] {
      std::optional<blocking_client> c;
      int used = 0;
      for (size_t i = t; i < users->size(); i += n) {
        if (!c || used++ % live_requests_per_address == 0)
          c.emplace((*nodes)[(i / n + t) % nodes->size()], src.next());
        auto r = c->request("GET", "/v1/wallet", {}, (*users)[i].token);
        if (r.status == 200) {
          ++ok;
        } else {
          ++failed;
          std::lock_guard g{m};
          ++statuses[r.status];
        }
      }
    });
  for (auto& t : threads)
    t.join();
  auto secs = std::chrono::duration<double>(clock_type::now() - t0).count();
  json::object st;
  for (auto& [code, count] : statuses)
    st[std::to_string(code)] = count;
  json::object line{
    {"mode", "cluster-live"},
    {"users", static_cast<int64_t>(users->size())},
    {"nodes", static_cast<int64_t>(nodes->size())},
    {"connections", o.setup_connections},
    {"ok", ok.load()},
    {"failed", failed.load()},
    {"failed_statuses", std::move(st)},
    {"seconds", secs},
    {"wallets_per_s", static_cast<double>(users->size()) / std::max(secs, 1e-9)},
    {"entities", entities_of(*nodes, src, o.admin_key)},
  };
  if (!o.node_pids.empty())
    line["rss_mb"] = sum_rss(o.node_pids);
  line["machine"] = std::move(facts);
  std::printf("%s\n", json_line(line).c_str());
  std::fflush(stdout);
  return failed == 0 ? 0 : 2;
}

// -- cluster-probe -----------------------------------------------------------

namespace {

// What the probe's connections share. Touched only on the io thread, except
// the atomics.
struct probe_shared {
  const bench_options& o;
  std::vector<endpoint_address> survivors;
  source_addresses& src;
  clock_type::time_point t0;                  // the signal; set before the io thread starts
  std::atomic<int64_t> gone_us{-1};           // the victim's process gone, after t0
  std::atomic<bool> stopping{false};
  std::atomic<bool> load_closing{false};      // load clients send nothing new
  std::atomic<int> load_in_flight{0};
  std::vector<std::string> sample_tokens;
  std::vector<double> served_ms;              // per sample wallet; < 0 not yet
  size_t unserved = 0;
  std::atomic<bool> all_served{false};
  uint64_t poll_ok_before_gone = 0, poll_timeouts = 0;
  std::map<int, uint64_t> poll_statuses;      // non-200 answers to the sample's polls
  // The load.
  const std::vector<seeded_user>* users = nullptr;
  uint64_t load_sent = 0, load_ok = 0, load_errors = 0, load_unanswered = 0, load_429 = 0;
  std::map<int, uint64_t> load_statuses;      // non-200 answers sent after the signal
  std::vector<double> load_latencies_ms;      // sent after the signal
};

// One keep-alive connection that sends GET /v1/wallet with a token, again
// and again: a sample poller (until its wallet is served after the victim
// is gone) or a load client (a random user each time, until the end).
class wallet_poller : public std::enable_shared_from_this<wallet_poller> {
public:
  // sample < 0: a load client.
  wallet_poller(asio::io_context& ioc, probe_shared& s, size_t node, int sample,
                std::chrono::milliseconds interval, std::chrono::milliseconds timeout,
                uint64_t seed)
    : s_(s), to_(s.survivors[node % s.survivors.size()]), sample_(sample), interval_(interval),
      timeout_(timeout), stream_(ioc), timer_(ioc), rng_(seed) {}

  void start(std::chrono::milliseconds delay) { wait(delay); }

  // A load request still unanswered when the probe ends.
  bool in_flight_after_signal() const { return busy_ && sent_ >= s_.t0; }

private:
  bool done() const {
    if (sample_ < 0)
      return s_.stopping || s_.load_closing;
    return s_.stopping || s_.served_ms[static_cast<size_t>(sample_)] >= 0;
  }

  void wait(std::chrono::milliseconds d) {
    if (done())
      return;
    timer_.expires_after(d);
    timer_.async_wait([self = shared_from_this()](beast::error_code) {
      if (!self->done())
        self->connected_ ? self->send() : self->connect();
    });
  }

  void connect() {
    beast::error_code ec;
    auto& sock = stream_.socket();
    sock.close(ec);
    buffer_.clear();
    sock.open(tcp::v4(), ec);
    if (!ec)
      sock.bind({s_.src.next(), 0}, ec);
    if (ec)
      return failed();
    stream_.expires_after(timeout_);
    stream_.async_connect(tcp::endpoint{asio::ip::make_address(to_.host), to_.port},
                          [self = shared_from_this()](beast::error_code e) {
                            if (e)
                              return self->failed();
                            beast::error_code ignored;
                            self->stream_.socket().set_option(tcp::no_delay{true}, ignored);
                            self->connected_ = true;
                            self->send();
                          });
  }

  void send() {
    const std::string* token = nullptr;
    if (sample_ >= 0) {
      token = &s_.sample_tokens[static_cast<size_t>(sample_)];
    } else {
      auto& us = *s_.users;
      token = &us[rng_() % us.size()].token;
    }
    req_ = {http::verb::get, "/v1/wallet", 11};
    req_.set(http::field::host, to_.host);
    req_.set(http::field::authorization, "Bearer " + *token);
    req_.keep_alive(true);
    req_.prepare_payload();
    sent_ = clock_type::now();
    sent_after_gone_ = s_.gone_us >= 0 && std::chrono::duration_cast<std::chrono::microseconds>(
                                            sent_ - s_.t0).count() >= s_.gone_us;
    busy_ = true;
    if (sample_ < 0) {
      ++s_.load_in_flight;
      if (sent_ >= s_.t0)
        ++s_.load_sent;
    }
    stream_.expires_after(timeout_);
    exchange(stream_, buffer_, req_, res_, [self = shared_from_this()](beast::error_code e) {
      if (e)
        return self->failed();
      self->answered();
    });
  }

  void failed() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
    connected_ = false;
    if (busy_) {
      busy_ = false;
      if (sample_ >= 0) {
        ++s_.poll_timeouts;
      } else {
        --s_.load_in_flight;
        if (sent_ >= s_.t0 && !s_.stopping)
          ++s_.load_errors;
      }
    }
    wait(sample_ >= 0 ? interval_ : std::chrono::milliseconds{20});
  }

  void answered() {
    busy_ = false;
    if (sample_ < 0)
      --s_.load_in_flight;
    auto now = clock_type::now();
    int status = static_cast<int>(res_.result_int());
    if (!res_.keep_alive()) {
      beast::error_code ignored;
      stream_.socket().close(ignored);
      connected_ = false;
    }
    if (sample_ >= 0) {
      auto& served = s_.served_ms[static_cast<size_t>(sample_)];
      if (status == 200 && sent_after_gone_) {
        if (served < 0) {
          served = ms_since(s_.t0, now);
          if (--s_.unserved == 0)
            s_.all_served = true;
        }
        return;
      }
      if (status == 200)
        ++s_.poll_ok_before_gone;
      else
        ++s_.poll_statuses[status];
      return wait(interval_);
    }
    if (sent_ >= s_.t0 && !s_.stopping) {
      s_.load_latencies_ms.push_back(ms_since(sent_, now));
      if (status == 200)
        ++s_.load_ok;
      else if (status == 429)
        ++s_.load_429; // the gateway's per-address limit, not the drain
      else
        ++s_.load_statuses[status];
    }
    if (done())
      return;
    // A new source address now and then: the gateway allows 200 requests/s
    // per address.
    if (sample_ < 0 && ++requests_ % live_requests_per_address == 0) {
      beast::error_code ignored;
      stream_.socket().close(ignored);
      connected_ = false;
    }
    if (connected_)
      send();
    else
      wait(std::chrono::milliseconds{0});
  }

  probe_shared& s_;
  const endpoint_address& to_;
  int sample_;
  std::chrono::milliseconds interval_, timeout_;
  beast::tcp_stream stream_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  http::request<http::empty_body> req_;
  http::response<http::string_body> res_;
  std::mt19937_64 rng_;
  clock_type::time_point sent_;
  bool sent_after_gone_ = false;
  bool connected_ = false;
  bool busy_ = false;
  uint64_t requests_ = 0;
};

// The victim's process is gone: no /proc entry, or a zombie (its parent,
// the runner script, reaps it).
bool process_gone(int pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string text;
  if (!in || !std::getline(in, text))
    return true;
  auto paren = text.rfind(')');
  if (paren == std::string::npos || paren + 2 >= text.size())
    return true;
  auto state = text[paren + 2];
  return state == 'Z' || state == 'X';
}

// What one survivor's health said about the victim, from the signal on.
struct detection {
  std::string node_id;   // the survivor's, from its health
  double not_up_ms = -1; // first answer listing the victim other than up
  double down_ms = -1;   // first answer listing it down, or no longer listing it
  std::string seen;      // the statuses in order, "up,leaving,down"
  std::atomic<bool> down_seen{false}; // read by the main thread meanwhile
};

void watch_health(const probe_shared& s, const std::atomic<bool>& stop,
                  const endpoint_address& node, const std::string& victim,
                  asio::ip::address_v4 from, detection& d) {
  blocking_client c{node, from};
  while (!stop && d.down_ms < 0) {
    auto h = health_of(c, s.o.admin_key);
    auto now = clock_type::now();
    if (h.is_object() && h.as_object().contains("members")) {
      if (auto* id = h.as_object().if_contains("node_id"); id && id->is_string())
        d.node_id = std::string{id->as_string()};
      std::string status = "absent";
      for (auto& mem : h.at("members").as_array())
        if (mem.at("node_id").as_string() == victim)
          status = std::string{mem.at("status").as_string()};
      auto last = d.seen.substr(d.seen.rfind(',') == std::string::npos ? 0 : d.seen.rfind(',') + 1);
      if (d.seen.empty() || last != status)
        d.seen += (d.seen.empty() ? "" : ",") + status;
      if (status != "up" && d.not_up_ms < 0)
        d.not_up_ms = ms_since(s.t0, now);
      if ((status == "down" || status == "absent") && d.down_ms < 0) {
        d.down_ms = ms_since(s.t0, now);
        d.down_seen = true;
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  }
}

json::value ms_or_null(double v) {
  return v < 0 ? json::value(nullptr) : json::value(v);
}

} // namespace

int run_cluster_probe(const bench_options& o) {
  auto survivors = nodes_of(o.urls);
  auto users = read_tokens(o.tokens_file);
  auto victim_node = parse_http_url(o.victim_url);
  if (!survivors || !users || users->empty() || o.admin_key.empty() || o.victim.empty()
      || o.victim_pid <= 0 || !victim_node
      || std::find(o.members.begin(), o.members.end(), o.victim) == o.members.end()) {
    std::fprintf(stderr, "wager-bench: --mode cluster-probe needs --url (the survivors), "
                         "--admin-key, --tokens-file, --members, --victim (one of them), "
                         "--victim-url and --victim-pid\n");
    return 2;
  }
  auto facts = machine_facts(o.data_dir);
  source_addresses src{std::random_device{}()};

  // The victim's wallets: the shard owners the nodes compute with every
  // member up.
  auto owners = place_shards(o.shards, o.members);
  std::vector<size_t> victims;
  for (size_t i = 0; i < users->size(); ++i)
    if (owners[shard_of(entity_id{"wallet", (*users)[i].user_id}, o.shards)] == o.victim)
      victims.push_back(i);
  if (victims.empty()) {
    std::fprintf(stderr, "wager-bench: no seeded wallet is placed on %s\n", o.victim.c_str());
    return 2;
  }
  std::mt19937_64 rng{o.seed};
  std::shuffle(victims.begin(), victims.end(), rng);
  auto k = std::min(victims.size(), static_cast<size_t>(o.sample));

  json::object victim_before;
  {
    blocking_client c{*victim_node, src.next()};
    auto h = health_of(c, o.admin_key);
    if (h.is_object() && h.as_object().contains("entities"))
      victim_before = h.at("entities").as_object();
  }

  probe_shared s{o, *survivors, src};
  s.users = &*users;
  for (size_t i = 0; i < k; ++i)
    s.sample_tokens.push_back((*users)[victims[i]].token);
  s.served_ms.assign(k, -1);
  s.unserved = k;
  // Before the signal: far enough ahead that the load is running.
  s.t0 = clock_type::now() + std::chrono::milliseconds{o.load_connections > 0 ? 1000 : 200};

  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  std::vector<std::shared_ptr<wallet_poller>> load;
  for (int c = 0; c < o.load_connections; ++c) {
    load.push_back(std::make_shared<wallet_poller>(ioc, s, static_cast<size_t>(c), -1,
                                                   std::chrono::milliseconds{0},
                                                   std::chrono::milliseconds{30'000},
                                                   o.seed * 7919 + static_cast<uint64_t>(c)));
    load.back()->start(std::chrono::milliseconds{0});
  }
  // Sample wallet 0 gets eight pollers, staggered: its first answer is
  // resolved to about interval / 8.
  constexpr int first_pollers = 8;
  auto interval = std::chrono::milliseconds{100};
  auto timeout = std::chrono::milliseconds{o.poll_timeout_ms};
  auto until_signal =
    std::chrono::duration_cast<std::chrono::milliseconds>(s.t0 - clock_type::now());
  for (size_t i = 0; i < k; ++i) {
    int n = i == 0 ? first_pollers : 1;
    for (int j = 0; j < n; ++j) {
      auto p = std::make_shared<wallet_poller>(ioc, s, i + static_cast<size_t>(j), static_cast<int>(i),
                                               interval, timeout, 0);
      // Spread over one interval so the first polls do not all hit at once.
      auto stagger = i == 0 ? interval * j / n
                            : std::chrono::milliseconds{static_cast<int64_t>(i % 50) * 2};
      p->start(until_signal + stagger);
    }
  }
  std::thread io{[&] { ioc.run(); }};

  // t0 stays the planned instant (the io thread reads it); the signal goes
  // within microseconds of it.
  std::this_thread::sleep_until(s.t0);
  int sig = o.signal == "kill" ? SIGKILL : SIGTERM;
  if (::kill(o.victim_pid, sig) != 0) {
    std::fprintf(stderr, "wager-bench: cannot signal %d\n", o.victim_pid);
    s.stopping = true;
    work.reset();
    ioc.stop();
    io.join();
    return 2;
  }
  std::vector<detection> detections(survivors->size());
  std::vector<std::thread> watchers;
  std::atomic<bool> watch_stop{false};
  for (size_t i = 0; i < survivors->size(); ++i)
    watchers.emplace_back([&, i, from = src.next()] {
      watch_health(s, watch_stop, (*survivors)[i], o.victim, from, detections[i]);
    });
  auto deadline = s.t0 + std::chrono::duration_cast<clock_type::duration>(
                           std::chrono::duration<double>(o.seconds));
  while (clock_type::now() < deadline && s.gone_us < 0) {
    if (process_gone(o.victim_pid))
      s.gone_us = std::chrono::duration_cast<std::chrono::microseconds>(clock_type::now() - s.t0)
                    .count();
    else
      std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
  while (clock_type::now() < deadline && !s.all_served)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  // The load a little longer: what the survivors answer right after; then
  // nothing new, and the requests still out get their answer (a request
  // relayed to a lost node waits for the node's call timeout, 15 s).
  auto served_at = clock_type::now();
  if (o.load_connections > 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds{500});
    s.load_closing = true;
    auto give_up = clock_type::now() + std::chrono::seconds{35};
    while (s.load_in_flight > 0 && clock_type::now() < give_up)
      std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  auto end = clock_type::now();
  // The survivors' health until each shows the victim down (a drained node
  // is first `leaving`), at most 10 s more.
  auto watch_until = std::min(deadline, clock_type::now() + std::chrono::seconds{10});
  auto all_down = [&] {
    return std::all_of(detections.begin(), detections.end(),
                       [](const detection& d) { return d.down_seen.load(); });
  };
  while (clock_type::now() < watch_until && !all_down())
    std::this_thread::sleep_for(std::chrono::milliseconds{10});
  watch_stop = true;
  for (auto& w : watchers)
    w.join();
  s.stopping = true;
  // Every handler runs on `io`: post the tally there so it sees a settled state.
  std::promise<void> tallied;
  asio::post(ioc, [&] {
    for (auto& l : load)
      if (l->in_flight_after_signal())
        ++s.load_unanswered;
    tallied.set_value();
  });
  tallied.get_future().wait();
  work.reset();
  ioc.stop();
  io.join();

  std::vector<double> served;
  for (auto v : s.served_ms)
    if (v >= 0)
      served.push_back(v);
  std::sort(served.begin(), served.end());
  json::object detect, down, seen;
  double detect_max = -1, down_max = -1;
  bool all_detected = true;
  for (size_t i = 0; i < survivors->size(); ++i) {
    auto name = detections[i].node_id.empty() ? o.urls[i] : detections[i].node_id;
    detect[name] = ms_or_null(detections[i].not_up_ms);
    down[name] = ms_or_null(detections[i].down_ms);
    seen[name] = detections[i].seen;
    all_detected = all_detected && detections[i].down_ms >= 0;
    detect_max = std::max(detect_max, detections[i].not_up_ms);
    down_max = std::max(down_max, detections[i].down_ms);
  }
  json::object poll_statuses, load_statuses;
  for (auto& [c, n] : s.poll_statuses)
    poll_statuses[std::to_string(c)] = n;
  for (auto& [c, n] : s.load_statuses)
    load_statuses[std::to_string(c)] = n;
  json::object line{
    {"mode", o.signal == "kill" ? "cluster-failover" : "cluster-drain"},
    {"signal", o.signal == "kill" ? "KILL" : "TERM"},
    {"nodes", static_cast<int64_t>(o.members.size())},
    {"victim", o.victim},
    {"shards", o.shards},
    {"users", static_cast<int64_t>(users->size())},
    {"victim_wallets_placed", static_cast<int64_t>(victims.size())},
    {"victim_entities_before", std::move(victim_before)},
    {"sample", static_cast<int64_t>(k)},
    {"poll_timeout_ms", o.poll_timeout_ms},
    {"not_up_ms", std::move(detect)},
    {"down_ms", std::move(down)},
    {"victim_status_seen", std::move(seen)},
    {"detect_ms", ms_or_null(all_detected ? down_max : -1)},
    {"exit_ms", s.gone_us < 0 ? json::value(nullptr) : json::value(s.gone_us / 1000.0)},
    {"first_served_ms", ms_or_null(s.served_ms[0])},
    {"all_served_ms", ms_or_null(s.all_served ? served.back() : -1)},
    {"served", static_cast<int64_t>(served.size())},
    {"served_p50_ms", served.empty() ? json::value(nullptr) : json::value(quantile(served, 0.5))},
    {"poll_ok_before_gone", s.poll_ok_before_gone},
    {"poll_timeouts", s.poll_timeouts},
    {"poll_statuses", std::move(poll_statuses)},
  };
  if (o.load_connections > 0) {
    auto& l = s.load_latencies_ms;
    std::sort(l.begin(), l.end());
    uint64_t bad = s.load_errors + s.load_unanswered;
    for (auto& [c, n] : s.load_statuses)
      bad += n;
    line["load"] = json::object{
      {"connections", o.load_connections},
      {"seconds", ms_since(s.t0, end) / 1000.0},
      {"sent", s.load_sent},
      {"ok", s.load_ok},
      {"failed", bad},
      {"failed_statuses", std::move(load_statuses)},
      {"errors", s.load_errors},
      {"rate_limited", s.load_429},
      {"unanswered_at_end", s.load_unanswered},
      {"p50_ms", l.empty() ? json::value(nullptr) : json::value(quantile(l, 0.5))},
      {"p99_ms", l.empty() ? json::value(nullptr) : json::value(quantile(l, 0.99))},
      {"max_ms", l.empty() ? json::value(nullptr) : json::value(l.back())},
    };
  }
  line["seconds"] = ms_since(s.t0, served_at) / 1000.0;
  line["survivor_entities_after"] = entities_of(*survivors, src, o.admin_key);
  if (!o.node_pids.empty())
    line["survivors_rss_mb"] = sum_rss(o.node_pids);
  line["machine"] = std::move(facts);
  std::printf("%s\n", json_line(line).c_str());
  std::fflush(stdout);
  return s.all_served ? 0 : 1;
}

} // namespace wager::bench
