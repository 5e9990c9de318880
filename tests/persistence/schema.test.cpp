#include "journal_support.hpp"

#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/journal_writer.hpp"
#include "wager/persistence/upcasting.hpp"

#include "support/temp_dir.hpp"

#include <doctest/doctest.h>

#include <sqlite3.h>

#include <boost/json/parse.hpp>

#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

using namespace wager;
using namespace wager::test;

namespace {

void raw_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  char* error = nullptr;
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &error);
  INFO(sql << ": " << (error ? error : ""));
  sqlite3_free(error);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);
}

std::string open_error(const journal_options& options) {
  auto j = open_sqlite_journal(options);
  REQUIRE_FALSE(j);
  CHECK(code_of(j.error()) == errc::journal_failure);
  return message_of(j.error());
}

} // namespace

TEST_CASE("a new journal carries the application id and the current schema version") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  open_or_fail(options_at(path)).reset();
  auto db = open_journal_for_inspection(path);
  REQUIRE(db);
  CHECK(*db->query_int("PRAGMA application_id", "") == journal_application_id);
  CHECK(*db->query_int("PRAGMA user_version", "") == journal_schema_version);
  CHECK(*db->query_int("SELECT journal_mode = 'wal' FROM pragma_journal_mode", "") == 1);
  // No leftovers of the create-then-link step.
  for (auto& entry : std::filesystem::directory_iterator(dir.path()))
    CHECK(entry.path().filename().string().find("creating") == std::string::npos);
}

TEST_CASE("a journal from a newer schema version is refused with a clear error") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  open_or_fail(options_at(path)).reset();
  raw_exec(path, "PRAGMA user_version = 99");
  auto message = open_error(options_at(path));
  CHECK(message.find("schema version 99 is newer than this build supports (" +
                   std::to_string(journal_schema_version) + ")") !=
        std::string::npos);
  CHECK(message.find(path) != std::string::npos);
}

TEST_CASE("a SQLite file that is not a journal is refused") {
  temp_dir dir;
  auto path = (dir / "other.db").string();
  raw_exec(path, "CREATE TABLE t (x)");
  CHECK(open_error(options_at(path)).find("not a Wager journal") != std::string::npos);
}

TEST_CASE("an older schema version is migrated when the journal opens") {
  // Version 0 is a file with the application id and no schema yet: the
  // first migration creates the tables.
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  raw_exec(path, "PRAGMA journal_mode = WAL; PRAGMA application_id = " +
                   std::to_string(journal_application_id));
  auto j = open_or_fail(options_at(path));
  CHECK(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)}));
  j.reset();
  CHECK(*open_journal_for_inspection(path)->query_int("PRAGMA user_version", "") ==
        journal_schema_version);
}

TEST_CASE("a version 1 journal keeps its streams across the migration to open-work marks") {
  // The tables as schema version 1 shipped them, with one stream in it.
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  raw_exec(path, "PRAGMA journal_mode = WAL; PRAGMA application_id = " +
                   std::to_string(journal_application_id) +
                   "; CREATE TABLE streams (stream TEXT NOT NULL PRIMARY KEY, kind TEXT NOT NULL, "
                   "last_seq INTEGER NOT NULL) WITHOUT ROWID;"
                   "CREATE INDEX streams_by_kind ON streams (kind, stream);"
                   "CREATE TABLE events (stream TEXT NOT NULL, seq INTEGER NOT NULL, type TEXT "
                   "NOT NULL, version INTEGER NOT NULL, payload TEXT NOT NULL, at_ms INTEGER NOT "
                   "NULL, checksum INTEGER NOT NULL, PRIMARY KEY (stream, seq)) WITHOUT ROWID;"
                   "CREATE TABLE snapshots (stream TEXT NOT NULL PRIMARY KEY, seq INTEGER NOT "
                   "NULL, version INTEGER NOT NULL, state TEXT NOT NULL, at_ms INTEGER NOT NULL, "
                   "checksum INTEGER NOT NULL) WITHOUT ROWID;"
                   "CREATE TABLE requests (stream TEXT NOT NULL, request_id TEXT NOT NULL, seq "
                   "INTEGER NOT NULL, result TEXT NOT NULL, at_ms INTEGER NOT NULL, checksum "
                   "INTEGER NOT NULL, PRIMARY KEY (stream, request_id)) WITHOUT ROWID;"
                   "CREATE INDEX requests_by_age ON requests (at_ms);"
                   "INSERT INTO streams VALUES ('market/old', 'market', 7);"
                   "PRAGMA user_version = 1;");
  auto j = open_or_fail(options_at(path));
  CHECK(*j->last_seq("market/old") == 7);
  CHECK(*j->list_streams("market", "", 10) == std::vector<std::string>{"market/old"});
  CHECK(j->list_open_streams("market", "", 10)->empty());
  j.reset();
  CHECK(*open_journal_for_inspection(path)->query_int("PRAGMA user_version", "") ==
        journal_schema_version);
}

TEST_CASE("a new journal takes the configured page size, an existing one keeps its own") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto options = options_at(path);
  options.page_size = 1024;
  {
    auto j = open_or_fail(options);
    REQUIRE(append_sync(*j, "wallet/u1", 0, {amount_event("deposited", 1)}));
  }
  CHECK(*open_journal_for_inspection(path)->query_int("PRAGMA page_size", "") == 1024);
  options.page_size = 8192;
  {
    auto j = open_or_fail(options);
    CHECK(*j->last_seq("wallet/u1") == 1);
  }
  CHECK(*open_journal_for_inspection(path)->query_int("PRAGMA page_size", "") == 1024);
  options.page_size = 3000;
  CHECK(message_of(validate(options)).find("page_size") != std::string::npos);
  options.page_size = 256;
  CHECK(message_of(validate(options)).find("page_size") != std::string::npos);
}

TEST_CASE("options outside their bounds are refused, naming the field") {
  temp_dir dir;
  auto options = options_at((dir / "journal.db").string());
  CHECK_FALSE(validate(options));
  options.batch_max = 0;
  auto err = validate(options);
  CHECK(code_of(err) == errc::invalid_field);
  CHECK(message_of(err).find("batch_max") != std::string::npos);
  options = options_at((dir / "journal.db").string());
  options.reader_threads = 4;
  options.read_connections_max = 2;
  CHECK(message_of(validate(options)).find("read_connections_max") != std::string::npos);
  CHECK_FALSE(open_sqlite_journal(options));
  CHECK(message_of(validate(options_at(""))).find("path") != std::string::npos);
}

TEST_CASE("malformed appends are refused at once and never called back") {
  temp_dir dir;
  auto options = options_at((dir / "journal.db").string());
  options.events_per_append_max = 2;
  options.event_bytes_max = 64;
  auto j = open_or_fail(options);
  bool called = false;
  auto done = [&](caf::expected<append_ack>) { called = true; };
  auto refused = [&](append_request r) { return code_of(j->append(std::move(r), done)); };
  CHECK(refused({"no-slash", 0, {amount_event("deposited", 1)}, {}}) == errc::invalid_field);
  CHECK(refused({"wallet/", 0, {amount_event("deposited", 1)}, {}}) == errc::invalid_field);
  CHECK(refused({"wallet/u1", 0, {}, {}}) == errc::invalid_field);
  CHECK(refused({"wallet/u1", 0, {event{"deposited", 1, "{not json"}}, {}}) == errc::invalid_json);
  CHECK(refused({"wallet/u1", 0, {event{"deposited", 0, "{}"}}, {}}) == errc::invalid_field);
  CHECK(refused({"wallet/u1", 0, {event{"", 1, "{}"}}, {}}) == errc::invalid_field);
  CHECK(refused({"wallet/u1", 0, {event{"d", 1, "\"" + std::string(100, 'x') + "\""}}, {}}) ==
        errc::too_large);
  CHECK(refused({"wallet/u1", 0, std::vector<event>(3, amount_event("deposited", 1)), {}}) ==
        errc::too_large);
  CHECK(refused({"wallet/u1", 0, {}, request_record{"", "{}"}}) == errc::invalid_field);
  CHECK(refused({"wallet/u1", 0, {}, request_record{"r", "nope"}}) == errc::invalid_json);
  CHECK(code_of(j->save_snapshot({"wallet/u1", 0, 1, "{}", 0}, {})) == errc::invalid_field);
  j.reset();
  CHECK_FALSE(called);
}

TEST_CASE("an event payload passes the JSON check exactly when Boost.JSON's parse reads it") {
  journal_options options;
  std::string deep_ok(32, '['), deep_too(33, '[');
  deep_ok += std::string(32, ']');
  deep_too += std::string(33, ']');
  std::vector<std::string> payloads{
    "{}", "[]", "0", "-1.5e3", "\"x\"", "true", "null", " {\"a\": [1, 2, {\"b\": null}]} ",
    "{\"k\":\"\\u00e9\\n\"}", "18446744073709551616", deep_ok,
    "", " ", "{", "[1,]", "{\"a\":1,}", "{} {}", "{}x", "/*c*/{}", "{\"a\" 1}", "nul",
    "\"unterminated", "\"\\x\"", "01", "1.", "[1 2]", "\"\xff\"", deep_too};
  for (auto& p : payloads) {
    boost::system::error_code ec;
    boost::json::parse(p, ec);
    auto err = validate_append({"wallet/u1", 0, {event{"e", 1, p}}, {}}, options);
    INFO("payload: " << p);
    CHECK(static_cast<bool>(err) == static_cast<bool>(ec));
    if (err)
      CHECK(code_of(err) == errc::invalid_json);
  }
}

TEST_CASE("upcasters bring old events to the current shape on read and leave the rows as "
          "written") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  {
    auto j = open_or_fail(options_at(path));
    // Version 1 carried whole units in "units"; version 2 has minor units in
    // "amount"; version 3 renamed the type.
    REQUIRE(append_sync(*j, "wallet/u1", 0,
                        {event::make("credit", 1, boost::json::object{{"units", 3}}),
                         event::make("credit", 2, boost::json::object{{"amount", 150}}),
                         event::make("deposited", 3, boost::json::object{{"amount", 7}})}));
  }
  auto registry = std::make_shared<upcaster_registry>();
  registry->add("credit", 1, [](upcast_event& e) -> caf::error {
    auto& o = e.payload.as_object();
    o["amount"] = o.at("units").to_number<int64_t>() * 100;
    o.erase("units");
    return {};
  });
  registry->add("credit", 2, [](upcast_event& e) -> caf::error {
    e.type = "deposited";
    return {};
  });
  auto options = options_at(path);
  options.upcasters = registry;
  auto j = open_or_fail(options);
  auto events = j->read_events("wallet/u1", 1, 10);
  REQUIRE(events);
  REQUIRE(events->size() == 3);
  CHECK((*events)[0].data == event::make("deposited", 3, boost::json::object{{"amount", 300}}));
  CHECK((*events)[1].data == event::make("deposited", 3, boost::json::object{{"amount", 150}}));
  CHECK((*events)[2].data == event::make("deposited", 3, boost::json::object{{"amount", 7}}));
  // Without upcasters the rows read back exactly as they were written.
  auto plain = open_or_fail(options_at(path));
  CHECK((*plain->read_events("wallet/u1", 1, 1))[0].data ==
        event::make("credit", 1, boost::json::object{{"units", 3}}));
}

TEST_CASE("an upcaster that cannot read an old payload fails the read") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  auto registry = std::make_shared<upcaster_registry>();
  registry->add("credit", 1, [](upcast_event& e) -> caf::error {
    if (!e.payload.as_object().contains("units"))
      return make_error(errc::journal_failure, "credit v1 without units");
    return {};
  });
  auto options = options_at(path);
  options.upcasters = registry;
  auto j = open_or_fail(options);
  REQUIRE(append_sync(*j, "wallet/u1", 0, {event::make("credit", 1, boost::json::object{})}));
  auto events = j->read_events("wallet/u1", 1, 10);
  REQUIRE_FALSE(events);
  CHECK(message_of(events.error()) == "credit v1 without units");
}

TEST_CASE("a connection opening while another holds the file waits for it instead of failing") {
  temp_dir dir;
  auto path = (dir / "journal.db").string();
  open_or_fail(options_at(path)).reset();
  // A connection in exclusive locking mode keeps every other one out of the
  // file until it closes, as WAL recovery or the last close's checkpoint
  // does for a moment.
  sqlite3* holder = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &holder) == SQLITE_OK);
  REQUIRE(sqlite3_exec(holder, "PRAGMA locking_mode = EXCLUSIVE; BEGIN EXCLUSIVE", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  std::mutex m;
  std::condition_variable cv;
  std::optional<caf::expected<sqlite::connection>> opened;
  std::thread opener{[&] {
    auto db = open_journal_file(options_at(path), journal_role::reader);
    std::lock_guard lock{m};
    opened.emplace(std::move(db));
    cv.notify_all();
  }};
  {
    // Still waiting well after an opener without a busy handler would have
    // failed.
    std::unique_lock lock{m};
    CHECK_FALSE(cv.wait_for(lock, std::chrono::milliseconds{300}, [&] { return opened.has_value(); }));
  }
  sqlite3_exec(holder, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(holder);
  opener.join();
  REQUIRE(opened.has_value());
  if (!*opened)
    FAIL(message_of(opened->error()));
  CHECK(*(*opened)->query_int("PRAGMA user_version", "") == journal_schema_version);
}
