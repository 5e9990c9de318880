#include "support/postgres_server.hpp"

#include <libpq-fe.h>

#include <arpa/inet.h>
#include <chrono>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <netinet/in.h>
#include <pwd.h>
#include <sstream>
#include <stdexcept>
#include <sys/socket.h>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>
#include <vector>

namespace wager::test {

namespace {

// The newest server binaries installed: /usr/lib/postgresql/<major>/bin,
// or WAGER_PG_BINDIR.
std::string bin_dir() {
  if (auto* dir = std::getenv("WAGER_PG_BINDIR"))
    return dir;
  std::string best;
  int best_major = 0;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator{"/usr/lib/postgresql", ec}) {
    auto name = entry.path().filename().string();
    int major = std::atoi(name.c_str());
    if (major > best_major && std::filesystem::exists(entry.path() / "bin" / "postgres")) {
      best_major = major;
      best = (entry.path() / "bin").string();
    }
  }
  if (best.empty())
    throw std::runtime_error("no PostgreSQL server under /usr/lib/postgresql (install the "
                             "postgresql package: scripts/install-deps.sh)");
  return best;
}

uint16_t free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0)
    throw std::runtime_error("cannot bind a port for PostgreSQL");
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

// The command line that runs `command` as the postgres user when we are
// root, with its output appended to `log`.
std::string as_server_user(const std::string& command, const std::string& log) {
  std::string prefix;
  if (::geteuid() == 0)
    prefix = "exec setpriv --reuid=postgres --regid=postgres --clear-groups -- ";
  else
    prefix = "exec ";
  return prefix + command + " >>" + shell_quoted(log) + " 2>&1";
}

std::string read_file(const std::string& path) {
  std::ifstream in{path};
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

} // namespace

postgres_server::postgres_server() {
  init();
}

postgres_server::postgres_server(postgres_server_options options) : options_(std::move(options)) {
  init();
}

void postgres_server::init() {
  data_dir_ = (dir_ / "data").string();
  log_path_ = (dir_ / "server.log").string();
  std::filesystem::create_directories(data_dir_);
  if (::geteuid() == 0) {
    auto* pw = ::getpwnam("postgres");
    if (pw == nullptr)
      throw std::runtime_error("running as root and there is no postgres user to run "
                               "PostgreSQL as (install the postgresql package)");
    // The server user must reach its data directory and write its log.
    ::chmod(dir_.str().c_str(), 0711);
    if (::chown(data_dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("cannot give " + data_dir_ + " to the postgres user");
    std::ofstream{log_path_}.flush();
    if (::chown(log_path_.c_str(), pw->pw_uid, pw->pw_gid) != 0)
      throw std::runtime_error("cannot give " + log_path_ + " to the postgres user");
  }
  // --no-sync only for initdb's own files: the server below runs with
  // fsync on, which is what the tests' durability rests on.
  child_process initdb{"/bin/sh",
                       {"-c", as_server_user(shell_quoted(bin_dir() + "/initdb") + " -D " +
                                               shell_quoted(data_dir_) +
                                               " -U wager --auth=trust -E UTF8 --no-locale "
                                               "--no-sync",
                                             log_path_)}};
  auto status = initdb.wait(std::chrono::seconds{120});
  if (status != 0)
    throw std::runtime_error("initdb failed (status " +
                             (status ? std::to_string(*status) : std::string{"timeout"}) +
                             "):\n" + log());
  if (!options_.clients.empty()) {
    std::ofstream hba{data_dir_ + "/pg_hba.conf", std::ios::app};
    hba << "host all all " << options_.clients << " trust\n";
  }
  if (!options_.tls_cert.empty()) {
    for (auto [from, to] : {std::pair{options_.tls_cert, "server.crt"},
                            std::pair{options_.tls_key, "server.key"}}) {
      auto target = data_dir_ + "/" + to;
      std::filesystem::copy_file(from, target, std::filesystem::copy_options::overwrite_existing);
      ::chmod(target.c_str(), 0600);
      if (::geteuid() == 0) {
        auto* pw = ::getpwnam("postgres");
        if (pw == nullptr || ::chown(target.c_str(), pw->pw_uid, pw->pw_gid) != 0)
          throw std::runtime_error("cannot give " + target + " to the postgres user");
      }
    }
  }
  port_ = free_port();
  start();
  if (!options_.password.empty()) {
    // Set while the server still trusts everyone, then required of all:
    // over TLS when the server has a certificate, refused without it.
    auto password = options_.password;
    options_.password.clear();
    std::string quoted;
    for (char c : password)
      quoted += c == '\'' ? std::string{"''"} : std::string(1, c);
    run_sql("postgres", "ALTER USER wager PASSWORD '" + quoted + "'");
    {
      std::ofstream hba{data_dir_ + "/pg_hba.conf", std::ios::trunc};
      auto from = options_.address + "/32";
      if (options_.tls_cert.empty()) {
        hba << "host all all " << from << " scram-sha-256\n";
      } else {
        hba << "hostssl all all " << from << " scram-sha-256\n";
        hba << "hostnossl all all " << from << " reject\n";
      }
    }
    run_sql("postgres", "SELECT pg_reload_conf()");
    options_.password = password;
  }
}

std::string postgres_server::conninfo(const std::string& database) const {
  auto info = "host=" + options_.address + " port=" + std::to_string(port_) +
              " user=wager dbname=" + database + " connect_timeout=5";
  if (!options_.password.empty())
    info += " password='" + options_.password + "'";
  if (!options_.tls_cert.empty())
    info += " sslmode=require";
  return info;
}

postgres_server::~postgres_server() {
  if (process_ == nullptr)
    return;
  process_->signal(SIGQUIT);
  if (!process_->wait(std::chrono::seconds{30})) {
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds{10});
  }
}

void postgres_server::start() {
  if (process_ != nullptr)
    return;
  auto command = shell_quoted(bin_dir() + "/postgres") + " -D " + shell_quoted(data_dir_) +
                 " -p " + std::to_string(port_) +
                 " -c listen_addresses=" + options_.address + " -c unix_socket_directories=''" +
                 (options_.tls_cert.empty()
                    ? std::string{}
                    : std::string{" -c ssl=on -c ssl_cert_file=server.crt"
                                  " -c ssl_key_file=server.key"}) +
                 " -c fsync=on -c synchronous_commit=on -c full_page_writes=on"
                 " -c max_connections=200 -c shared_buffers=64MB"
                 " -c log_min_messages=warning"
                 // The WAL writer flushes commits that did not wait for their
                 // flush only every 10 s: a journal acknowledging before the
                 // flush loses its last commits to crash() (synchronous_commit).
                 " -c wal_writer_delay=10s";
  auto line = as_server_user(command, log_path_);
  if (!options_.netns.empty())
    line = "exec ip netns exec " + shell_quoted(options_.netns) + " " + line.substr(5);
  process_ = std::make_unique<child_process>("/bin/sh", std::vector<std::string>{"-c", line});
  auto ping = "host=" + options_.address + " port=" + std::to_string(port_) +
              " user=wager dbname=postgres connect_timeout=2";
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{60};
  while (PQping(ping.c_str()) != PQPING_OK) {
    if (auto status = process_->wait(std::chrono::milliseconds{0})) {
      process_.reset();
      throw std::runtime_error("PostgreSQL exited at start (status " + std::to_string(*status) +
                               "):\n" + log());
    }
    if (std::chrono::steady_clock::now() > until)
      throw std::runtime_error("PostgreSQL did not accept connections within 60 s:\n" + log());
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
}

void postgres_server::stop() {
  if (process_ == nullptr)
    return;
  process_->signal(SIGINT); // fast shutdown: running transactions are rolled back
  if (!process_->wait(std::chrono::seconds{60})) {
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds{10});
  }
  process_.reset();
}

namespace {

// The processes whose parent is `parent`, from /proc.
std::vector<pid_t> children_of(pid_t parent) {
  std::vector<pid_t> out;
  std::error_code ec;
  for (auto& entry : std::filesystem::directory_iterator{"/proc", ec}) {
    auto name = entry.path().filename().string();
    if (name.find_first_not_of("0123456789") != std::string::npos)
      continue;
    std::ifstream stat{entry.path() / "stat"};
    std::string line;
    std::getline(stat, line);
    // pid (comm) state ppid ...: comm may hold spaces, so read after ')'.
    auto close = line.rfind(')');
    if (close == std::string::npos)
      continue;
    std::istringstream rest{line.substr(close + 1)};
    char state = 0;
    pid_t ppid = 0;
    rest >> state >> ppid;
    if (ppid == parent)
      out.push_back(static_cast<pid_t>(std::stoi(name)));
  }
  return out;
}

// Gone, or a zombie nobody has reaped yet.
bool gone(pid_t pid) {
  std::ifstream stat{"/proc/" + std::to_string(pid) + "/stat"};
  std::string line;
  if (!std::getline(stat, line))
    return true;
  auto close = line.rfind(')');
  return close != std::string::npos && close + 2 < line.size() && line[close + 2] == 'Z';
}

} // namespace

void postgres_server::crash() {
  if (process_ == nullptr)
    return;
  auto children = children_of(process_->pid());
  process_->signal(SIGKILL);
  for (auto child : children)
    ::kill(child, SIGKILL);
  process_->wait(std::chrono::seconds{10});
  process_.reset();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds{30};
  for (auto child : children)
    while (!gone(child) && std::chrono::steady_clock::now() < until)
      std::this_thread::sleep_for(std::chrono::milliseconds{10});
}

pid_t postgres_server::pid() const {
  return process_ == nullptr ? -1 : process_->pid();
}

std::string postgres_server::url(const std::string& database) const {
  return "postgresql://wager@" + options_.address + ":" + std::to_string(port_) + "/" + database;
}

std::string postgres_server::url(const std::string& database, const std::string& schema) const {
  return url(database) + "?options=-c%20search_path%3D" + schema;
}

void postgres_server::run_sql(const std::string& database, const std::string& sql) {
  PGconn* c = PQconnectdb(conninfo(database).c_str());
  std::string error;
  if (PQstatus(c) != CONNECTION_OK) {
    error = PQerrorMessage(c);
  } else {
    PGresult* r = PQexec(c, sql.c_str());
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK)
      error = PQresultErrorMessage(r);
    PQclear(r);
  }
  PQfinish(c);
  if (!error.empty())
    throw std::runtime_error(sql + ": " + error);
}

void postgres_server::create_database(const std::string& name) {
  if (databases_.count(name) != 0)
    return;
  run_sql("postgres", "CREATE DATABASE \"" + name + "\"");
  databases_.insert(name);
}

void postgres_server::create_schema(const std::string& database, const std::string& schema) {
  if (!schemas_.insert(database + "/" + schema).second)
    return;
  run_sql(database, "CREATE SCHEMA \"" + schema + "\"");
}

std::string postgres_server::log() const {
  return read_file(log_path_);
}

postgres_server& shared_postgres() {
  static postgres_server server;
  return server;
}

bool journal_on_postgres() {
  auto* v = std::getenv("WAGER_TEST_JOURNAL");
  return v != nullptr && std::string{v} == "postgresql";
}

} // namespace wager::test
