// The journal on PostgreSQL beyond the conformance suites (which run against
// it as persistence/<suite>[postgresql]): what only a server has. Each case
// starts a real server of its own (support/postgres_server.hpp).

#include "journal_support.hpp"

#include "wager/persistence/pg_db.hpp"
#include "wager/persistence/pg_journal.hpp"

#include "support/postgres_server.hpp"
#include "support/wait.hpp"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <thread>

using namespace wager;
using namespace wager::test;

namespace {

journal_options on(const std::string& url) {
  journal_options o;
  o.url = url;
  o.connect_timeout_s = 2;
  return o;
}

// Runs SQL on the server from a connection of its own, or fails the test.
void sql(const std::string& url, const std::string& statement) {
  auto c = pg::connection::open(url, "test", 5);
  REQUIRE(c);
  auto err = c->exec(statement, "test SQL");
  REQUIRE_MESSAGE(!err, message_of(err));
}

int64_t sql_int(const std::string& url, const std::string& query) {
  auto c = pg::connection::open(url, "test", 5);
  REQUIRE(c);
  auto r = c->query(query, {}, "test SQL");
  REQUIRE(r);
  return r->int64(0, 0);
}

// A journal with three streams of events, a stored request and a snapshot.
void fill(journal& j) {
  for (auto s : {"wallet/a", "wallet/b", "market/m"})
    for (uint64_t seq = 0; seq < 3; ++seq)
      REQUIRE(append_sync(j, s, seq, {amount_event("deposited", 10 + static_cast<int64_t>(seq))}));
  REQUIRE(append_sync(j, {"wallet/a", 3, {amount_event("withdrawn", 5)},
                          request_record{"req-1", R"({"ok":true})"}}));
  REQUIRE(save_sync(j, snapshot{"wallet/a", 2, 1, R"({"balance":21})"}));
}

bool names(const verify_report& r, const std::string& what) {
  for (auto& p : r.problems)
    if (p.find(what) != std::string::npos)
      return true;
  return false;
}

} // namespace

TEST_CASE("acknowledged appends survive the server's processes killed with -9") {
  // Commits are acknowledged only once PostgreSQL has flushed their WAL
  // (synchronous_commit=on on the journal's connections). Were they
  // acknowledged earlier, the appends answered just before the kill would
  // be missing after the restart.
  postgres_server pg;
  pg.create_database("j");
  auto url = pg.url("j");
  std::mutex mutex;
  std::vector<std::pair<std::string, uint64_t>> acked; // stream, last seq
  {
    auto j = open_pg_journal(on(url));
    REQUIRE(j);
    std::atomic<bool> stop{false};
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w)
      writers.emplace_back([&, w] {
        auto stream = "wallet/w" + std::to_string(w);
        uint64_t seq = 0;
        while (!stop) {
          auto r = append_sync(**j, stream, seq, {amount_event("deposited", 1)});
          if (!r)
            return; // the server is gone
          seq = r->last_seq;
          std::lock_guard lock{mutex};
          acked.emplace_back(stream, seq);
        }
      });
    REQUIRE(wait_until([&] {
      std::lock_guard lock{mutex};
      return acked.size() >= 400;
    }, std::chrono::seconds{60}));
    pg.crash();
    stop = true;
    for (auto& t : writers)
      t.join();
  }
  pg.start();
  auto j = open_pg_journal(on(url));
  REQUIRE(j);
  std::map<std::string, uint64_t> last;
  for (auto& [stream, seq] : acked)
    last[stream] = std::max(last[stream], seq);
  for (auto& [stream, seq] : last) {
    CAPTURE(stream);
    auto stored = (*j)->last_seq(stream);
    REQUIRE(stored);
    CHECK(*stored >= seq);
  }
  auto report = verify_pg_journal(on(url));
  REQUIRE(report);
  CHECK_MESSAGE(report->ok(), (report->problems.empty() ? "" : report->problems.front()));
}

TEST_CASE("verify finds a changed event, a changed frame and a missing frame") {
  postgres_server pg;
  pg.create_database("j");
  auto url = pg.url("j");
  {
    auto j = open_pg_journal(on(url));
    REQUIRE(j);
    fill(**j);
  }
  auto clean = verify_pg_journal(on(url));
  REQUIRE(clean);
  CHECK(clean->ok());
  CHECK(clean->streams == 3);
  CHECK(clean->events == 10);
  CHECK(clean->requests == 1);
  CHECK(clean->snapshots == 1);

  SUBCASE("a payload changed in place fails its row checksum") {
    sql(url, "UPDATE events SET payload = '{\"amount\":1000}' WHERE stream = 'wallet/b' AND seq = 2");
    auto r = verify_pg_journal(on(url));
    REQUIRE(r);
    CHECK(names(*r, "checksum mismatch in event 2 of wallet/b"));
  }
  SUBCASE("an event changed and resealed with a new checksum breaks the chain") {
    auto sum = static_cast<int64_t>(row_checksum("wallet/b", 2, "deposited", 1, "{\"amount\":1000}"));
    sql(url, "UPDATE events SET payload = '{\"amount\":1000}', checksum = " + std::to_string(sum) +
               " WHERE stream = 'wallet/b' AND seq = 2");
    auto r = verify_pg_journal(on(url));
    REQUIRE(r);
    CHECK(names(*r, "does not hash to what it records"));
  }
  SUBCASE("a frame deleted leaves a gap in the log") {
    sql(url, "DELETE FROM frames WHERE position = 2");
    auto r = verify_pg_journal(on(url));
    REQUIRE(r);
    CHECK(names(*r, "no frame 2 before frame 3"));
  }
  SUBCASE("a stored request changed fails its checksum") {
    sql(url, "UPDATE requests SET result = '{\"ok\":false}'");
    auto r = verify_pg_journal(on(url));
    REQUIRE(r);
    CHECK(names(*r, "checksum mismatch in request req-1"));
  }
}

TEST_CASE("the log reads back frame by frame with each frame's hash, and a read model can page "
          "through it") {
  postgres_server pg;
  pg.create_database("j");
  auto url = pg.url("j");
  auto j = open_pg_journal(on(url));
  REQUIRE(j);
  fill(**j);
  auto end = (*j)->log_end();
  REQUIRE(end);
  CHECK(*end == 10); // one frame per batch: each append here waited for the one before
  auto all = (*j)->read_log(0, 100);
  REQUIRE(all);
  CHECK(all->end == 10);
  CHECK(all->appends.size() == 10);
  CHECK(all->appends.front().stream == "wallet/a");
  CHECK(all->appends.front().events.front().seq == 1);
  auto wallets = (*j)->read_log(0, 100, "wallet");
  REQUIRE(wallets);
  CHECK(wallets->end == 10);
  CHECK(wallets->appends.size() == 7);
  // Two pages end where one does, with the same hash.
  auto first = (*j)->read_log(0, 4);
  REQUIRE(first);
  CHECK(first->end == 4);
  auto second = (*j)->read_log(first->end, 100);
  REQUIRE(second);
  CHECK(second->end == 10);
  CHECK(second->end_hash == all->end_hash);
  CHECK(all->end_hash != std::array<uint8_t, 32>{});
  auto none = (*j)->read_log(10, 100);
  REQUIRE(none);
  CHECK(none->end == 10);
  CHECK(none->appends.empty());
}

TEST_CASE("an opening refuses a newer schema, a database that holds something else, and a URL "
          "that is not PostgreSQL's") {
  postgres_server pg;
  pg.create_database("j");
  pg.create_database("other");
  {
    auto j = open_pg_journal(on(pg.url("j")));
    REQUIRE(j);
  }
  sql(pg.url("j"), "UPDATE wager_journal SET schema_version = schema_version + 1");
  auto newer = open_pg_journal(on(pg.url("j")));
  REQUIRE_FALSE(newer);
  CHECK(code_of(newer.error()) == errc::journal_failure);
  CHECK(message_of(newer.error()).find("newer than this release's") != std::string::npos);

  sql(pg.url("other"), "CREATE TABLE accounts (id integer)");
  auto taken = open_pg_journal(on(pg.url("other")));
  REQUIRE_FALSE(taken);
  CHECK(message_of(taken.error()).find("holds other tables and no Wager journal") !=
        std::string::npos);
  CHECK(sql_int(pg.url("other"), "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") ==
        1);

  auto not_pg = open_journal(on("mysql://root:secret@db/wager"));
  REQUIRE_FALSE(not_pg);
  CHECK(code_of(not_pg.error()) == errc::invalid_field);
  CHECK(message_of(not_pg.error()).find("secret") == std::string::npos);

  // A server that is not there: unavailable, and a password in the URL's
  // query is not repeated either.
  auto absent = open_journal(on("postgresql://wager@127.0.0.1:1/wager?password=hunter2&sslmode=disable"));
  REQUIRE_FALSE(absent);
  CHECK(code_of(absent.error()) == errc::unavailable);
  CHECK(message_of(absent.error()).find("hunter2") == std::string::npos);
  CHECK(message_of(absent.error()).find("password=***&sslmode=disable") != std::string::npos);
}

TEST_CASE("payloads with quotes, backslashes, braces, commas and non-ASCII read back byte for "
          "byte") {
  postgres_server pg;
  pg.create_database("j");
  auto j = open_pg_journal(on(pg.url("j")));
  REQUIRE(j);
  std::vector<event> events{
    event::make("named", 1, boost::json::object{{"name", "O'Brien \"The Boss\" \\ {x}, y"}}),
    event::make("named", 2, boost::json::object{{"name", "Zoë — 🐎 \\\\n"}}),
    event::make("named", 1, boost::json::array{"{", "}", ",", "\"", "\\"})};
  REQUIRE(append_sync(**j, {"wallet/q", 0, events, request_record{"r\"1\\", R"({"a":"\\"})"}}));
  auto back = (*j)->read_events("wallet/q", 1, 10);
  REQUIRE(back);
  REQUIRE(back->size() == 3);
  for (size_t i = 0; i < events.size(); ++i)
    CHECK((*back)[i].data == events[i]);
  auto stored = (*j)->find_request("wallet/q", "r\"1\\");
  REQUIRE(stored);
  REQUIRE(stored->has_value());
  CHECK((*stored)->result == R"({"a":"\\"})");
  auto report = verify_pg_journal(on(pg.url("j")));
  REQUIRE(report);
  CHECK(report->ok());
}
