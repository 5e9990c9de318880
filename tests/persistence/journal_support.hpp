#pragma once

// Shared by the persistence suites: a journal in a temporary directory,
// appends that wait for their answer, and a small event-sourced account
// (deposits and withdrawals) to recover.

#include "wager/persistence/journal.hpp"
#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/open_journal.hpp"
#include "wager/persistence/recovery.hpp"
#include "wager/persistence/sqlite_journal.hpp"
#include "wager/runtime/errors.hpp"

#include "support/postgres_server.hpp"

#include <boost/json.hpp>

#include <chrono>
#include <cstdlib>
#include <string_view>
#include <functional>
#include <future>
#include <memory>
#include <string>

namespace wager::test {

inline constexpr auto answer_deadline = std::chrono::seconds{30};

// The layout new journals are created with: the row layout, or the log
// layout when WAGER_TEST_JOURNAL_LAYOUT=log (ctest runs the layout-neutral
// suites once in each, and the journal, writer and property suites once more
// on PostgreSQL).
inline journal_layout test_layout() {
  auto* layout = std::getenv("WAGER_TEST_JOURNAL_LAYOUT");
  return layout != nullptr && std::string_view{layout} == "log" ? journal_layout::log
                                                                 : journal_layout::rows;
}

inline journal_options options_at(const std::string& path) {
  journal_options o;
  o.path = path;
  o.layout = test_layout();
  return o;
}

// The journal standing for the file at `path` when the suites run on
// PostgreSQL (WAGER_TEST_JOURNAL=postgresql): a schema of one database, one
// per path, so that two openings of one path share a journal as two
// openings of one file do.
inline std::string database_for(const std::string& path) {
  auto schema = "j" + std::to_string(std::hash<std::string>{}(path));
  shared_postgres().create_database("journals");
  shared_postgres().create_schema("journals", schema);
  return shared_postgres().url("journals", schema);
}

// Opens a journal or fails the test with the journal's message: the SQLite
// file at options.path, or its database on the test's PostgreSQL server.
inline std::unique_ptr<journal> open_or_fail(journal_options options) {
  if (journal_on_postgres() && options.url.empty())
    options.url = database_for(options.path);
  auto j = open_journal(std::move(options));
  if (!j)
    throw std::runtime_error("open failed: " + message_of(j.error()));
  return std::move(*j);
}

// One integer `sql` reads from the journal file at `path`, through a
// connection of its own (read only), or the test fails.
inline int64_t query_int(const std::string& path, const std::string& sql) {
  auto db = open_journal_for_inspection(path);
  if (!db)
    throw std::runtime_error("cannot open " + path + ": " + message_of(db.error()));
  auto v = db->query_int(sql, "a test's query");
  if (!v)
    throw std::runtime_error(sql + ": " + message_of(v.error()));
  return *v;
}

inline event amount_event(const std::string& type, int64_t amount) {
  return event::make(type, 1, boost::json::object{{"amount", amount}});
}

// Appends and waits for the answer (or for the refusal).
inline caf::expected<append_ack> append_sync(journal& j, append_request request) {
  auto promise = std::make_shared<std::promise<caf::expected<append_ack>>>();
  auto answer = promise->get_future();
  auto err = j.append(std::move(request),
                      [promise](caf::expected<append_ack> r) { promise->set_value(std::move(r)); });
  if (err)
    return err;
  if (answer.wait_for(answer_deadline) != std::future_status::ready)
    throw std::runtime_error("append not answered in time");
  return answer.get();
}

inline caf::expected<append_ack> append_sync(journal& j, const std::string& stream,
                                             uint64_t expected_seq, std::vector<event> events) {
  return append_sync(j, append_request{stream, expected_seq, std::move(events), std::nullopt});
}

inline caf::expected<snapshot_saved> save_sync(journal& j, snapshot snap) {
  auto promise = std::make_shared<std::promise<caf::expected<snapshot_saved>>>();
  auto answer = promise->get_future();
  auto err = j.save_snapshot(std::move(snap), [promise](caf::expected<snapshot_saved> r) {
    promise->set_value(std::move(r));
  });
  if (err)
    return err;
  if (answer.wait_for(answer_deadline) != std::future_status::ready)
    throw std::runtime_error("snapshot not answered in time");
  return answer.get();
}

// The account: balance moved by "deposited" and "withdrawn" events.
struct account {
  int64_t balance = 0;
  uint64_t deposits = 0;
  uint64_t withdrawals = 0;

  void apply(const event& e) {
    auto amount = e.json().as_object().at("amount").to_number<int64_t>();
    if (e.type == "deposited") {
      balance += amount;
      ++deposits;
    } else {
      balance -= amount;
      ++withdrawals;
    }
  }

  friend bool operator==(const account&, const account&) = default;
};

inline replay<account> account_replay() {
  replay<account> r;
  r.initial = [] { return account{}; };
  r.apply = [](account& a, const recorded_event& e) -> caf::error {
    if (e.data.type != "deposited" && e.data.type != "withdrawn")
      return make_error(errc::journal_failure, "unknown event " + e.data.type);
    a.apply(e.data);
    return {};
  };
  r.encode = [](const account& a) {
    return boost::json::serialize(boost::json::object{
      {"balance", a.balance}, {"deposits", a.deposits}, {"withdrawals", a.withdrawals}});
  };
  r.decode = [](std::string_view text) -> caf::expected<account> {
    boost::system::error_code ec;
    auto v = boost::json::parse(text, ec);
    if (ec || !v.is_object())
      return make_error(errc::journal_failure, "account snapshot is not an object");
    auto& o = v.as_object();
    return account{o.at("balance").to_number<int64_t>(), o.at("deposits").to_number<uint64_t>(),
                   o.at("withdrawals").to_number<uint64_t>()};
  };
  return r;
}

} // namespace wager::test
