#pragma once

// A real PostgreSQL server for tests, from Debian's postgresql package: a
// fresh cluster (initdb) in a temporary directory, listening on 127.0.0.1
// only, at a free port, with fsync and synchronous commit on. Started by the
// test and stopped by its pid. As root the server runs as the `postgres`
// user (initdb refuses root).

#include "support/process.hpp"
#include "support/temp_dir.hpp"

#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <sys/types.h>

namespace wager::test {

// How a test's server differs from the default (127.0.0.1, trust, no TLS).
struct postgres_server_options {
  // Run inside this network namespace (ip netns), listening on `address`
  // there and admitting clients of `clients` (a CIDR range).
  std::string netns;
  std::string address = "127.0.0.1";
  std::string clients;
  // TLS: the server's certificate and key (PEM files, copied into the
  // server's directory). With them, clients must use TLS.
  std::string tls_cert;
  std::string tls_key;
  // The password of user `wager` (SCRAM), required of every client.
  std::string password;
};

class postgres_server {
public:
  // initdb, then start(). Throws std::runtime_error, with the server's log,
  // when either fails.
  postgres_server();
  explicit postgres_server(postgres_server_options options);
  // Immediate shutdown (SIGQUIT): no shutdown checkpoint, since the data
  // directory is removed with it.
  ~postgres_server();

  postgres_server(const postgres_server&) = delete;
  postgres_server& operator=(const postgres_server&) = delete;

  // Starts the server on its port and waits until it accepts connections.
  void start();
  // Fast shutdown (SIGINT) and waits for the server to exit; SIGKILL after
  // 60 s. Nothing if it is not running.
  void stop();

  // kill -9 of the postmaster and every process it started (the backends,
  // the WAL writer, the checkpointer): a crash of the server, after which
  // start() recovers it from its WAL. What was written to the kernel
  // survives; what the server held only in its own memory does not.
  void crash();

  bool running() const { return process_ != nullptr; }
  pid_t pid() const;
  uint16_t port() const { return port_; }

  // postgresql://wager@127.0.0.1:<port>/<database>
  std::string url(const std::string& database) const;
  // The URL of schema `schema` in `database`: the journal's tables go
  // there (search_path), so many journals share one database.
  std::string url(const std::string& database, const std::string& schema) const;
  // Creates the database unless this server created it before.
  void create_database(const std::string& name);
  // Creates the schema in the database unless this server created it before.
  void create_schema(const std::string& database, const std::string& schema);
  // The server's log so far.
  std::string log() const;
  // The address it listens on.
  const std::string& address() const { return options_.address; }

private:
  void init();
  std::string conninfo(const std::string& database) const;

  postgres_server_options options_;
  temp_dir dir_;
  std::string data_dir_;
  std::string log_path_;
  uint16_t port_ = 0;
  std::unique_ptr<child_process> process_;
  std::set<std::string> databases_;
  std::set<std::string> schemas_;

  void run_sql(const std::string& database, const std::string& sql);
};

// The server this test process shares, started on first use and stopped when
// the process exits.
postgres_server& shared_postgres();

// Whether WAGER_TEST_JOURNAL=postgresql: the journal suites open their
// journals on shared_postgres().
bool journal_on_postgres();

} // namespace wager::test
