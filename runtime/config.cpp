#include "wager/runtime/config.hpp"

#include "wager/runtime/log.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <charconv>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace wager {

namespace {

namespace json = boost::json;

// Returns an error line, or "" when the value was applied.
using apply_fn = std::string (*)(node_options&, const std::string&);

struct option_def {
  std::string_view name; // the flag without "--"
  std::string_view value_name;
  std::string_view help;
  apply_fn apply;
};

bool parse_int(const std::string& text, long long& out) {
  auto* first = text.data();
  auto* last = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(first, last, out);
  return ec == std::errc{} && ptr == last && !text.empty();
}

std::string parse_port(const std::string& text, uint16_t& out) {
  long long value = 0;
  if (!parse_int(text, value) || value < 0 || value > 65535)
    return "expected a port from 0 to 65535, got '" + text + "'";
  out = static_cast<uint16_t>(value);
  return {};
}

std::string parse_optional_port(const std::string& text, std::optional<uint16_t>& out) {
  if (text == "-1" || text == "off") {
    out.reset();
    return {};
  }
  uint16_t port = 0;
  auto err = parse_port(text, port);
  if (err.empty())
    out = port;
  else
    err = "expected a port from 0 to 65535, or -1 for off, got '" + text + "'";
  return err;
}

std::string parse_bounded(const std::string& text, long long low, long long high,
                          long long& out) {
  if (!parse_int(text, out) || out < low || out > high)
    return "expected a whole number from " + std::to_string(low) + " to "
           + std::to_string(high) + ", got '" + text + "'";
  return {};
}

// A threshold: 0 (off) to a million.
std::string parse_count(const std::string& text, uint32_t& out) {
  long long n = 0;
  auto err = parse_bounded(text, 0, 1'000'000, n);
  out = static_cast<uint32_t>(n);
  return err;
}

std::string require_non_empty(const std::string& text) {
  return text.empty() ? "must not be empty" : "";
}

const std::vector<option_def>& option_table() {
  static const std::vector<option_def> table = {
    {"data-dir", "DIR", "journal, snapshots and keys (default ./data)",
     [](node_options& o, const std::string& v) {
       o.data_dir = v;
       return require_non_empty(v);
     }},
    {"journal", "URL",
     "the journal on PostgreSQL, postgresql://user@host:port/db?sslmode=... (default: the "
     "embedded SQLite journal in the data dir); a password comes from PGPASSWORD or "
     "PGPASSFILE, not the URL",
     [](node_options& o, const std::string& v) {
       o.journal_url = v;
       if (v.empty() || v.rfind("postgresql://", 0) == 0 || v.rfind("postgres://", 0) == 0)
         return std::string{};
       // Only the scheme is echoed: the rest may hold a password.
       auto scheme = v.find("://");
       return "expected a postgresql:// URL, got " +
              (scheme == std::string::npos ? std::string{"no URL scheme"}
                                           : "a " + v.substr(0, scheme) + ":// URL");
     }},
    {"http-host", "H", "client API address (default 127.0.0.1)",
     [](node_options& o, const std::string& v) {
       o.http_host = v;
       return require_non_empty(v);
     }},
    {"http-port", "P", "client API port, 0 for any free port (default 8080)",
     [](node_options& o, const std::string& v) { return parse_port(v, o.http_port); }},
    {"feed-port", "P", "feed port, -1 for off (default 8090)",
     [](node_options& o, const std::string& v) {
       return parse_optional_port(v, o.feed_port);
     }},
    {"node-id", "ID", "name in the cluster (default: derived from host and port)",
     [](node_options& o, const std::string& v) {
       o.node_id = v;
       if (v.empty() || v.size() > 64)
         return std::string{"expected 1 to 64 characters of [A-Za-z0-9_.:-]"};
       for (char c : v)
         if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.'
               || c == ':' || c == '-'))
           return std::string{"expected 1 to 64 characters of [A-Za-z0-9_.:-]"};
       return std::string{};
     }},
    {"cluster-port", "P", "CAF middleman port for other nodes (default off)",
     [](node_options& o, const std::string& v) {
       return parse_optional_port(v, o.cluster_port);
     }},
    {"seeds", "H:P,...", "nodes to join through (default none)",
     [](node_options& o, const std::string& v) {
       o.seeds.clear();
       std::stringstream in{v};
       std::string seed;
       while (std::getline(in, seed, ',')) {
         auto colon = seed.rfind(':');
         uint16_t port = 0;
         if (colon == std::string::npos || colon == 0
             || !parse_port(seed.substr(colon + 1), port).empty() || port == 0)
           return "expected host:port, got '" + seed + "'";
         o.seeds.push_back(seed);
       }
       return std::string{};
     }},
    {"cluster-secret", "S", "shared secret a node proves to join (default none: no joins)",
     [](node_options& o, const std::string& v) {
       o.cluster_secret = v;
       return !v.empty() && v.size() < 16 ? std::string{"must be at least 16 characters"}
                                          : std::string{};
     }},
    {"cluster-secret-file", "F", "file holding the cluster secret",
     [](node_options& o, const std::string& v) {
       o.cluster_secret_file = v;
       return std::string{};
     }},
    {"cluster-heartbeat-ms", "MS", "heartbeats between nodes every MS (default 200)",
     [](node_options& o, const std::string& v) {
       long long ms = 0;
       auto err = parse_bounded(v, 10, 10'000, ms);
       o.cluster_heartbeat = std::chrono::milliseconds{ms};
       return err;
     }},
    {"cluster-down-after-ms", "MS", "a node silent this long is down (default 1600)",
     [](node_options& o, const std::string& v) {
       long long ms = 0;
       auto err = parse_bounded(v, 50, 600'000, ms);
       o.cluster_down_after = std::chrono::milliseconds{ms};
       return err;
     }},
    {"drain-timeout-ms", "MS",
     "on SIGTERM, wait at most MS for the other nodes to take this node's shards (default 30000)",
     [](node_options& o, const std::string& v) {
       long long ms = 0;
       auto err = parse_bounded(v, 0, 3'600'000, ms);
       o.drain_timeout = std::chrono::milliseconds{ms};
       return err;
     }},
    {"cluster-tls-cert", "F", "this node's certificate (PEM) for TLS between nodes",
     [](node_options& o, const std::string& v) {
       o.cluster_tls_cert = v;
       return std::string{};
     }},
    {"cluster-tls-key", "F", "private key (PEM) for --cluster-tls-cert",
     [](node_options& o, const std::string& v) {
       o.cluster_tls_key = v;
       return std::string{};
     }},
    {"cluster-tls-ca", "F", "CA certificate (PEM) every node's certificate is signed by",
     [](node_options& o, const std::string& v) {
       o.cluster_tls_ca = v;
       return std::string{};
     }},
    {"currency", "CODE", "the wallets' currency, an ISO 4217 code (default EUR)",
     [](node_options& o, const std::string& v) {
       o.currency = v;
       bool code = v.size() == 3;
       for (char c : v)
         code = code && c >= 'A' && c <= 'Z';
       return code ? std::string{}
                   : "expected a three-letter ISO 4217 code such as EUR, got '" + v + "'";
     }},
    {"max-payout", "AMOUNT",
     "the most a slip of several legs pays, in minor units (default 100000000)",
     [](node_options& o, const std::string& v) {
       long long amount = 0;
       auto err = parse_bounded(v, 1, 1'000'000'000'000, amount);
       o.max_payout = amount;
       return err;
     }},
    {"cashout-margin", "M", "the share a cash-out quote keeps back, in [0, 1) (default 0.05)",
     [](node_options& o, const std::string& v) {
       o.cashout_margin = v;
       bool ok = v == "0" || (v.size() >= 3 && v.size() <= 6 && v.compare(0, 2, "0.") == 0
                              && v.find_first_not_of("0123456789", 2) == std::string::npos);
       return ok ? std::string{}
                 : "expected 0 or a decimal in [0, 1) with at most four decimals, got '" + v
                     + "'";
     }},
    {"admin-key", "KEY", "operator key for the admin endpoints (default none: 403)",
     [](node_options& o, const std::string& v) {
       o.admin_key = v;
       return std::string{};
     }},
    {"tls-cert", "F", "certificate (PEM) to serve HTTPS and WSS",
     [](node_options& o, const std::string& v) {
       o.tls_cert = v;
       return std::string{};
     }},
    {"tls-key", "F", "private key (PEM) for --tls-cert",
     [](node_options& o, const std::string& v) {
       o.tls_key = v;
       return std::string{};
     }},
    {"log-level", "L", "trace, debug, info, warn, error, critical or off (default info)",
     [](node_options& o, const std::string& v) {
       spdlog::level::level_enum level;
       o.log_level = v;
       return parse_log_level(v, level) ? std::string{}
                                        : "unknown log level '" + v + "'";
     }},
    {"log-format", "F", "text or json (default text)",
     [](node_options& o, const std::string& v) {
       log_format format;
       o.log_format = v;
       return parse_log_format(v, format) ? std::string{}
                                          : "expected text or json, got '" + v + "'";
     }},
    {"feed-silence-ms", "MS", "a silent feed producer is down after this (default 2000)",
     [](node_options& o, const std::string& v) {
       long long ms = 0;
       auto err = parse_bounded(v, 50, 3'600'000, ms);
       o.feed_silence = std::chrono::milliseconds{ms};
       return err;
     }},
    {"security-window-ms", "MS",
     "the window intrusion detection counts failures in (default 300000)",
     [](node_options& o, const std::string& v) {
       long long ms = 0;
       auto err = parse_bounded(v, 1'000, 86'400'000, ms);
       o.security_window = std::chrono::milliseconds{ms};
       return err;
     }},
    {"security-stuffing-usernames", "N",
     "usernames failing to log in from one address that block it (default 10, 0: off)",
     [](node_options& o, const std::string& v) {
       return parse_count(v, o.security_stuffing_usernames);
     }},
    {"security-password-failures", "N",
     "failed logins of one username that block the address (default 10, 0: off)",
     [](node_options& o, const std::string& v) {
       return parse_count(v, o.security_password_failures);
     }},
    {"security-totp-failures", "N",
     "wrong TOTP codes for one username that block the address (default 5, 0: off)",
     [](node_options& o, const std::string& v) {
       return parse_count(v, o.security_totp_failures);
     }},
    {"security-admin-key-failures", "N",
     "refused operator keys from one address that block it (default 5, 0: off)",
     [](node_options& o, const std::string& v) {
       return parse_count(v, o.security_admin_key_failures);
     }},
    {"security-token-refusals", "N",
     "refused session tokens from one address that block it (default 20, 0: off)",
     [](node_options& o, const std::string& v) {
       return parse_count(v, o.security_token_refusals);
     }},
    {"security-settlements-per-minute", "N",
     "markets settled by one operator key in a minute that raise an event (default 20, 0: off)",
     [](node_options& o, const std::string& v) {
       return parse_count(v, o.security_settlements_per_minute);
     }},
    {"security-feed-gaps-per-minute", "N",
     "sequence gaps of one feed producer in a minute that raise an event (default 3, 0: off)",
     [](node_options& o, const std::string& v) {
       return parse_count(v, o.security_feed_gaps_per_minute);
     }},
    {"security-block-ms", "MS", "an address's first block lasts MS (default 60000)",
     [](node_options& o, const std::string& v) {
       long long ms = 0;
       auto err = parse_bounded(v, 1'000, 86'400'000, ms);
       o.security_block = std::chrono::milliseconds{ms};
       return err;
     }},
    {"security-block-max-ms", "MS",
     "each further block doubles, up to MS (default 3600000)",
     [](node_options& o, const std::string& v) {
       long long ms = 0;
       auto err = parse_bounded(v, 1'000, 30LL * 86'400'000, ms);
       o.security_block_max = std::chrono::milliseconds{ms};
       return err;
     }},
    {"feed-producers", "NAME,...",
     "the only feed producers taken; lines from others are skipped (default: any)",
     [](node_options& o, const std::string& v) {
       o.feed_producers.clear();
       std::stringstream in{v};
       std::string name;
       while (std::getline(in, name, ','))
         if (!name.empty())
           o.feed_producers.push_back(name);
       return std::string{};
     }},
    {"shards", "N", "shards per cluster, fixed for its life (default 256)",
     [](node_options& o, const std::string& v) {
       long long n = 0;
       auto err = parse_bounded(v, 1, 65536, n);
       o.shards = static_cast<uint32_t>(n);
       return err;
     }},
    {"scheduler-threads", "N", "actor scheduler threads, 0 for one per core (default 0)",
     [](node_options& o, const std::string& v) {
       long long n = 0;
       auto err = parse_bounded(v, 0, 256, n);
       o.scheduler_threads = static_cast<uint32_t>(n);
       return err;
     }},
  };
  return table;
}

std::string env_name(std::string_view option) {
  std::string name = "WAGER_";
  for (char c : option)
    name.push_back(c == '-' ? '_' : static_cast<char>(std::toupper(c)));
  return name;
}

const option_def* find_option(std::string_view key) {
  for (auto& def : option_table()) {
    if (def.name.size() != key.size())
      continue;
    bool same = true;
    for (size_t i = 0; i < key.size() && same; ++i)
      same = def.name[i] == key[i] || (def.name[i] == '-' && key[i] == '_');
    if (same)
      return &def;
  }
  return nullptr;
}

// A JSON value as the text a flag would carry.
bool json_to_text(const json::value& value, std::string& out) {
  switch (value.kind()) {
    case json::kind::string: out = value.get_string().c_str(); return true;
    case json::kind::int64: out = std::to_string(value.get_int64()); return true;
    case json::kind::uint64: out = std::to_string(value.get_uint64()); return true;
    case json::kind::array: {
      out.clear();
      for (auto& item : value.get_array()) {
        std::string text;
        if (!item.is_string() && !item.is_int64())
          return false;
        json_to_text(item, text);
        if (!out.empty())
          out.push_back(',');
        out += text;
      }
      return true;
    }
    default: return false;
  }
}

std::string apply_file(node_options& opts, const std::string& path,
                       std::vector<std::string>& keys_set) {
  std::ifstream in{path};
  if (!in)
    return "cannot read config file '" + path + "'";
  std::stringstream buffer;
  buffer << in.rdbuf();
  boost::system::error_code ec;
  auto doc = json::parse(buffer.str(), ec);
  if (ec)
    return "config file '" + path + "' is not valid JSON: " + ec.message();
  if (!doc.is_object())
    return "config file '" + path + "' must hold a JSON object";
  for (auto& [key, value] : doc.get_object()) {
    auto* def = find_option(key);
    if (def == nullptr || def->name == "config")
      return "config file '" + path + "': unknown option \"" + std::string{key} + "\"";
    std::string text;
    if (!json_to_text(value, text))
      return "config file '" + path + "': \"" + std::string{key}
             + "\" must be a string, a whole number or a list";
    if (auto err = def->apply(opts, text); !err.empty())
      return "config file '" + path + "': " + std::string{def->name} + ": " + err;
    keys_set.emplace_back(def->name);
  }
  return {};
}

// The secret file's contents, less one trailing newline, become the secret.
std::string read_secret_file(node_options& opts) {
  if (opts.cluster_secret_file.empty())
    return {};
  if (!opts.cluster_secret.empty())
    return "--cluster-secret and --cluster-secret-file exclude each other";
  std::ifstream in{opts.cluster_secret_file};
  if (!in)
    return "cannot read cluster secret file '" + opts.cluster_secret_file + "'";
  std::stringstream buffer;
  buffer << in.rdbuf();
  auto secret = buffer.str();
  if (!secret.empty() && secret.back() == '\n')
    secret.pop_back();
  if (!secret.empty() && secret.back() == '\r')
    secret.pop_back();
  if (secret.size() < 16)
    return "cluster secret file '" + opts.cluster_secret_file
           + "' must hold at least 16 characters";
  opts.cluster_secret = secret;
  return {};
}

std::string check_cluster(node_options& opts) {
  if (auto err = read_secret_file(opts); !err.empty())
    return err;
  if (opts.security_block_max < opts.security_block)
    return "--security-block-max-ms must be at least --security-block-ms";
  if (opts.cluster_down_after < 2 * opts.cluster_heartbeat)
    return "--cluster-down-after-ms must be at least twice --cluster-heartbeat-ms";
  auto tls_set = int{!opts.cluster_tls_cert.empty()} + int{!opts.cluster_tls_key.empty()}
                 + int{!opts.cluster_tls_ca.empty()};
  if (tls_set != 0 && tls_set != 3)
    return "--cluster-tls-cert, --cluster-tls-key and --cluster-tls-ca go together";
  return {};
}

std::string check_combination(node_options& opts) {
  if (opts.tls_cert.empty() != opts.tls_key.empty())
    return "--tls-cert and --tls-key go together";
  for (auto* path : {&opts.tls_cert, &opts.tls_key})
    if (!path->empty() && !std::ifstream{*path})
      return "cannot read TLS file '" + *path + "'";
  if (!opts.seeds.empty() && !opts.cluster_port)
    return "--seeds needs --cluster-port";
  return check_cluster(opts);
}

} // namespace

env_lookup process_environment() {
  return [](std::string_view name) -> std::optional<std::string> {
    if (auto* value = std::getenv(std::string{name}.c_str()))
      return std::string{value};
    return std::nullopt;
  };
}

config_result load_node_options(const std::vector<std::string>& args,
                                const env_lookup& env) {
  config_result result;
  auto& table = option_table();

  CLI::App app{"wager-node: a node of the Wager sportsbook platform", "wager-node"};
  app.set_help_flag("-h,--help", "print this help and exit");
  std::vector<std::string> flag_values(table.size());
  std::vector<CLI::Option*> flags(table.size());
  for (size_t i = 0; i < table.size(); ++i) {
    auto& def = table[i];
    flags[i] = app.add_option("--" + std::string{def.name}, flag_values[i],
                              std::string{def.help})
                 ->type_name(std::string{def.value_name})
                 ->allow_extra_args(false);
  }
  std::string config_file;
  auto* config_flag = app.add_option("--config", config_file,
                                     "JSON file of options; flags and environment beat it")
                        ->type_name("FILE");
  std::vector<std::string> reversed{args.rbegin(), args.rend()};
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    result.help_requested = true;
    result.help = app.help();
    return result;
  } catch (const CLI::ParseError& e) {
    result.error = e.what();
    return result;
  }

  auto& opts = result.options;
  // Lowest precedence first: the file, then the environment, then flags.
  if (config_flag->count() == 0)
    if (auto from_env = env("WAGER_CONFIG"))
      config_file = *from_env;
  std::vector<std::string> from_file;
  if (!config_file.empty())
    if (auto err = apply_file(opts, config_file, from_file); !err.empty()) {
      result.error = err;
      return result;
    }
  for (size_t i = 0; i < table.size(); ++i) {
    auto& def = table[i];
    std::string text;
    std::string source;
    if (flags[i]->count() > 0) {
      text = flag_values[i];
      source = "--" + std::string{def.name};
    } else if (auto value = env(env_name(def.name))) {
      text = *value;
      source = env_name(def.name);
    } else {
      continue;
    }
    if (auto err = def.apply(opts, text); !err.empty()) {
      result.error = source + ": " + err;
      return result;
    }
  }
  result.error = check_combination(opts);
  return result;
}

} // namespace wager
