// --mode http: the workload through a running wager-node's gateway, as
// clients meet it: markets created and opened with the admin key, one user
// per wallet (sign-up, log-in, deposit), then N keep-alive connections on a
// couple of Asio threads, each a closed-loop client, while a feed thread
// moves prices through the admin endpoint. With --data-dir (the node's), the
// journal is audited at the end.
//
// With several --url (nodes of one cluster sharing a journal), connection i
// goes to url i mod n; setup and the feed go through the first.

#include "http_client.hpp"
#include "invariants.hpp"
#include "modes.hpp"
#include "workload.hpp"

#include <wager/actors/money.hpp>

#include <boost/asio.hpp>
#include <boost/beast/http.hpp>
#include <boost/json.hpp>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <mutex>
#include <thread>
#include <unistd.h>

namespace wager::bench {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace json = boost::json;
using tcp = asio::ip::tcp;

namespace {

// Sign-ups and log-ins per source address before the next address: the
// gateway allows bursts of 10 sign-ups and 20 log-ins per address.
inline constexpr int users_per_setup_address = 5;
// Times one bettor connection reconnects after errors before it gives up.
inline constexpr int reconnects_max = 100;
inline constexpr auto bet_timeout = std::chrono::seconds{30};

// The substring of `body` after `"key":"` up to the next quote.
std::string string_field(const std::string& body, const std::string& key) {
  auto needle = "\"" + key + "\":\"";
  auto i = body.find(needle);
  if (i == std::string::npos)
    return {};
  i += needle.size();
  return body.substr(i, body.find('"', i) - i);
}

// Reads a market's current prices from its JSON into the board.
bool read_prices(const std::string& body, int m, price_board& board) {
  json::error_code ec;
  auto doc = json::parse(body, ec);
  if (ec || !doc.is_object() || !doc.as_object().contains("selections"))
    return false;
  for (auto& s : doc.at("selections").as_array()) {
    auto id = std::string{s.at("selection_id").as_string()};
    auto p = parse_price(std::string{s.at("price").as_string()});
    if (id.size() < 2 || !p)
      return false;
    board.set(m, std::stoi(id.substr(1)), p->hundredths);
  }
  return true;
}

// Runs `work(i, client)` for i in [0, total) on `threads` threads, each with
// its own connection (a new source address every `per_address` items).
template <class Work>
bool on_threads(const bench_options& o, const endpoint_address& to, source_addresses& src,
                int total, int per_address, Work work) {
  std::atomic<bool> ok{true};
  std::vector<std::thread> threads;
  for (int t = 0; t < o.setup_connections; ++t)
    threads.emplace_back([&, t] {
      std::optional<blocking_client> c;
      int used = 0;
      for (int i = t; i < total && ok; i += o.setup_connections) {
        if (!c || (per_address > 0 && used++ % per_address == 0))
          c.emplace(to, src.next());
        if (!work(i, *c))
          ok = false;
      }
    });
  for (auto& t : threads)
    t.join();
  return ok;
}

bool setup_markets(const bench_options& o, const endpoint_address& to, source_addresses& src,
                   price_board& board) {
  return on_threads(o, to, src, o.markets, 0, [&](int m, blocking_client& c) {
    json::array sels;
    for (int s = 0; s < selections_per_market; ++s)
      sels.push_back(json::object{{"selection_id", selection_name(s)},
                                  {"name", "Selection"},
                                  {"price", format_price(price{board.get(m, s)})}});
    json::object def{{"market_id", market_name(m)}, {"event", "Match day"}, {"name", "Winner"},
                     {"selections", std::move(sels)},
                     {"limits", json::object{{"max_stake", market_max_stake_minor},
                                             {"max_liability", market_max_liability_minor}}}};
    auto created = c.request("POST", "/v1/admin/markets", json::serialize(def), o.admin_key);
    // 409: made by an earlier run against this node; its prices are read back.
    if (created.status != 201 && created.status != 409) {
      std::fprintf(stderr, "wager-bench: create market %d: %d %s\n", m, created.status,
                   created.body.c_str());
      return false;
    }
    auto opened = c.request("POST", "/v1/admin/markets/" + market_name(m) + "/status",
                            R"({"status":"open"})", o.admin_key);
    if (opened.status != 200)
      opened = c.request("GET", "/v1/markets/" + market_name(m), {}, o.admin_key);
    if (opened.status != 200 || !read_prices(opened.body, m, board)
        || string_field(opened.body, "status") != "open") {
      std::fprintf(stderr, "wager-bench: open market %d: %d %s\n", m, opened.status,
                   opened.body.c_str());
      return false;
    }
    return true;
  });
}

// One user per wallet: sign up, log in, deposit. Returns the tokens.
std::optional<std::vector<std::string>> setup_users(const bench_options& o,
                                                    const endpoint_address& to,
                                                    source_addresses& src,
                                                    const std::string& tag) {
  std::vector<std::string> tokens(static_cast<size_t>(o.wallets));
  auto fund = funding_per_wallet(o);
  bool ok = on_threads(o, to, src, o.wallets, users_per_setup_address, [&](int u, blocking_client& c) {
    auto name = "wb_" + tag + "_" + std::to_string(u);
    auto creds = json::serialize(json::object{{"username", name}, {"password", bench_password}});
    auto made = c.request("POST", "/v1/users", creds);
    auto session = c.request("POST", "/v1/sessions", creds);
    auto token = string_field(session.body, "token");
    if (made.status != 201 || session.status != 201 || token.empty()) {
      std::fprintf(stderr, "wager-bench: user %s: %d %s / %d %s\n", name.c_str(), made.status,
                   made.body.c_str(), session.status, session.body.c_str());
      return false;
    }
    auto dep = c.request("POST", "/v1/wallet/deposits",
                         json::serialize(json::object{{"request_id", "fund-" + tag},
                                                      {"amount", fund}}),
                         token);
    if (dep.status != 201) {
      std::fprintf(stderr, "wager-bench: deposit %s: %d %s\n", name.c_str(), dep.status,
                   dep.body.c_str());
      return false;
    }
    tokens[static_cast<size_t>(u)] = std::move(token);
    return true;
  });
  if (!ok)
    return std::nullopt;
  return tokens;
}

// The background feed through POST /v1/admin/markets/{id}/prices.
class http_feed {
public:
  http_feed(const bench_options& o, const endpoint_address& to, source_addresses& src,
            price_board& board)
    : thread_([this, &o, to, from = src.next(), &board] { run(o, to, from, board); }) {}
  ~http_feed() {
    running_ = false;
    thread_.join();
  }
  uint64_t changes() const { return changes_; }
  uint64_t failures() const { return failures_; }

private:
  void run(const bench_options& o, endpoint_address to, asio::ip::address_v4 from,
           price_board& board) {
    blocking_client c{std::move(to), from};
    std::mt19937_64 rng{o.seed * 31 + 7};
    auto period = std::chrono::duration_cast<clock_type::duration>(
      std::chrono::duration<double>(1.0 / std::max(0.001, o.feed_per_s)));
    auto next = clock_type::now();
    while (running_) {
      auto m = static_cast<int>(rng() % static_cast<uint64_t>(board.markets()));
      auto s = static_cast<int>(rng() % selections_per_market);
      auto pr = static_cast<int32_t>(price_low + static_cast<int32_t>(rng() % (price_high - price_low + 1)));
      auto body = R"({"prices":{"s)" + std::to_string(s) + R"(":")" + format_price(price{pr})
                  + R"("}})";
      auto r = c.request("POST", "/v1/admin/markets/" + market_name(m) + "/prices", body,
                         o.admin_key);
      if (r.status == 200) {
        board.set(m, s, pr);
        ++changes_;
      } else {
        ++failures_;
      }
      next += period;
      std::this_thread::sleep_until(next);
    }
  }

  std::atomic<bool> running_{true};
  std::atomic<uint64_t> changes_{0}, failures_{0};
  std::thread thread_;
};

// What every bettor connection of one configuration shares.
struct bettor_pool {
  const bench_options& o;
  std::vector<endpoint_address> to; // connection i goes to to[i % size]
  const std::vector<std::string>& tokens;
  source_addresses& src;
  std::vector<bettor> bettors;
  std::vector<run_record> records;
  std::atomic<bool> running{true};
  std::mutex m;
  std::condition_variable cv;
  int active = 0;

  void finished() {
    std::lock_guard g{m};
    if (--active == 0)
      cv.notify_all();
  }
};

// One keep-alive connection, one bet in flight at a time.
class bet_connection : public std::enable_shared_from_this<bet_connection> {
public:
  bet_connection(asio::io_context& ioc, bettor_pool& pool, size_t index)
    : ioc_(ioc), pool_(pool), index_(index), to_(pool.to[index % pool.to.size()]),
      stream_(ioc) {}

  void start() { connect(); }

private:
  void connect() {
    buffer_.clear();
    beast::error_code ec;
    auto& s = stream_.socket();
    s.close(ec);
    s.open(tcp::v4(), ec);
    if (!ec)
      s.bind({pool_.src.next(), 0}, ec);
    if (ec)
      return pool_.finished();
    stream_.expires_after(bet_timeout);
    tcp::endpoint to{asio::ip::make_address(to_.host), to_.port};
    stream_.async_connect(to, [self = shared_from_this()](beast::error_code e) {
      if (e)
        return self->failed();
      beast::error_code ignored;
      self->stream_.socket().set_option(tcp::no_delay{true}, ignored);
      self->send();
    });
  }

  void failed() {
    ++pool_.records[index_].failed;
    if (!pool_.running || ++reconnects_ > reconnects_max)
      return pool_.finished();
    connect();
  }

  void send() {
    if (!pool_.running)
      return pool_.finished();
    cur_ = pool_.bettors[index_].next();
    std::string body;
    body.reserve(200);
    if (cur_.legs.empty()) {
      body += R"({"request_id":")" + cur_.request + R"(","market_id":"m)"
              + std::to_string(cur_.market) + R"(","selection_id":"s)"
              + std::to_string(cur_.selection) + R"(","stake":)"
              + std::to_string(cur_.stake_minor) + R"(,"price":")"
              + format_price(price{cur_.price_hundredths}) + R"(","accept":"exact"})";
    } else {
      body += R"({"request_id":")" + cur_.request + R"(","type":")" + cur_.slip_type
              + R"(","stake":)" + std::to_string(cur_.stake_minor) + R"(,"legs":[)";
      for (size_t i = 0; i < cur_.legs.size(); ++i)
        body += std::string{i == 0 ? "" : ","} + R"({"market_id":"m)"
                + std::to_string(cur_.legs[i].market) + R"(","selection_id":"s)"
                + std::to_string(cur_.legs[i].selection) + R"(","price":")"
                + format_price(price{cur_.legs[i].price_hundredths}) + R"("})";
      body += "]}";
    }
    req_ = {http::verb::post, "/v1/bets", 11};
    req_.set(http::field::host, to_.host);
    req_.set(http::field::authorization,
             "Bearer " + pool_.tokens[static_cast<size_t>(cur_.wallet)]);
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(true);
    req_.body() = std::move(body);
    req_.prepare_payload();
    t0_ = clock_type::now();
    stream_.expires_after(bet_timeout);
    exchange(stream_, buffer_, req_, res_, [self = shared_from_this()](beast::error_code e) {
      if (e)
        return self->failed();
      self->answered();
    });
  }

  void answered() {
    auto& rec = pool_.records[index_];
    auto status = res_.result_int();
    auto& body = res_.body();
    rec.latencies_ms.push_back(
      std::chrono::duration<double, std::milli>(clock_type::now() - t0_).count());
    rec.stale_sent += cur_.stale ? 1 : 0;
    rec.repeats += cur_.repeat ? 1 : 0;
    first_answer a;
    bool compare = true;
    if (status == 201) {
      ++rec.accepted;
      a = {true, string_field(body, "bet_id")};
      auto legs = cur_.legs.empty() ? 1 : cur_.legs.size();
      if (!cur_.legs.empty()) {
        ++rec.slips_accepted;
        rec.legs_accepted += legs;
      }
      if (!cur_.repeat) {
        rec.accepted_bets.push_back(a.value);
        rec.accepted_legs += legs;
      }
    } else if (status == 409 || status == 422) {
      a = {false, string_field(body, "code")};
      ++rec.rejected;
      rec.price_changed += a.value == "price_changed" ? 1 : 0;
    } else if (status == 429) {
      ++rec.rate_limited;
      compare = false;
    } else {
      ++rec.failed;
      compare = false;
    }
    if (compare && !pool_.bettors[index_].answered(cur_, a))
      ++rec.repeat_mismatches;
    if (!res_.keep_alive()) {
      beast::error_code ignored;
      stream_.socket().close(ignored);
      if (!pool_.running)
        return pool_.finished();
      return connect();
    }
    send();
  }

  asio::io_context& ioc_;
  bettor_pool& pool_;
  size_t index_;
  const endpoint_address& to_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  http::request<http::string_body> req_;
  http::response<http::string_body> res_;
  bet_request cur_;
  clock_type::time_point t0_;
  int reconnects_ = 0;
};

run_record run_bettors(const bench_options& o, const std::vector<endpoint_address>& to,
                       const std::vector<std::string>& tokens, source_addresses& src,
                       const zipf_markets& zipf, const price_board& board, const std::string& tag,
                       int clients) {
  bettor_pool pool{o, to, tokens, src, {}, std::vector<run_record>(static_cast<size_t>(clients))};
  for (int c = 0; c < clients; ++c)
    pool.bettors.emplace_back(o, zipf, board,
                              tag + "-" + std::to_string(clients) + "-" + std::to_string(c) + "-",
                              o.seed * 1000003 + static_cast<uint64_t>(c));
  pool.active = clients;
  asio::io_context ioc;
  auto work = asio::make_work_guard(ioc);
  for (int c = 0; c < clients; ++c)
    std::make_shared<bet_connection>(ioc, pool, static_cast<size_t>(c))->start();
  std::vector<std::thread> threads;
  for (int t = 0; t < std::max(1, o.io_threads); ++t)
    threads.emplace_back([&] { ioc.run(); });
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  pool.running = false;
  {
    std::unique_lock lock{pool.m};
    pool.cv.wait(lock, [&] { return pool.active == 0; });
  }
  work.reset();
  ioc.stop();
  for (auto& t : threads)
    t.join();
  run_record all;
  for (auto& r : pool.records)
    all.merge(std::move(r));
  return all;
}

std::string random_tag() {
  std::random_device rd;
  static const char* digits = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string tag;
  for (int i = 0; i < 6; ++i)
    tag += digits[rd() % 36];
  return tag;
}

} // namespace

int run_http(const bench_options& o) {
  std::vector<endpoint_address> nodes;
  for (auto& u : o.urls) {
    auto a = parse_http_url(u);
    if (!a) {
      nodes.clear();
      break;
    }
    nodes.push_back(*a);
  }
  if (nodes.empty() || o.admin_key.empty()) {
    std::fprintf(stderr, "wager-bench: --mode http needs --url http://HOST:PORT[,...] and --admin-key\n");
    return 2;
  }
  auto to = &nodes.front(); // setup and the feed
  auto tag = random_tag();
  source_addresses src{std::random_device{}()};
  auto journal = o.data_dir.empty()
                   ? std::string{}
                   : (std::filesystem::path{o.data_dir} / "journal.db").string();
  // Bets already in the node's journal (earlier runs) are not this run's.
  uint64_t bets_before = 0;
  if (!journal.empty()) {
    auto before = check_invariants(journal, 0, 0);
    if (auto* rows = before.detail.if_contains("bet_rows"))
      bets_before = rows->to_number<uint64_t>();
  }
  auto facts = machine_facts(o.data_dir);
  price_board board{o.markets, o.seed};
  zipf_markets zipf{o.markets, o.zipf_s};
  auto t0 = clock_type::now();
  if (!setup_markets(o, *to, src, board)) {
    std::fprintf(stderr, "wager-bench: market setup failed\n");
    return 2;
  }
  auto tokens = setup_users(o, *to, src, tag);
  if (!tokens) {
    std::fprintf(stderr, "wager-bench: user setup failed\n");
    return 2;
  }
  auto setup_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  std::vector<json::object> lines;
  uint64_t accepted_bets = 0, mismatches = 0;
  {
    http_feed feed{o, *to, src, board};
    for (int clients : o.clients) {
      auto c0 = clock_type::now();
      auto changes0 = feed.changes();
      auto rec = run_bettors(o, nodes, *tokens, src, zipf, board, tag, clients);
      auto secs = std::chrono::duration<double>(clock_type::now() - c0).count();
      accepted_bets += rec.accepted_legs;
      mismatches += rec.repeat_mismatches;
      auto line = result_line(o, clients, secs, rec);
      line["nodes"] = static_cast<int64_t>(nodes.size());
      line["setup_seconds"] = setup_s;
      line["feed_changes"] = feed.changes() - changes0;
      line["feed_failures"] = feed.failures();
      if (!o.node_pids.empty()) {
        double now = 0, peak = 0;
        for (int pid : o.node_pids) {
          now += rss_mb(pid, false);
          peak += rss_mb(pid, true);
        }
        line["rss_mb"] = now;
        line["peak_rss_mb"] = peak;
      } else {
        line["rss_mb"] = nullptr; // the node's; give --node-pid
      }
      lines.push_back(std::move(line));
    }
  }
  invariants_result inv;
  if (journal.empty()) {
    inv.detail["error"] = "not checked: give --data-dir (the node's) for the audit";
  } else {
    inv = check_invariants(journal, bets_before + accepted_bets, mismatches);
  }
  for (auto& line : lines) {
    line["invariants_ok"] = inv.ok;
    line["invariants"] = inv.detail;
    line["machine"] = facts;
    std::printf("%s\n", json_line(line).c_str());
  }
  std::fflush(stdout);
  return inv.ok ? 0 : 1;
}

} // namespace wager::bench
