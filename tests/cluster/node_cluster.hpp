#pragma once

// Real wager-node processes forming a cluster on 127.0.0.1, for tests: each
// started with port 0 everywhere, its ports read from its ready line, its
// view of the cluster read from GET /v1/admin/health and /metrics.

#include "support/http_client.hpp"
#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wager::test {

inline const std::string cluster_admin_key = "cluster-test-admin-key";
inline const std::string cluster_secret = "a-cluster-secret-of-some-length";

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
    std::vector<std::string> args{"--data-dir",     data_dir,          "--http-port", "0",
                                  "--feed-port",    "-1",              "--cluster-port", "0",
                                  "--node-id",      node_id,           "--admin-key",
                                  cluster_admin_key, "--log-level",     "warn"};
    args.insert(args.end(), extra.begin(), extra.end());
    process = std::make_unique<child_process>(binary("apps/wager-node"), args, env);
  }

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

  // wager_cluster_member_incarnation{node_id="member"} from /metrics; 0
  // when absent.
  double incarnation_of(const std::string& member) {
    auto r = get("/metrics");
    if (!r)
      return 0;
    auto key = "wager_cluster_member_incarnation{node_id=\"" + member + "\"} ";
    auto at = r->body.find(key);
    if (at == std::string::npos)
      return 0;
    return std::stod(r->body.substr(at + key.size()));
  }

  std::string id;
  std::string http;
  std::string cluster;
  std::unique_ptr<child_process> process;
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
// not at all, each try waiting up to `per_try`, until `deadline`.
inline http_result call_until_answered(cluster_test_node& node, const std::string& method,
                                       const std::string& path, const std::string& body,
                                       const std::string& bearer,
                                       std::chrono::milliseconds per_try,
                                       std::chrono::milliseconds deadline) {
  http_result r;
  wait_until(
    [&] {
      auto [host, port] = split_address(node.http);
      http_client client{host, port, per_try};
      r = client.request(method, path, body, bearer);
      return r.status != 0 && r.status != 503;
    },
    deadline);
  return r;
}

} // namespace wager::test
