// wagerctl: the operator's tool. `wagerctl --help`; docs/operations.md.
//
// Offline, on a data dir (no node needed, safe while nodes run):
//   wagerctl --data-dir DIR verify         journal integrity and the money audit
//   wagerctl --journal URL verify          the same, of a journal on PostgreSQL
//   wagerctl --data-dir DIR backup FILE    a consistent copy of the live journal
//   wagerctl --data-dir DIR restore FILE   FILE becomes the journal of an empty DIR
//   wagerctl --data-dir DIR upgrade [FILE] an older journal to this release's layout,
//                                           after a backup to FILE (no node running)
// Online, through a node's admin endpoints:
//   wagerctl --url URL --admin-key KEY status
//   wagerctl --url URL --admin-key KEY drain
// Feed:
//   wagerctl feed-replay FILE --feed HOST:PORT [--rate N]
//                                           plays an NDJSON feed file into a node
//
// Exit status: 0 done; 1 verify found the journal or the money wrong (the
// first problem on stderr); 2 wagerctl could not do what was asked (bad
// usage, unreadable data dir, unreachable node, refused request), with one
// line on stderr saying why.

#include "wagerctl_http.hpp"

#include <wager/actors/ledger_audit.hpp>
#include <wager/persistence/backup.hpp>
#include <wager/persistence/journal_schema.hpp>
#include <wager/persistence/layout_upgrade.hpp>
#include <wager/persistence/open_journal.hpp>
#include <wager/persistence/pg_journal.hpp>
#include <wager/runtime/errors.hpp>

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>

#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

namespace {

namespace fs = std::filesystem;

constexpr int exit_ok = 0;
constexpr int exit_violation = 1;
constexpr int exit_failure = 2;

// The journal's file in a data dir, as wager::platform names it
// (actors/platform.cpp).
constexpr const char* journal_file_name = "journal.db";

struct options {
  std::string data_dir;
  std::string journal; // postgresql://... (verify)
  std::string url;
  std::string admin_key;
  std::string ca_file;
  uint32_t timeout_ms = 10000;
  std::string file; // backup, restore, feed-replay
  std::string feed; // feed-replay: HOST:PORT of a node's feed listener
  double rate = 100; // feed-replay: lines per second; 0 as fast as possible
  bool loop = false; // feed-replay: play the file again and again
};

int fail(const std::string& line) {
  std::fprintf(stderr, "wagerctl: %s\n", line.c_str());
  return exit_failure;
}

void print_json(const boost::json::value& v) {
  std::printf("%s\n", boost::json::serialize(v).c_str());
  std::fflush(stdout);
}

// The journal of a data dir that must already hold one.
std::optional<std::string> existing_journal(const options& o, std::string& error) {
  std::error_code ec;
  if (!fs::is_directory(o.data_dir, ec)) {
    error = "data dir '" + o.data_dir + "' does not exist";
    return std::nullopt;
  }
  auto path = (fs::path{o.data_dir} / journal_file_name).string();
  if (!fs::exists(path, ec)) {
    error = "no journal in data dir '" + o.data_dir + "' (expected " + path + ")";
    return std::nullopt;
  }
  return path;
}

int verify(const options& o) {
  std::string error;
  std::optional<std::string> path;
  wager::journal_options pg;
  if (!o.journal.empty()) {
    pg.url = o.journal;
    path = wager::journal_location(pg);
  } else {
    path = existing_journal(o, error);
  }
  if (!path)
    return fail(error);
  wager::ledger_audit audit;
  auto checked = o.journal.empty() ? wager::verify_journal(*path, &audit)
                                   : wager::verify_pg_journal(pg, &audit);
  if (!checked)
    return fail("cannot verify " + *path + ": " + wager::message_of(checked.error()));
  auto& money = audit.report();
  auto summary = wager::to_json(money);
  auto total = checked->problems.size() + checked->problems_dropped;
  // The audit's violations are in the verify report too ("money: ..."),
  // one line each plus one counting those beyond its list.
  auto money_lines = money.violations.size() + (money.violations_dropped > 0 ? 1 : 0);
  summary["ok"] = checked->ok();
  summary["journal"] = boost::json::object{
    {"path", *path},
    {"streams", checked->streams},
    {"events", checked->events},
    {"snapshots", checked->snapshots},
    {"requests", checked->requests},
    {"problems", total - std::min<uint64_t>(total, money_lines)}};
  print_json(summary);
  if (checked->ok())
    return exit_ok;
  std::fprintf(stderr, "wagerctl: verify failed: %s%s\n", checked->problems.front().c_str(),
               total > 1 ? (" (and " + std::to_string(total - 1) + " more)").c_str() : "");
  return exit_violation;
}

// The name of the backup `upgrade` takes before it changes anything, in the
// data dir beside the journal: journal.db.before-upgrade-<UTC time>.
std::string upgrade_backup_name(const std::string& journal_path) {
  auto now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm utc{};
  gmtime_r(&now, &utc);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%SZ", &utc);
  return journal_path + ".before-upgrade-" + stamp;
}

// Brings an older journal to this release's: the schema migrated (in one
// transaction), then the row layout rewritten in the log layout (in one
// more; persistence/layout_upgrade.hpp). A backup is taken first, since an
// older release cannot open the upgraded file; a journal already current is
// left alone.
int upgrade(const options& o) {
  std::string error;
  auto path = existing_journal(o, error);
  if (!path)
    return fail(error);
  int64_t from = 0;
  wager::journal_layout layout = wager::journal_layout::rows;
  {
    auto before = wager::open_journal_for_inspection(*path);
    if (!before)
      return fail("cannot upgrade " + *path + ": " + wager::message_of(before.error()));
    auto version = before->query_int("PRAGMA user_version", "reading the schema version");
    if (!version)
      return fail("cannot upgrade " + *path + ": " + wager::message_of(version.error()));
    from = *version;
    auto found = wager::layout_of(*before, *path);
    if (!found)
      return fail("cannot upgrade " + *path + ": " + wager::message_of(found.error()));
    layout = *found;
  }
  boost::json::object out{{"journal", *path},
                          {"from_version", from},
                          {"to_version", wager::journal_schema_version},
                          {"from_layout", layout == wager::journal_layout::log ? "log" : "rows"},
                          {"layout", "log"}};
  if (from == wager::journal_schema_version && layout == wager::journal_layout::log) {
    out["upgraded"] = false;
    print_json(out);
    return exit_ok;
  }
  auto backup_file = o.file.empty() ? upgrade_backup_name(*path) : o.file;
  auto saved = wager::backup_journal(*path, backup_file);
  if (!saved)
    return fail("cannot upgrade " + *path + ": the backup first failed: " +
                wager::message_of(saved.error()));
  {
    wager::journal_options jo;
    jo.path = *path;
    jo.create_if_missing = false;
    auto migrated = wager::open_journal_file(jo, wager::journal_role::writer);
    if (!migrated)
      return fail("cannot upgrade " + *path + " (backup in " + backup_file +
                  "): " + wager::message_of(migrated.error()));
  }
  auto converted = wager::upgrade_to_log_layout(*path);
  if (!converted)
    return fail("cannot upgrade " + *path + " (unchanged from schema version " +
                std::to_string(wager::journal_schema_version) + " on; backup in " + backup_file +
                "): " + wager::message_of(converted.error()));
  out["upgraded"] = true;
  out["backup"] = backup_file;
  if (converted->converted) {
    out["streams"] = converted->streams;
    out["events"] = converted->events;
    out["requests"] = converted->requests;
    out["frames"] = converted->frames;
  }
  print_json(out);
  return exit_ok;
}

int backup(const options& o) {
  std::string error;
  auto path = existing_journal(o, error);
  if (!path)
    return fail(error);
  auto info = wager::backup_journal(*path, o.file);
  if (!info)
    return fail("backup failed: " + wager::message_of(info.error()));
  print_json(boost::json::object{{"backup", o.file}, {"pages", info->pages},
                                 {"bytes", info->bytes}});
  return exit_ok;
}

int restore(const options& o) {
  std::error_code ec;
  if (!fs::is_regular_file(o.file, ec))
    return fail("no backup file '" + o.file + "'");
  if (fs::exists(o.data_dir, ec)) {
    if (!fs::is_directory(o.data_dir, ec))
      return fail("data dir '" + o.data_dir + "' is not a directory");
    if (!fs::is_empty(o.data_dir, ec) || ec)
      return fail("data dir '" + o.data_dir
                  + "' is not empty; restore only into an empty data dir");
  } else if (!fs::create_directories(o.data_dir, ec) || ec) {
    return fail("cannot create data dir '" + o.data_dir + "': " + ec.message());
  }
  auto path = (fs::path{o.data_dir} / journal_file_name).string();
  auto info = wager::restore_journal(o.file, path);
  if (!info)
    return fail("restore failed: " + wager::message_of(info.error()));
  print_json(boost::json::object{{"restored", path}, {"pages", info->pages},
                                 {"bytes", info->bytes}});
  return exit_ok;
}

// "unauthorized: ..." from the API's error body, or the raw body.
std::string error_text(const wager::ctl::http_answer& a) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(a.body, ec);
  if (!ec && doc.is_object())
    if (auto* err = doc.as_object().if_contains("error"); err && err->is_object()) {
      auto& e = err->as_object();
      auto field = [&](const char* k) {
        auto* v = e.if_contains(k);
        return v && v->is_string() ? std::string{v->as_string()} : std::string{};
      };
      return field("code") + ": " + field("message");
    }
  return a.body.substr(0, 200);
}

int call_node(const options& o, const char* method, const char* path, const char* what) {
  std::string error;
  auto url = wager::ctl::parse_node_url(o.url, error);
  if (!url)
    return fail("bad --url '" + o.url + "': " + error);
  auto answer = wager::ctl::send(*url, {.method = method,
                                        .path = path,
                                        .body = std::string{method} == "POST" ? "{}" : "",
                                        .bearer = o.admin_key,
                                        .timeout = std::chrono::milliseconds{o.timeout_ms},
                                        .ca_file = o.ca_file});
  if (answer.status == 0)
    return fail("cannot reach " + o.url + ": " + answer.error);
  if (answer.status == 404)
    return fail(std::string{what} + ": the node does not serve " + method + " " + path
                + " (404); it may predate this endpoint"
                + (std::string{path} == "/v1/admin/drain"
                     ? ": send the node process SIGTERM to drain it"
                     : ""));
  if (answer.status == 401 || answer.status == 403)
    return fail(std::string{what} + ": the node refused the admin key (" +
                std::to_string(answer.status) + " " + error_text(answer) + ")");
  if (answer.status < 200 || answer.status >= 300)
    return fail(std::string{what} + " failed: HTTP " + std::to_string(answer.status) + " "
                + error_text(answer));
  boost::system::error_code ec;
  auto doc = boost::json::parse(answer.body, ec);
  if (ec || answer.body.empty())
    print_json(boost::json::object{{"status", answer.status}});
  else
    print_json(doc);
  return exit_ok;
}

// A connected TCP socket to HOST:PORT, or -1 with `error` set.
int connect_to(const std::string& address, std::string& error) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size()) {
    error = "expected HOST:PORT";
    return -1;
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  auto host = address.substr(0, colon), port = address.substr(colon + 1);
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    error = ::gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (auto* a = found; a != nullptr && fd < 0; a = a->ai_next) {
    fd = ::socket(a->ai_family, a->ai_socktype, a->ai_protocol);
    if (fd >= 0 && ::connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      ::close(fd);
      fd = -1;
    }
  }
  ::freeaddrinfo(found);
  if (fd < 0)
    error = "connection refused";
  return fd;
}

bool send_all(int fd, std::string_view data) {
  while (!data.empty()) {
    auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    data.remove_prefix(static_cast<size_t>(n));
  }
  return true;
}

// A feed line stamped with the time it is sent: the file's `ts` values are
// from when it was recorded. With --loop, each pass moves `seq` on by the
// file's highest seq, so the producer sees one unbroken sequence. Lines that
// are not JSON objects go as they are (a demo may show how the node skips
// them).
std::string restamp(const std::string& line, int64_t seq_offset, int64_t& seq_seen) {
  boost::system::error_code ec;
  auto doc = boost::json::parse(line, ec);
  if (ec || !doc.is_object() || !doc.as_object().contains("ts"))
    return line;
  auto& o = doc.as_object();
  using namespace std::chrono;
  o["ts"] = duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
  if (auto* seq = o.if_contains("seq"); seq != nullptr && seq->is_int64()) {
    seq_seen = std::max(seq_seen, seq->as_int64());
    *seq = seq->as_int64() + seq_offset;
  }
  return boost::json::serialize(doc);
}

int feed_replay(const options& o) {
  if (o.loop && o.rate <= 0)
    return fail("--loop needs a --rate above 0, or it floods the node");
  std::ifstream in{o.file};
  if (!in)
    return fail("cannot read feed file '" + o.file + "'");
  std::string error;
  int fd = connect_to(o.feed, error);
  if (fd < 0)
    return fail("cannot reach the feed at '" + o.feed + "': " + error);
  using clock = std::chrono::steady_clock;
  auto start = clock::now();
  uint64_t sent = 0;
  int64_t seq_offset = 0;
  std::string line;
  for (;;) {
    int64_t seq_seen = 0;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r')
        line.pop_back();
      if (line.empty() || line.front() == '#')
        continue;
      if (o.rate > 0)
        std::this_thread::sleep_until(
          start + std::chrono::duration_cast<clock::duration>(std::chrono::duration<double>(
                    static_cast<double>(sent) / o.rate)));
      if (!send_all(fd, restamp(line, seq_offset, seq_seen) + "\n")) {
        ::close(fd);
        return fail("the feed connection closed after " + std::to_string(sent) + " lines");
      }
      ++sent;
    }
    if (!o.loop || sent == 0)
      break;
    seq_offset += seq_seen;
    in.clear();
    in.seekg(0);
  }
  ::close(fd);
  auto seconds = std::chrono::duration<double>(clock::now() - start).count();
  print_json(boost::json::object{{"sent", sent}, {"seconds", seconds}});
  return exit_ok;
}

int run(const options& o, const std::string& command) {
  if (command == "feed-replay")
    return feed_replay(o);
  bool offline = command == "verify" || command == "backup" || command == "restore"
                 || command == "upgrade";
  if (offline) {
    if (!o.journal.empty()) {
      if (command == "verify")
        return verify(o);
      return fail(command + " works on an embedded journal (--data-dir DIR); a journal on "
                            "PostgreSQL is backed up and restored with PostgreSQL's own tools "
                            "(pg_dump, base backups: docs/operations.md)");
    }
    if (o.data_dir.empty())
      return fail(command + " works on a node's data dir: give --data-dir DIR"
                  + (o.url.empty() ? "" : " (through --url it is not available yet)"));
    if (command == "verify")
      return verify(o);
    if (command == "upgrade")
      return upgrade(o);
    return command == "backup" ? backup(o) : restore(o);
  }
  if (o.url.empty() || o.admin_key.empty())
    return fail(command + " talks to a node: give --url URL and --admin-key KEY"
                          " (or WAGER_ADMIN_KEY)");
  if (command == "status")
    return call_node(o, "GET", "/v1/admin/health", "status");
  return call_node(o, "POST", "/v1/admin/drain", "drain");
}

} // namespace

int main(int argc, char** argv) {
  options o;
  CLI::App app{"wagerctl: operate a Wager node or its data dir", "wagerctl"};
  app.add_option("--data-dir", o.data_dir, "a node's data dir (verify, backup, restore, upgrade)");
  app.add_option("--journal", o.journal,
                 "a journal on PostgreSQL, postgresql://user@host:port/db (verify); the "
                 "password from PGPASSWORD or PGPASSFILE")
    ->envname("WAGER_JOURNAL");
  app.add_option("--url", o.url, "a node's client API, e.g. http://127.0.0.1:8080 (status, drain)");
  app.add_option("--admin-key", o.admin_key, "the node's operator key")
    ->envname("WAGER_ADMIN_KEY");
  app.add_option("--ca-file", o.ca_file, "with an https URL: trust this CA certificate (PEM)");
  app.add_option("--timeout-ms", o.timeout_ms, "deadline for a call to a node")
    ->capture_default_str()
    ->check(CLI::Range(1u, 600000u));
  // At most one; none is reported below in our own words.
  app.require_subcommand(0, 1);
  app.add_subcommand("status", "the node's health: GET /v1/admin/health");
  app.add_subcommand("drain", "drain the node: POST /v1/admin/drain");
  app.add_subcommand("verify",
                     "check the journal's integrity and the money invariant; exit 1 on a violation");
  app.add_subcommand("backup", "copy the live journal to FILE (a new file)")
    ->add_option("FILE", o.file, "the backup to write")
    ->required();
  app.add_subcommand("upgrade",
                     "bring an older journal layout to this release's, after a backup to FILE "
                     "(by default DIR/journal.db.before-upgrade-<UTC time>)")
    ->add_option("FILE", o.file, "where the backup taken first goes (a new file)");
  app.add_subcommand("restore", "make FILE the journal of an empty data dir")
    ->add_option("FILE", o.file, "a backup made by wagerctl backup")
    ->required();
  auto* replay = app.add_subcommand(
    "feed-replay", "send an NDJSON feed file to a node's feed port, ts restamped to now");
  replay->add_option("FILE", o.file, "the feed file, one message per line")->required();
  replay->add_option("--feed", o.feed, "the node's feed listener, HOST:PORT")->required();
  replay->add_option("--rate", o.rate, "lines per second; 0 sends as fast as possible")
    ->capture_default_str()
    ->check(CLI::Range(0.0, 1'000'000.0));
  replay->add_flag("--loop", o.loop,
                   "play the file again and again (seq carries on); needs --rate above 0");
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    return fail(std::string{e.what()} + " (see wagerctl --help)");
  }
  if (app.get_subcommands().empty())
    return fail("no command given: one of status, drain, verify, backup, restore, feed-replay"
                " (see wagerctl --help)");
  return run(o, app.get_subcommands().front()->get_name());
}
