// wager-node: one node of a Wager cluster, as orchestration starts it.
// Options: shared/API.md ("Node command line"); `wager-node --help`.

#include <wager/actors/feed.hpp>
#include <wager/cluster/cluster_node.hpp>
#include <wager/actors/platform.hpp>
#include <wager/persistence/journal.hpp>
#include <wager/persistence/journal_schema.hpp>
#include <wager/persistence/shard_leases.hpp>
#include <wager/gateway/api.hpp>
#include <wager/gateway/feed_listener.hpp>
#include <wager/gateway/http_server.hpp>
#include <wager/gateway/operations.hpp>
#include <wager/gateway/stream.hpp>
#include <wager/runtime/config.hpp>
#include <wager/runtime/log.hpp>
#include <wager/runtime/node_runtime.hpp>

#include <boost/json.hpp>

#include <atomic>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <unistd.h>

namespace {

// A data dir the node cannot write to is refused at start, not at the first
// bet.
std::string prepare_data_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec)
    return "cannot create data dir '" + dir + "': " + ec.message();
  if (!std::filesystem::is_directory(dir, ec))
    return "data dir '" + dir + "' is not a directory";
  auto probe = std::filesystem::path{dir} / ".wager-write-probe";
  {
    std::ofstream out{probe};
    if (!(out << "probe") || !out.flush())
      return "data dir '" + dir + "' is not writable";
  }
  std::filesystem::remove(probe, ec);
  return {};
}

// A journal an earlier release wrote in the row layout is refused with the
// command that upgrades it: the node runs the log layout. Any other problem
// with the file is left to the platform's start, which names it.
std::string check_journal_layout(const std::string& dir) {
  auto path = (std::filesystem::path{dir} / "journal.db").string();
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return {};
  auto db = wager::open_journal_for_inspection(path);
  if (!db)
    return {};
  auto layout = wager::layout_of(*db, path);
  if (!layout || *layout == wager::journal_layout::log)
    return {};
  return "the journal " + path + " has the row layout of an earlier release; run 'wagerctl "
         "--data-dir " + dir + " upgrade' (it takes a backup first), then start the node again";
}

std::string default_node_id(uint16_t http_port) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
    std::snprintf(host, sizeof host, "node");
  return std::string{host} + ":" + std::to_string(http_port);
}

boost::json::value address(const std::string& host, std::optional<uint16_t> port) {
  if (!port)
    return nullptr;
  return boost::json::value(host + ":" + std::to_string(*port));
}

// Cluster settings that only make sense together, checked before anything
// starts: CAF would terminate the process at the first TLS connection over a
// bad certificate.
std::string check_cluster_options(const wager::node_options& opts) {
  if (!opts.seeds.empty() && opts.cluster_secret.empty())
    return "--seeds needs --cluster-secret (or WAGER_CLUSTER_SECRET, or --cluster-secret-file)";
  if (!opts.cluster_tls_cert.empty())
    return wager::check_cluster_tls(
      {opts.cluster_tls_cert, opts.cluster_tls_key, opts.cluster_tls_ca});
  return {};
}

wager::cluster_options cluster_options_of(const wager::node_options& opts,
                                          const std::string& node_id,
                                          const wager::cluster_tls_files& tls) {
  wager::cluster_options c;
  c.node_id = node_id;
  c.host = opts.http_host;
  c.port = *opts.cluster_port;
  c.seeds = opts.seeds;
  c.secret = opts.cluster_secret;
  c.heartbeat = opts.cluster_heartbeat;
  c.down_after = opts.cluster_down_after;
  c.shards = opts.shards;
  c.tls = tls.enabled();
  return c;
}

wager::cluster_health health_of(const wager::cluster_view& view) {
  wager::cluster_health health;
  for (auto& m : view.members)
    health.members.push_back({m.node_id, m.address, std::string{wager::to_string(m.status)}});
  health.shards_owned = view.shards_owned;
  return health;
}

// A clustered node is ready (/readyz) once it is an up member and placement
// gives it shards: while it joins, every shard it would serve is routed to a
// refuser, and a load balancer must not send it clients yet.
uint64_t incarnation_of(const wager::cluster_view& view, const std::string& node_id) {
  for (auto& m : view.members)
    if (m.node_id == node_id)
      return m.incarnation;
  return 0;
}

bool owns_its_shards(const wager::cluster_view& view, const std::string& node_id) {
  for (auto& m : view.members)
    if (m.node_id == node_id)
      return m.status == wager::member_status::up && view.shards_owned > 0;
  return false;
}

int fail(const std::string& line) {
  std::fprintf(stderr, "wager-node: %s\n", line.c_str());
  return 1;
}

} // namespace

int main(int argc, char** argv) {
  // Signals are taken synchronously by main (sigwait); every thread started
  // from here on inherits the mask, so none of them is interrupted.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  std::signal(SIGPIPE, SIG_IGN);

  auto config = wager::load_node_options({argv + 1, argv + argc});
  if (config.help_requested) {
    std::fputs(config.help.c_str(), stdout);
    return 0;
  }
  if (!config.error.empty()) {
    std::fprintf(stderr, "wager-node: %s\n", config.error.c_str());
    return 2;
  }
  auto& opts = config.options;
  spdlog::level::level_enum level{};
  wager::log_format format{};
  wager::parse_log_level(opts.log_level, level);
  wager::parse_log_format(opts.log_format, format);
  wager::configure_logging(level, format);

  if (auto err = prepare_data_dir(opts.data_dir); !err.empty())
    return fail(err);
  if (opts.journal_url.empty())
    if (auto err = check_journal_layout(opts.data_dir); !err.empty())
      return fail(err);

  if (auto err = check_cluster_options(opts); !err.empty())
    return fail(err);
  wager::cluster_tls_files cluster_tls{opts.cluster_tls_cert, opts.cluster_tls_key,
                                       opts.cluster_tls_ca};

  wager::platform_options popts;
  popts.runtime.configure = [cluster_tls](caf::actor_system_config& cfg) {
    wager::configure_cluster(cfg, cluster_tls);
  };
  popts.data_dir = opts.data_dir;
  popts.journal.url = opts.journal_url;
  // Nodes of a cluster on PostgreSQL run on hosts of their own: the shard
  // leases in the database decide which node may commit for a shard.
  std::shared_ptr<wager::shard_leases> leases;
  if (!opts.journal_url.empty() && opts.cluster_port) {
    leases = std::make_shared<wager::shard_leases>(opts.shards);
    leases->owner_silence = opts.cluster_down_after;
    leases->heartbeat = opts.cluster_heartbeat;
    popts.journal.leases = leases;
  }
  popts.runtime.scheduler_threads = opts.scheduler_threads;
  popts.shards = opts.shards;
  popts.wallet.max_payout = wager::money{opts.max_payout};
  popts.wallet.margin = wager::parse_cashout_margin(opts.cashout_margin).value_or(wager::cashout_margin{});
  // A clustered node resumes open work shard by shard, as it takes them.
  popts.resume_at_start = !opts.cluster_port.has_value();
  auto started = wager::platform::start(popts);
  if (!started)
    return fail("cannot start: " + wager::message_of(started.error()));
  auto& platform = **started;
  auto& runtime = platform.runtime();
  std::atomic<wager::node_readiness> readiness{wager::node_readiness::starting};
  auto& metrics = runtime.metrics();
  // The node id is known once the HTTP port is bound; the API reads it late.
  std::string node_id = opts.node_id;
  wager::api_options api_opts;
  api_opts.admin_key = opts.admin_key;
  api_opts.currency = opts.currency;
  api_opts.intrusion.window = opts.security_window;
  api_opts.intrusion.stuffing_usernames = opts.security_stuffing_usernames;
  api_opts.intrusion.password_failures = opts.security_password_failures;
  api_opts.intrusion.totp_failures = opts.security_totp_failures;
  api_opts.intrusion.admin_key_failures = opts.security_admin_key_failures;
  api_opts.intrusion.token_refusals = opts.security_token_refusals;
  api_opts.intrusion.settlements_per_minute = opts.security_settlements_per_minute;
  api_opts.intrusion.block_first = opts.security_block;
  api_opts.intrusion.block_max = opts.security_block_max;
  api_opts.intrusion.feed_gaps_per_minute = opts.security_feed_gaps_per_minute;
  // One detector for the client API and the feed.
  api_opts.detector = std::make_shared<wager::intrusion_detector>(api_opts.intrusion, metrics);
  // POST /v1/admin/drain, once its 202 is written, takes the SIGTERM path:
  // every thread blocks the signal, so main's sigwait below receives it.
  std::atomic<bool> drain_requested{false};
  api_opts.drain = [&drain_requested] {
    drain_requested = true;
    ::kill(::getpid(), SIGTERM);
  };
  std::optional<wager::client_api> api;
  std::unique_ptr<wager::cluster_node> cluster;

  wager::http_server_options http_opts;
  http_opts.host = opts.http_host;
  http_opts.port = opts.http_port;
  http_opts.tls_cert_file = opts.tls_cert;
  http_opts.tls_key_file = opts.tls_key;
  // A stream's first message attaches it to its login session entity.
  http_opts.websocket = wager::make_stream_handler(platform);
  wager::http_server http{
    http_opts,
    [&](wager::http_request req, wager::http_responder respond) {
      // A node whose journal cannot write is not ready: it would refuse
      // every bet.
      std::atomic<wager::node_readiness> now{readiness.load()};
      if (now == wager::node_readiness::ready && !platform.journal().health().writable)
        now = wager::node_readiness::degraded;
      // /readyz also waits for the cluster; the client API does not refuse
      // a joining node's requests (the directory routes or refuses them).
      // `cluster` and `node_id` are set before readiness becomes ready.
      std::atomic<wager::node_readiness> probe{now.load()};
      if (probe == wager::node_readiness::ready && cluster &&
          !owns_its_shards(cluster->view(), node_id))
        probe = wager::node_readiness::starting;
      if (auto res = wager::operations_response(req, probe, metrics))
        return respond(std::move(*res));
      // While draining, the health endpoint still answers (wagerctl status).
      bool health = req.method == "GET" && req.path == "/v1/admin/health";
      if (auto refusal = wager::refusal_unless_serving(now);
          refusal && !(health && now == wager::node_readiness::draining))
        return respond(std::move(*refusal));
      api->handle(std::move(req), std::move(respond));
    }};
  if (auto err = http.start(); !err.empty())
    return fail(err);

  // Feed lines from the TCP listener and from POST /v1/admin/feed.
  wager::feed_options feed_opts;
  feed_opts.silence = opts.feed_silence;
  feed_opts.producers = opts.feed_producers;
  feed_opts.on_security_signal = [detector = api_opts.detector](
                                   wager::feed_security_signal signal,
                                   const std::string& producer) {
    if (signal == wager::feed_security_signal::unknown_producer)
      detector->feed_unknown_producer(producer);
    else
      detector->feed_gap(producer);
  };
  wager::feed_ingest ingest{runtime.system(), platform.directory(), metrics, feed_opts};
  api_opts.feed = &ingest;
  std::optional<wager::feed_listener> feed;
  std::optional<uint16_t> feed_port;
  if (opts.feed_port) {
    feed.emplace(wager::feed_listener_options{.host = opts.http_host, .port = *opts.feed_port},
                 [&](uint64_t, std::string_view line, bool oversized) {
                   if (oversized)
                     ingest.submit_oversized();
                   else
                     ingest.submit(line);
                 });
    if (auto err = feed->start(); !err.empty())
      return fail(err);
    feed_port = feed->port();
  }

  if (node_id.empty())
    node_id = default_node_id(http.port());
  std::optional<uint16_t> cluster_port;
  if (opts.cluster_port) {
    std::string err;
    auto copts = cluster_options_of(opts, node_id, cluster_tls);
    copts.dir = platform.directory();
    // Shards taken over (from a lost node, or at the cluster's start): the
    // open sagas and settlements of their entities resume at once.
    copts.on_shards_taken = [&platform](std::vector<uint32_t> shards) {
      platform.resume_shards(std::move(shards));
    };
    if (leases) {
      copts.on_handover = [leases](std::vector<wager::shard_handover> handed) {
        for (auto& h : handed)
          leases->grant(h.shard, std::move(h.from));
      };
      // The journal names this node in its leases from the cluster's first
      // routes on.
      leases->set_member({node_id, {}, 0, "up"});
    }
    cluster = wager::cluster_node::start(runtime.system(), metrics, std::move(copts), err);
    if (!cluster)
      return fail(err);
    cluster_port = cluster->port();
    if (leases)
      leases->set_member({node_id, cluster->address(), incarnation_of(cluster->view(), node_id),
                          "up"});
    if (opts.cluster_secret.empty())
      wager::log().warn("no cluster secret: this node admits no other node");
    api_opts.cluster = [&cluster] { return health_of(cluster->view()); };
  }
  api_opts.node_id = node_id;
  api_opts.draining = [&readiness] { return readiness == wager::node_readiness::draining; };
  api.emplace(platform, api_opts);
  readiness = wager::node_readiness::ready;
  boost::json::object ready{
    {"event", "ready"},
    {"node_id", node_id},
    {"http", address(opts.http_host, http.port())},
    {"feed", address(opts.http_host, feed_port)},
    {"cluster", address(opts.http_host, cluster_port)},
  };
  std::printf("%s\n", boost::json::serialize(ready).c_str());
  std::fflush(stdout);
  wager::log().info("node {} ready: http {}:{}", node_id, opts.http_host, http.port());

  int signo = 0;
  sigwait(&stop_signals, &signo);
  readiness = wager::node_readiness::draining;
  wager::log().info("{}, draining", drain_requested ? "drain requested over HTTP"
                                    : signo == SIGTERM ? "received SIGTERM"
                                                       : "received SIGINT");
  if (cluster) {
    // The other members take the shards: each entity here finishes its
    // work and passivates, then its shard's new owner serves it from the
    // journal. Requests that reach this node meanwhile are relayed there.
    auto began = std::chrono::steady_clock::now();
    if (leases)
      leases->set_status("leaving");
    cluster->leave();
    bool handed = platform.directory().await_released(opts.drain_timeout);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                std::chrono::steady_clock::now() - began)
                .count();
    if (handed)
      wager::log().info("node {} handed its shards away in {} ms", node_id, ms);
    else
      wager::log().warn("node {}: shards not all handed away after {} ms; the others recover "
                        "them from the journal",
                        node_id, ms);
  }
  // Requests already read are answered (503 for those that came too late),
  // then connections close.
  http.stop();
  if (feed)
    feed->stop();
  api.reset();
  // Peers see this node go silent and mark it down.
  if (cluster)
    cluster->stop();
  // The feed's actors go before the directory they route through.
  ingest.stop();
  platform.stop();
  wager::log().info("node {} stopped", node_id);
  return 0;
}
