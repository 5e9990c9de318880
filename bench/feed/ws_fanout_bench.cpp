// Feed-to-WebSocket push latency: the node's edge as a client sees it. One
// process runs a platform, the feed ingest, the HTTP server with the stream
// (make_stream_handler) and N WebSocket clients (Beast, one I/O thread), each
// subscribed to one of M markets; odds changes are submitted to the ingest
// at R per second for T seconds, and each client times every price frame
// from just before its change was submitted to the frame's arrival.
//
//   wager_bench_ws_fanout [--sessions N] [--markets M] [--rate R] [--seconds T]
//                         [--data-dir DIR]
//
// Tokens are not checked (a validator that accepts "u<i>" as user u<i>):
// authentication is not on the measured path. Prices conflate per market in
// a session's outbox (latest wins), so a session may see fewer frames than
// changes when it falls behind; `frames` says how many arrived.

#include <wager/actors/feed.hpp>
#include <wager/actors/platform.hpp>
#include <wager/gateway/http_server.hpp>
#include <wager/gateway/stream.hpp>
#include <wager/wager.hpp>

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace wager;
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace json = boost::json;
using clock_type = std::chrono::steady_clock;

namespace {

struct config {
  int sessions = 1'000;
  int markets = 100;
  int rate = 10'000;
  int seconds = 10;
  std::string data_dir = "bench-ws-data";
};

config parse(int argc, char** argv) {
  config c;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--sessions") c.sessions = std::stoi(v);
    else if (k == "--markets") c.markets = std::stoi(v);
    else if (k == "--rate") c.rate = std::stoi(v);
    else if (k == "--seconds") c.seconds = std::stoi(v);
    else if (k == "--data-dir") c.data_dir = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", k.c_str());
      std::exit(2);
    }
  }
  return c;
}

int64_t now_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(clock_type::now().time_since_epoch())
    .count();
}

std::string market_name(int i) {
  return "wm" + std::to_string(i);
}

std::string line(const json::object& o) {
  return json::serialize(o);
}

// Submit times by market and version offset, read by the client thread.
struct sent_times {
  std::vector<uint64_t> base;
  std::vector<std::vector<std::atomic<int64_t>>> at;
};

struct results {
  std::mutex mutex;
  std::vector<double> ms;
  std::atomic<uint64_t> frames{0};
  std::atomic<int> subscribed{0};
  std::atomic<int> failed{0};
};

// One WebSocket client: connect, auth, subscribe, then read forever.
class session : public std::enable_shared_from_this<session> {
public:
  session(asio::io_context& ioc, int index, int market, sent_times& sent, results& out)
    : ws_(asio::make_strand(ioc)), index_(index), market_(market), sent_(sent), out_(out) {}

  void start(const asio::ip::tcp::endpoint& to) {
    beast::get_lowest_layer(ws_).async_connect(
      to, [self = shared_from_this()](beast::error_code ec) {
        if (ec)
          return self->fail();
        self->ws_.async_handshake("127.0.0.1", "/v1/stream", [self](beast::error_code ec) {
          if (ec)
            return self->fail();
          self->send_all();
        });
      });
  }

private:
  void fail() { out_.failed.fetch_add(1); }

  void send_all() {
    hello_ = line(json::object{{"op", "auth"}, {"token", "u" + std::to_string(index_)}});
    ws_.async_write(asio::buffer(hello_), [self = shared_from_this()](beast::error_code ec,
                                                                       size_t) {
      if (ec)
        return self->fail();
      self->hello_ = line(json::object{
        {"op", "subscribe"}, {"markets", json::array{json::value(market_name(self->market_))}}});
      self->ws_.async_write(asio::buffer(self->hello_),
                            [self](beast::error_code ec, size_t) {
                              if (ec)
                                return self->fail();
                              self->read();
                            });
    });
  }

  void read() {
    ws_.async_read(buffer_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec)
        return;
      self->on_frame(beast::buffers_to_string(self->buffer_.data()));
      self->buffer_.consume(self->buffer_.size());
      self->read();
    });
  }

  void on_frame(const std::string& text) {
    auto received = now_ns();
    boost::system::error_code ec;
    auto doc = json::parse(text, ec);
    if (ec || !doc.is_object())
      return;
    auto& o = doc.as_object();
    auto type = o.at("type").as_string();
    if (type == "market") {
      out_.subscribed.fetch_add(1);
      return;
    }
    if (type != "price")
      return;
    auto version = static_cast<uint64_t>(o.at("version").as_int64());
    auto k = version - sent_.base[market_] - 1;
    if (k >= sent_.at[market_].size())
      return;
    auto t = sent_.at[market_][k].load(std::memory_order_acquire);
    if (t == 0)
      return;
    out_.frames.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock{out_.mutex};
    out_.ms.push_back(static_cast<double>(received - t) / 1e6);
  }

  websocket::stream<beast::tcp_stream> ws_;
  beast::flat_buffer buffer_;
  std::string hello_;
  int index_, market_;
  sent_times& sent_;
  results& out_;
};

double percentile(std::vector<double>& xs, double p) {
  if (xs.empty())
    return 0;
  auto k = static_cast<size_t>(p * static_cast<double>(xs.size() - 1));
  std::nth_element(xs.begin(), xs.begin() + static_cast<long>(k), xs.end());
  return xs[k];
}

} // namespace

int main(int argc, char** argv) {
  auto c = parse(argc, argv);
  std::filesystem::remove_all(c.data_dir);
  platform_options po;
  po.data_dir = c.data_dir;
  auto started = platform::start(po);
  if (!started) {
    std::fprintf(stderr, "cannot start: %s\n", message_of(started.error()).c_str());
    return 1;
  }
  auto& p = **started;
  feed_options fo;
  fo.silence = std::chrono::minutes{10};
  feed_ingest feed{p.system(), p.directory(), p.metrics(), fo};

  // The markets, through the feed.
  uint64_t seq = 0;
  auto header = [&](const char* type) {
    return json::object{{"type", type}, {"producer", "bench"}, {"seq", ++seq}, {"ts", 0}};
  };
  {
    std::vector<std::string> defs;
    for (int m = 0; m < c.markets; ++m) {
      auto o = header("market");
      o["market_id"] = market_name(m);
      o["event"] = "Bench";
      o["name"] = "Winner";
      o["selections"] = json::array{
        json::object{{"selection_id", "a"}, {"name", "A"}, {"price", "2.00"}},
        json::object{{"selection_id", "b"}, {"name", "B"}, {"price", "3.00"}}};
      o["limits"] = json::object{{"max_stake", 100000}, {"max_liability", 10000000}};
      o["status"] = "open";
      defs.push_back(line(o));
    }
    std::promise<feed_batch_result> done;
    feed.submit_batch(std::move(defs), [&](feed_batch_result r) { done.set_value(r); });
    if (done.get_future().get().applied != static_cast<uint64_t>(c.markets))
      return 1;
  }

  http_server_options so;
  so.port = 0;
  so.websocket = make_stream_handler(
    p,
    [](std::string token, std::function<void(std::optional<std::string>)> done) {
      done(std::optional<std::string>{token});
    });
  http_server server{so, [](http_request, http_responder) {}};
  if (auto err = server.start(); !err.empty()) {
    std::fprintf(stderr, "%s\n", err.c_str());
    return 1;
  }

  auto total = static_cast<size_t>(c.rate) * static_cast<size_t>(c.seconds);
  auto per_market = total / static_cast<size_t>(c.markets) + 1;
  sent_times sent;
  sent.base.resize(c.markets);
  sent.at.resize(c.markets);
  for (int m = 0; m < c.markets; ++m) {
    auto v = await<market_view>([&](auto done) { p.get_market(market_id{market_name(m)}, done); });
    if (!v)
      return 1;
    sent.base[m] = v->version;
    sent.at[m] = std::vector<std::atomic<int64_t>>(per_market);
  }

  results out;
  asio::io_context ioc;
  asio::ip::tcp::endpoint to{asio::ip::make_address("127.0.0.1"), server.port()};
  for (int s = 0; s < c.sessions; ++s)
    std::make_shared<session>(ioc, s, s % c.markets, sent, out)->start(to);
  std::thread client{[&] { ioc.run(); }};
  auto deadline = clock_type::now() + std::chrono::seconds{60};
  while (out.subscribed.load() + out.failed.load() < c.sessions && clock_type::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  if (out.failed.load() > 0 || out.subscribed.load() < c.sessions) {
    std::fprintf(stderr, "%d sessions subscribed, %d failed\n", out.subscribed.load(),
                 out.failed.load());
    return 1;
  }

  auto t0 = clock_type::now();
  std::vector<uint64_t> count(c.markets);
  for (size_t i = 0; i < total; ++i) {
    std::this_thread::sleep_until(
      t0 + std::chrono::nanoseconds{static_cast<int64_t>(1e9 * static_cast<double>(i) / c.rate)});
    int m = static_cast<int>(i % static_cast<size_t>(c.markets));
    auto k = count[m]++;
    auto o = header("odds_change");
    o["market_id"] = market_name(m);
    o["prices"] = json::object{{"a", k % 2 == 0 ? "2.02" : "2.00"}};
    auto text = line(o);
    sent.at[m][k].store(now_ns(), std::memory_order_release);
    feed.submit(text);
  }
  auto pace_s = std::chrono::duration<double>(clock_type::now() - t0).count();
  auto expected = total * static_cast<size_t>(c.sessions) / static_cast<size_t>(c.markets);
  // The tail: until every frame arrived or nothing arrives for 2 s.
  uint64_t last = 0;
  auto quiet_since = clock_type::now();
  while (out.frames.load() < expected
         && clock_type::now() - quiet_since < std::chrono::seconds{2}) {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    if (out.frames.load() != last) {
      last = out.frames.load();
      quiet_since = clock_type::now();
    }
  }
  std::vector<double> xs;
  {
    std::lock_guard lock{out.mutex};
    xs = out.ms;
  }
  json::object report{{"bench", "feed_ws_fanout"},
                      {"sessions", c.sessions},
                      {"markets", c.markets},
                      {"changes_per_s_asked", c.rate},
                      {"changes_per_s_sent", static_cast<double>(total) / pace_s},
                      {"frames_if_none_conflated", expected},
                      {"frames", out.frames.load()},
                      {"p50_ms", percentile(xs, 0.50)},
                      {"p99_ms", percentile(xs, 0.99)},
                      {"p999_ms", percentile(xs, 0.999)},
                      {"machine", std::to_string(std::thread::hardware_concurrency()) + " cores"}};
  std::printf("%s\n", json::serialize(report).c_str());
  std::fflush(stdout);
  server.stop();
  ioc.stop();
  client.join();
  feed.stop();
  p.stop();
  std::filesystem::remove_all(c.data_dir);
  return 0;
}
