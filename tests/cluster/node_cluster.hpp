#pragma once

// Real wager-node processes forming a cluster on 127.0.0.1, for tests: each
// started with port 0 everywhere, its ports read from its ready line, its
// view of the cluster read from GET /v1/admin/health and /metrics.

#include "support/http_client.hpp"
#include "support/postgres_server.hpp"
#include "support/process.hpp"
#include "support/test_network.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include "wager/cluster/placement.hpp"
#include "wager/runtime/entity.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <fstream>
#include <iterator>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

namespace wager::test {

inline const std::string cluster_admin_key = "cluster-test-admin-key";
inline const std::string cluster_secret = "a-cluster-secret-of-some-length";

// The journal of the cluster whose nodes are given `data_dir`: the SQLite
// file they share there, or, when WAGER_TEST_JOURNAL=postgresql
// (support/postgres_server.hpp), a schema of its own on the test process's
// server; each node then has a data dir of its own under `data_dir`, and
// the nodes share nothing but the server, as on hosts of their own.
inline std::string cluster_journal_url(const std::string& data_dir) {
  if (!journal_on_postgres())
    return {};
  auto schema = "c" + std::to_string(std::hash<std::string>{}(data_dir) % 1000000007);
  auto& pg = shared_postgres();
  pg.create_database("clusters");
  pg.create_schema("clusters", schema);
  return pg.url("clusters", schema);
}

// The wagerctl arguments that name that journal.
inline std::vector<std::string> cluster_journal_args(const std::string& data_dir) {
  auto url = cluster_journal_url(data_dir);
  if (url.empty())
    return {"--data-dir", data_dir};
  return {"--journal", url};
}

struct cluster_member_seen {
  std::string address;
  std::string status;
};

class cluster_test_node {
public:
  // Starts `wager-node` as `node_id`; args are added to the common ones.
  cluster_test_node(const std::string& data_dir, const std::string& node_id,
                    std::vector<std::string> extra,
                    std::map<std::string, std::string> env = {{"WAGER_CLUSTER_SECRET",
                                                              cluster_secret}})
    : id(node_id) {
    launch(data_dir, cluster_journal_url(data_dir), std::move(extra), std::move(env), nullptr);
  }

  // Starts `wager-node` as `node_id` on host `node_id` of `net` (in its
  // network namespace, on its address), with the journal at `journal_url`
  // and a data dir of its own under `data_dir`.
  cluster_test_node(const std::string& data_dir, const std::string& node_id,
                    const std::string& journal_url, std::vector<std::string> extra,
                    const test_network& net)
    : id(node_id) {
    launch(data_dir, journal_url, std::move(extra),
           {{"WAGER_CLUSTER_SECRET", cluster_secret}}, &net);
  }

private:
  void launch(const std::string& data_dir, const std::string& journal,
              std::vector<std::string> extra, std::map<std::string, std::string> env,
              const test_network* net) {
    auto own_dir = data_dir;
    if (!journal.empty()) {
      own_dir = data_dir + "/" + id;
      std::filesystem::create_directories(own_dir);
    }
    auto& node_id = id;
    std::vector<std::string> args{"--data-dir",     own_dir,           "--http-port", "0",
                                  "--feed-port",    "-1",              "--cluster-port", "0",
                                  "--node-id",      node_id,           "--admin-key",
                                  cluster_admin_key, "--log-level",     log_level()};
    if (!journal.empty()) {
      args.push_back("--journal");
      args.push_back(journal);
    }
    if (net != nullptr) {
      args.push_back("--http-host");
      args.push_back(net->address(id));
    }
    args.insert(args.end(), extra.begin(), extra.end());
    if (net == nullptr) {
      process = std::make_unique<child_process>(binary("apps/wager-node"), args, env);
      return;
    }
    args.insert(args.begin(), binary("apps/wager-node"));
    process = std::make_unique<child_process>("/usr/sbin/ip", net->exec_args(id, args), env);
  }

public:

  // Reads the ready line; false if the node did not get there.
  bool read_ready() {
    auto line = process->read_line(std::chrono::seconds{60});
    if (!line)
      return false;
    auto doc = boost::json::parse(*line).as_object();
    if (doc.at("event").as_string() != "ready")
      return false;
    http = std::string{doc.at("http").as_string()};
    cluster = std::string{doc.at("cluster").as_string()};
    return true;
  }

  // GET path with the admin key; nullopt when the node does not answer.
  std::optional<http_result> get(const std::string& path) {
    auto [host, port] = split_address(http);
    http_client client{host, port, std::chrono::milliseconds{1000}};
    auto r = client.get(path, cluster_admin_key);
    if (r.status == 0)
      return std::nullopt;
    return r;
  }

  std::optional<boost::json::object> health() {
    auto r = get("/v1/admin/health");
    if (!r || r->status != 200)
      return std::nullopt;
    return boost::json::parse(r->body).as_object();
  }

  // The members this node shows, by node id.
  std::map<std::string, cluster_member_seen> members() {
    std::map<std::string, cluster_member_seen> out;
    auto h = health();
    if (!h)
      return out;
    for (auto& m : h->at("members").as_array()) {
      auto& o = m.as_object();
      out[std::string{o.at("node_id").as_string()}] = {std::string{o.at("address").as_string()},
                                                       std::string{o.at("status").as_string()}};
    }
    return out;
  }

  std::string status_of(const std::string& member) {
    auto all = members();
    auto i = all.find(member);
    return i == all.end() ? std::string{} : i->second.status;
  }

  // The value of one series from /metrics, named with its labels as the
  // exposition writes them (`name{label="value"}`); 0 when absent or when
  // the node does not answer.
  double metric(const std::string& series) {
    auto r = get("/metrics");
    if (!r)
      return 0;
    auto key = "\n" + series + " ";
    auto at = r->body.find(key);
    if (at == std::string::npos)
      return 0;
    return std::stod(r->body.substr(at + key.size()));
  }

  // wager_cluster_member_incarnation{node_id="member"}; 0 when absent.
  double incarnation_of(const std::string& member) {
    return metric("wager_cluster_member_incarnation{node_id=\"" + member + "\"}");
  }

  // Live entities of `kind` on this node (health `entities`); -1 when the
  // node does not answer.
  int64_t live_entities(const std::string& kind) {
    auto h = health();
    if (!h)
      return -1;
    return h->at("entities").at(kind).as_int64();
  }

  // The shards this node says it owns; -1 when it does not answer.
  int64_t shards_owned() {
    auto h = health();
    if (!h)
      return -1;
    return h->at("shards_owned").as_int64();
  }

  std::string id;
  std::string http;
  std::string cluster;
  std::unique_ptr<child_process> process;

private:
  // warn, or WAGER_TEST_NODE_LOG_LEVEL to follow a run in the nodes' logs.
  static std::string log_level() {
    const char* level = std::getenv("WAGER_TEST_NODE_LOG_LEVEL");
    return level != nullptr && *level != '\0' ? level : "warn";
  }
};

// True when every node in `nodes` shows exactly `expected` (node id ->
// status).
inline bool all_see(std::vector<cluster_test_node*> nodes,
                    const std::map<std::string, std::string>& expected) {
  for (auto* n : nodes) {
    auto seen = n->members();
    if (seen.size() != expected.size())
      return false;
    for (auto& [id, status] : expected)
      if (!seen.count(id) || seen[id].status != status)
        return false;
  }
  return true;
}

// One call, repeated (same body, so the same request_id) while the node
// answers 503 (a shard whose owner is not known yet, or was just lost) or
// not at all, each try waiting up to `per_try`, until `deadline`. Between
// tries it backs off as a client should (25 ms, doubling up to 400 ms): a
// 503 can come back within a millisecond, and retrying at once would run
// into the per-address rate limit.
inline http_result call_until_answered(cluster_test_node& node, const std::string& method,
                                       const std::string& path, const std::string& body,
                                       const std::string& bearer,
                                       std::chrono::milliseconds per_try,
                                       std::chrono::milliseconds deadline) {
  auto until = std::chrono::steady_clock::now() + deadline;
  std::chrono::milliseconds pause{25};
  for (;;) {
    auto [host, port] = split_address(node.http);
    http_client client{host, port, per_try};
    auto r = client.request(method, path, body, bearer);
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    if ((r.status != 0 && r.status != 503) || left.count() <= 0)
      return r;
    std::this_thread::sleep_for(std::min(pause, left));
    pause = std::min(pause * 2, std::chrono::milliseconds{400});
  }
}

// call_until_answered with the bounds the cluster suites use: 15 s a try
// (platform_options::call_timeout, after which a node answers 503 itself),
// 40 s in all.
inline http_result call(cluster_test_node& node, const std::string& method,
                        const std::string& path, const std::string& body = {},
                        const std::string& bearer = cluster_admin_key) {
  return call_until_answered(node, method, path, body, bearer, std::chrono::milliseconds{15000},
                             std::chrono::milliseconds{40000});
}

// Clients placing bets from their own threads until told to stop, client
// t through through[t], each sending a bet every 20 ms and waiting for its
// answer (well under the per-address and per-session request limits).
// Each client does what a real one does: an answer 503 (the node says
// retry) or no answer at all is sent again, the same body and so the same
// request_id, until it is answered otherwise; a 201 on a retry is the bet
// the first try placed. Each such first answer is kept in `retried`, every
// final answer other than 201 in `failures`, and the bet ids acknowledged
// per user in `acknowledged`.
struct bet_stream {
  std::vector<cluster_test_node*> through;
  std::vector<std::string> tokens; // one user each
  int markets;
  std::string market_prefix;
  static constexpr int64_t stake = 100;
  std::atomic<bool> stop{false};
  std::atomic<int> placed{0};
  std::mutex mutex;
  std::vector<std::string> failures;                // REQUIRES: mutex is held
  std::vector<std::string> retried;                 // REQUIRES: mutex is held
  std::vector<std::set<std::string>> acknowledged;  // REQUIRES: mutex is held
  std::vector<std::thread> threads;

  std::string request_prefix; // before each request_id, so streams differ

  bet_stream(std::vector<cluster_test_node*> nodes, std::vector<std::string> user_tokens,
             int market_count, std::string prefix, std::string requests = {})
    : through(std::move(nodes)), tokens(std::move(user_tokens)), markets(market_count),
      market_prefix(std::move(prefix)), acknowledged(tokens.size()),
      request_prefix(std::move(requests)) {
    for (size_t t = 0; t < through.size(); ++t)
      threads.emplace_back([this, t] { run(t); });
  }

  void run(size_t t) {
    auto& node = *through[t];
    auto [host, port] = split_address(node.http);
    auto next = std::chrono::steady_clock::now();
    auto clients = through.size();
    for (size_t i = 0; !stop; ++i) {
      next += std::chrono::milliseconds{20};
      std::this_thread::sleep_until(next);
      size_t u = (i * clients + t) % tokens.size();
      auto request = request_prefix + "t" + std::to_string(t) + "-" + std::to_string(i);
      auto body = R"({"request_id":")" + request + R"(","market_id":")" + market_prefix
                  + std::to_string(i % static_cast<size_t>(markets))
                  + R"(","selection_id":"home","stake":)" + std::to_string(stake)
                  + R"(,"price":"2.00","accept":"exact"})";
      http_client client{host, port, std::chrono::milliseconds{15000}};
      auto r = client.request("POST", "/v1/bets", body, tokens[u]);
      if (r.status == 0 || r.status == 503) {
        {
          std::lock_guard guard{mutex};
          retried.push_back(node.id + " " + request + ": " + std::to_string(r.status) + " "
                            + r.body);
        }
        r = call_until_answered(node, "POST", "/v1/bets", body, tokens[u],
                                std::chrono::milliseconds{15000},
                                std::chrono::milliseconds{40000});
      }
      std::lock_guard guard{mutex};
      if (r.status == 201) {
        acknowledged[u].insert(std::string{boost::json::parse(r.body).at("bet_id").as_string()});
        ++placed;
      } else {
        failures.push_back(node.id + " " + request + ": " + std::to_string(r.status) + " "
                           + r.body);
      }
    }
  }

  void finish() {
    stop = true;
    for (auto& t : threads)
      t.join();
    threads.clear();
  }

  ~bet_stream() { finish(); }

  // The bets acknowledged to each user are exactly its open bets, and
  // exactly their stakes left its wallet (which held `deposit` before),
  // asked through `reads`.
  void check_wallets(cluster_test_node& reads, int64_t deposit) {
    std::lock_guard guard{mutex};
    for (size_t u = 0; u < tokens.size(); ++u) {
      CAPTURE(u);
      auto r = call(reads, "GET", "/v1/bets?status=open", {}, tokens[u]);
      REQUIRE_MESSAGE(r.status == 200, r.body);
      std::set<std::string> seen;
      auto doc = boost::json::parse(r.body);
      for (auto& bet : doc.at("bets").as_array())
        seen.insert(std::string{bet.at("bet_id").as_string()});
      CHECK(seen == acknowledged[u]);
      r = call(reads, "GET", "/v1/wallet", {}, tokens[u]);
      REQUIRE_MESSAGE(r.status == 200, r.body);
      auto wallet = boost::json::parse(r.body).as_object();
      CHECK(wallet.at("available").as_int64() + wallet.at("held").as_int64()
            == deposit - stake * static_cast<int64_t>(acknowledged[u].size()));
    }
  }
};

// The environment every test node gets: the shared cluster secret.
inline std::map<std::string, std::string> cluster_env() {
  return {{"WAGER_CLUSTER_SECRET", cluster_secret}};
}

// n-a, n-b and n-c on one --data-dir, n-b and n-c seeded with n-a; n-b is
// started with `b_env` (cluster_env() and what a test adds, such as a
// WAGER_CRASH_AT point). Constructed once every node sees all three up.
struct node_trio {
  explicit node_trio(const std::string& data_dir,
                     std::map<std::string, std::string> b_env = cluster_env()) {
    a.emplace(data_dir, "n-a", std::vector<std::string>{});
    REQUIRE(a->read_ready());
    b.emplace(data_dir, "n-b", std::vector<std::string>{"--seeds", a->cluster}, std::move(b_env));
    c.emplace(data_dir, "n-c", std::vector<std::string>{"--seeds", a->cluster});
    REQUIRE(b->read_ready());
    REQUIRE(c->read_ready());
    REQUIRE(wait_until([&] { return all_up(); }, std::chrono::seconds{20}));
  }

  // Whether every node sees all three up.
  bool all_up() {
    return all_see(nodes(), {{"n-a", "up"}, {"n-b", "up"}, {"n-c", "up"}});
  }

  std::vector<cluster_test_node*> nodes() { return {&*a, &*b, &*c}; }

  // Optional so that a test can stop one and start it again.
  std::optional<cluster_test_node> a;
  std::optional<cluster_test_node> b;
  std::optional<cluster_test_node> c;
};

// The shard count of a wager-node cluster (node_options::shards).
constexpr uint32_t cluster_shards = 256;

// The node that owns entity `kind/key` while `members` are up: the placement
// every node computes (rendezvous hashing over the up members).
inline std::string owner_among(const std::string& kind, const std::string& key,
                               const std::vector<std::string>& members) {
  return owner_of(shard_of(entity_id{kind, key}, cluster_shards), members);
}

// The first of prefix0, prefix1, ... whose `kind` entity lives on `owner`
// while `members` are up.
inline std::string key_owned_by(const std::string& kind, const std::string& prefix,
                                const std::string& owner,
                                const std::vector<std::string>& members) {
  for (int i = 0;; ++i)
    if (auto key = prefix + std::to_string(i); owner_among(kind, key, members) == owner)
      return key;
}

// Creates market `id` (one selection, "home" at 2.00) through `node` and
// opens it.
inline void open_market(cluster_test_node& node, const std::string& id, int64_t max_stake,
                        int64_t max_liability) {
  auto r = call_until_answered(
    node, "POST", "/v1/admin/markets",
    R"({"market_id":")" + id
      + R"(","event":"e","name":"n","selections":[{"selection_id":"home","name":"Home","price":"2.00"}],"limits":{"max_stake":)"
      + std::to_string(max_stake) + R"(,"max_liability":)" + std::to_string(max_liability) + "}}",
    cluster_admin_key, std::chrono::milliseconds{5000}, std::chrono::milliseconds{20000});
  REQUIRE_MESSAGE(r.status == 201, r.body);
  r = call_until_answered(node, "POST", "/v1/admin/markets/" + id + "/status",
                          R"({"status":"open"})", cluster_admin_key,
                          std::chrono::milliseconds{5000}, std::chrono::milliseconds{20000});
  REQUIRE_MESSAGE(r.status == 200, r.body);
}

struct signed_up {
  std::string username;
  std::string user_id;
  std::string token;
};

// A new session for `username` through `node`: its token.
inline std::string log_in(cluster_test_node& node, const std::string& username) {
  auto credentials =
    R"({"username":")" + username + R"(","password":"correct horse battery"})";
  auto r = call_until_answered(node, "POST", "/v1/sessions", credentials, "",
                               std::chrono::milliseconds{5000}, std::chrono::milliseconds{20000});
  REQUIRE_MESSAGE(r.status == 201, r.body);
  return std::string{boost::json::parse(r.body).at("token").as_string()};
}

// The session entity's key in a token ("<session id>.<secret>").
inline std::string session_of(const std::string& token) {
  return token.substr(0, token.find('.'));
}

// Signs users up (through `through`, in turn) until `wanted` of them have
// their wallet on `owner` while `members` are up, or `tries` sign-ups were
// made; logs in only those.
inline std::vector<signed_up> sign_up_wallets_on(const std::vector<cluster_test_node*>& through,
                                                 const std::string& owner,
                                                 const std::vector<std::string>& members,
                                                 size_t wanted, size_t tries,
                                                 const std::string& prefix) {
  std::vector<signed_up> out;
  for (size_t i = 0; i < tries && out.size() < wanted; ++i) {
    auto& node = *through[i % through.size()];
    auto username = prefix + std::to_string(i);
    auto credentials =
      R"({"username":")" + username + R"(","password":"correct horse battery"})";
    auto r = call_until_answered(node, "POST", "/v1/users", credentials, "",
                                 std::chrono::milliseconds{5000},
                                 std::chrono::milliseconds{20000});
    REQUIRE_MESSAGE(r.status == 201, r.body);
    signed_up user;
    user.username = username;
    user.user_id = std::string{boost::json::parse(r.body).at("user_id").as_string()};
    if (owner_among("wallet", user.user_id, members) != owner)
      continue;
    user.token = log_in(node, username);
    out.push_back(std::move(user));
  }
  return out;
}

// Whether process `pid` is stopped (SIGSTOP): state T in /proc/<pid>/stat.
inline bool process_stopped(pid_t pid) {
  std::ifstream in{"/proc/" + std::to_string(pid) + "/stat"};
  std::string stat{std::istreambuf_iterator<char>{in}, std::istreambuf_iterator<char>{}};
  auto end_of_name = stat.rfind(')');
  if (end_of_name == std::string::npos || end_of_name + 2 >= stat.size())
    return false;
  auto state = stat[end_of_name + 2];
  return state == 'T' || state == 't';
}

// One HTTP request written at once on its own connection, its answer read
// later. Sent to a paused node, the connection is taken by the kernel's
// listen backlog and the request waits in the socket buffer until the node
// runs again and reads it.
class request_in_flight {
public:
  request_in_flight(const std::string& address, const std::string& method,
                    const std::string& target, const std::string& body,
                    const std::string& bearer) {
    auto [host, port] = split_address(address);
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0)
      return;
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(port);
    if (::inet_pton(AF_INET, host.c_str(), &to.sin_addr) != 1
        || ::connect(fd_, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0) {
      close();
      return;
    }
    std::string req = method + " " + target + " HTTP/1.1\r\nHost: " + host
                      + "\r\nConnection: close\r\n";
    if (!bearer.empty())
      req += "Authorization: Bearer " + bearer + "\r\n";
    if (!body.empty() || method == "POST" || method == "PUT")
      req += "Content-Type: application/json\r\nContent-Length: "
             + std::to_string(body.size()) + "\r\n";
    req += "\r\n" + body;
    size_t sent = 0;
    while (sent < req.size()) {
      auto n = ::send(fd_, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0) {
        close();
        return;
      }
      sent += static_cast<size_t>(n);
    }
  }
  ~request_in_flight() { close(); }
  request_in_flight(const request_in_flight&) = delete;
  request_in_flight& operator=(const request_in_flight&) = delete;

  // Whether the request was written (connected and sent).
  bool sent() const { return fd_ >= 0; }

  // The answer (the server closes the connection after it), or status 0 when
  // none came by the deadline or the connection closed without one.
  http_result await(std::chrono::milliseconds deadline) {
    http_result result;
    auto until = std::chrono::steady_clock::now() + deadline;
    while (fd_ >= 0) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        until - std::chrono::steady_clock::now());
      if (left.count() <= 0)
        return result;
      pollfd pfd{fd_, POLLIN, 0};
      auto ready = ::poll(&pfd, 1, static_cast<int>(left.count()));
      if (ready < 0 && errno == EINTR)
        continue;
      if (ready <= 0)
        return result;
      char buf[4096];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        break;
      received_.append(buf, static_cast<size_t>(n));
    }
    close();
    // "HTTP/1.1 201 Created\r\n...\r\n\r\nbody"
    auto head_end = received_.find("\r\n\r\n");
    if (received_.rfind("HTTP/1.1 ", 0) != 0 || head_end == std::string::npos)
      return result;
    result.status = std::atoi(received_.c_str() + 9);
    result.body = received_.substr(head_end + 4);
    return result;
  }

private:
  void close() {
    if (fd_ >= 0)
      ::close(fd_);
    fd_ = -1;
  }

  int fd_ = -1;
  std::string received_;
};

// Stops every node with SIGTERM (each must drain and exit 0), then runs
// `wagerctl verify` over the shared journal: the money audit must pass.
inline void stop_and_verify(const std::vector<cluster_test_node*>& nodes,
                            const std::string& data_dir) {
  for (auto* n : nodes)
    n->process->signal(SIGTERM);
  for (auto* n : nodes) {
    CAPTURE(n->id);
    auto status = n->process->wait(std::chrono::seconds{30});
    if (!status || *status != 0)
      MESSAGE(n->id << " stderr: " << n->process->drain_stderr());
    REQUIRE(status.has_value());
    CHECK(*status == 0);
  }
  auto args = cluster_journal_args(data_dir);
  args.push_back("verify");
  child_process verify{binary("apps/wagerctl"), args};
  auto verified = verify.wait(std::chrono::seconds{30});
  REQUIRE(verified.has_value());
  CHECK_MESSAGE(*verified == 0, verify.drain_stderr());
}

} // namespace wager::test
