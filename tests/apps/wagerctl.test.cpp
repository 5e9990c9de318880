// wagerctl as an operator runs it, offline: the real binary, against
// journals a real platform wrote, forged on purpose where the money must be
// found wrong. The online commands are in wagerctl_node.test.cpp.

#include "support/process.hpp"
#include "support/temp_dir.hpp"
#include "support/wait.hpp"

#include "wager/actors/platform.hpp"
#include "wager/actors/wallet_state.hpp"
#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/sqlite_journal.hpp"

#include <boost/json.hpp>
#include <doctest/doctest.h>
#include <sqlite3.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <thread>

using namespace std::chrono_literals;
using namespace wager;
using wager::test::child_process;
using wager::test::temp_dir;

namespace {

const std::string wagerctl = wager::test::binary("apps/wagerctl");

struct run_result {
  int status = -1;
  std::vector<std::string> out; // stdout lines
  std::string err;
};

run_result run_ctl(const std::vector<std::string>& args,
                   const std::map<std::string, std::string>& env = {}) {
  child_process ctl{wagerctl, args, env};
  run_result r;
  while (auto line = ctl.read_line(60s))
    r.out.push_back(*line);
  auto status = ctl.wait(60s);
  REQUIRE(status);
  r.status = *status;
  r.err = ctl.drain_stderr();
  return r;
}

// The JSON summary: the one line on stdout.
boost::json::object summary(const run_result& r) {
  REQUIRE(r.out.size() == 1);
  return boost::json::parse(r.out[0]).as_object();
}

int64_t at(const boost::json::object& o, std::initializer_list<const char*> path) {
  const boost::json::value* v = nullptr;
  const auto* obj = &o;
  for (auto key : path) {
    v = &obj->at(key);
    if (v->is_object())
      obj = &v->as_object();
  }
  return v->to_number<int64_t>();
}

template <class T, class Start>
T must(Start&& start) {
  auto r = wager::await<T>(std::forward<Start>(start));
  REQUIRE_MESSAGE(r, message_of(r.error()));
  return std::move(*r);
}

market_definition match(const std::string& id) {
  return {market_id{id}, "Home v Away", "Match result",
          {{selection_id{"home"}, "Home", price{200}}, {selection_id{"away"}, "Away", price{300}}},
          {money{100'000}, money{10'000'000}}, 0};
}

std::unique_ptr<platform> start_platform(const std::string& data_dir,
                                         journal_layout layout = journal_options{}.layout) {
  platform_options o;
  o.data_dir = data_dir;
  o.journal.layout = layout;
  auto p = platform::start(std::move(o));
  REQUIRE_MESSAGE(p, message_of(p.error()));
  return std::move(*p);
}

void open_market(platform& p, const std::string& id) {
  must<market_view>([&](auto done) { p.create_market(match(id), done); });
  must<market_view>([&](auto done) { p.set_market_status(market_id{id}, market_status::open, done); });
}

bet place(platform& p, const std::string& user, const std::string& request,
          const std::string& selection, int64_t stake, int32_t at) {
  place_bet_cmd cmd{request_id{request}, market_id{"m1"}, selection_id{selection}, money{stake},
                    price{at}};
  return must<bet>([&](auto done) { p.place_bet(user_id{user}, cmd, done); });
}

// The money of the audit's unit test, written by a real platform:
//   u1 deposits 10000, stakes 1000 on home at 2.00, wins 2000, withdraws 3000
//   u2 deposits 5000, stakes 500 on away at 3.00, loses
// Returns u1's bet.
bet write_settled_ledger(const std::string& data_dir,
                         journal_layout layout = journal_options{}.layout) {
  auto p = start_platform(data_dir, layout);
  open_market(*p, "m1");
  must<wallet_receipt>([&](auto done) { p->deposit(user_id{"u1"}, request_id{"d1"}, money{10'000}, done); });
  must<wallet_receipt>([&](auto done) { p->deposit(user_id{"u2"}, request_id{"d2"}, money{5000}, done); });
  auto b1 = place(*p, "u1", "p1", "home", 1000, 200);
  place(*p, "u2", "p2", "away", 500, 300);
  must<market_view>([&](auto done) { p->settle_market(market_id{"m1"}, {"home"}, done); });
  // Payouts travel from the market's outbox; wait until both wallets have them.
  auto settled = [&](const char* user) {
    return [&p, user] {
      auto bets = wager::await<std::vector<bet>>(
        [&](auto done) { p->bets(user_id{user}, true, done); });
      return bets && bets->size() == 1;
    };
  };
  REQUIRE(wager::test::wait_until(settled("u1"), 20s));
  REQUIRE(wager::test::wait_until(settled("u2"), 20s));
  must<wallet_receipt>([&](auto done) { p->withdraw(user_id{"u1"}, request_id{"w1"}, money{3000}, done); });
  p->stop();
  return b1;
}

// Appends `e` to the end of `stream`, past every check the wallet makes:
// what a bug or an intruder with write access to the file could do.
void forge(const std::string& data_dir, const std::string& stream, const wallet_event& e) {
  journal_options o;
  o.path = data_dir + "/journal.db";
  o.create_if_missing = false;
  auto j = open_sqlite_journal(std::move(o));
  REQUIRE_MESSAGE(j, message_of(j.error()));
  auto last = (*j)->last_seq(stream);
  REQUIRE(last);
  std::promise<caf::expected<append_ack>> done;
  auto answer = done.get_future();
  auto err = (*j)->append({stream, *last, {encode(e)}, std::nullopt},
                          [&done](caf::expected<append_ack> r) { done.set_value(r); });
  REQUIRE(!err);
  REQUIRE(answer.get());
}

size_t lines_in(const std::string& text) {
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

} // namespace

TEST_CASE("verify passes on a journal the platform wrote and prints its totals") {
  temp_dir dir;
  auto data = (dir / "data").string();
  write_settled_ledger(data);
  auto r = run_ctl({"--data-dir", data, "verify"});
  INFO((r.out.empty() ? std::string{} : r.out[0]));
  INFO(r.err);
  CHECK(r.status == 0);
  auto s = summary(r);
  CHECK(s.at("ok").as_bool());
  CHECK(at(s, {"wallets"}) == 2);
  CHECK(at(s, {"markets"}) == 1);
  CHECK(at(s, {"bets", "accepted"}) == 2);
  CHECK(at(s, {"bets", "settled"}) == 2);
  CHECK(at(s, {"money", "deposits"}) == 15'000);
  CHECK(at(s, {"money", "withdrawals"}) == 3000);
  CHECK(at(s, {"money", "available"}) == 12'500);
  CHECK(at(s, {"money", "held"}) == 0);
  CHECK(at(s, {"money", "stakes"}) == 1500);
  CHECK(at(s, {"money", "payouts"}) == 2000);
  CHECK(at(s, {"money", "house_result"}) == -500);
  CHECK(at(s, {"payouts_in_flight", "count"}) == 0);
  CHECK(at(s, {"journal", "problems"}) == 0);
  CHECK(r.err.empty());
}

TEST_CASE("verify exits 1 naming a second payout forged for one bet") {
  temp_dir dir;
  auto data = (dir / "data").string();
  auto b1 = write_settled_ledger(data);
  forge(data, "wallet/u1", payout_credited{b1.id, bet_status::won, money{2000}});
  auto r = run_ctl({"--data-dir", data, "verify"});
  INFO((r.out.empty() ? std::string{} : r.out[0]));
  CHECK(r.status == 1);
  CHECK(lines_in(r.err) == 1);
  CHECK(r.err.find("wallet/u1") != std::string::npos);
  CHECK(r.err.find("bet_settled_twice") != std::string::npos);
  auto s = summary(r);
  CHECK_FALSE(s.at("ok").as_bool());
  CHECK(s.at("first_violation").at("code").as_string() == "bet_settled_twice");
  CHECK(at(s, {"violations"}) == 1);
  CHECK(at(s, {"journal", "problems"}) == 0);
}

TEST_CASE("verify exits 1 naming a forged withdrawal that leaves a balance negative") {
  temp_dir dir;
  auto data = (dir / "data").string();
  write_settled_ledger(data);
  forge(data, "wallet/u2", withdrawn{request_id{"w-forged"}, money{4501}});
  auto r = run_ctl({"--data-dir", data, "verify"});
  INFO((r.out.empty() ? std::string{} : r.out[0]));
  CHECK(r.status == 1);
  CHECK(r.err.find("wallet/u2") != std::string::npos);
  CHECK(r.err.find("negative_balance") != std::string::npos);
}

// Bettors that deposit and bet until stopped, each on its own thread and
// wallet, so sagas are in flight at any moment.
class bettors {
public:
  bettors(platform& p, int threads) {
    for (int t = 0; t < threads; ++t)
      threads_.emplace_back([this, &p, t] { run(p, user_id{"u" + std::to_string(t)}); });
  }
  ~bettors() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

  int written() const { return written_; }

private:
  void run(platform& p, const user_id& user) {
    for (int i = 0; !stop_; ++i) {
      auto id = user.value + "-" + std::to_string(i);
      auto d = wager::await<wallet_receipt>(
        [&](auto done) { p.deposit(user, request_id{"d" + id}, money{100}, done); });
      place_bet_cmd cmd{request_id{"p" + id}, market_id{"m1"}, selection_id{"home"}, money{50},
                        price{200}};
      auto b = wager::await<bet>([&](auto done) { p.place_bet(user, cmd, done); });
      if (d && b)
        ++written_;
    }
  }

  std::atomic<bool> stop_{false};
  std::atomic<int> written_{0};
  std::vector<std::thread> threads_;
};

TEST_CASE("a backup taken while a platform writes restores into an empty dir and verifies") {
  temp_dir dir;
  auto data = (dir / "data").string();
  auto backup = (dir / "backup.db").string();
  auto p = start_platform(data);
  open_market(*p, "m1");
  run_result taken, live;
  bool kept_writing = false;
  {
    bettors load{*p, 4};
    REQUIRE(wager::test::wait_until([&] { return load.written() >= 20; }, 30s));
    taken = run_ctl({"--data-dir", data, "backup", backup});
    // verify reads one moment of the live journal: sagas cut mid-way there
    // (stakes held, bets accepted but not yet committed) are not violations.
    live = run_ctl({"--data-dir", data, "verify"});
    // The bettors went on past the copy: a backup never blocks the writers.
    auto after = load.written();
    kept_writing = wager::test::wait_until([&] { return load.written() > after; }, 30s);
  }
  p->stop();
  CHECK(kept_writing);
  INFO(taken.err);
  REQUIRE(taken.status == 0);
  CHECK(at(summary(taken), {"bytes"}) > 0);
  INFO(live.err);
  CHECK(live.status == 0);

  auto restored = (dir / "restored").string();
  auto r = run_ctl({"--data-dir", restored, "restore", backup});
  INFO(r.err);
  REQUIRE(r.status == 0);
  auto v = run_ctl({"--data-dir", restored, "verify"});
  INFO((v.out.empty() ? std::string{} : v.out[0]));
  INFO(v.err);
  CHECK(v.status == 0);
  auto s = summary(v);
  CHECK(at(s, {"bets", "accepted"}) >= 20);
  CHECK(at(s, {"money", "deposits"}) >= 20 * 100);
  CHECK(run_ctl({"--data-dir", data, "verify"}).status == 0);
}

TEST_CASE("verify finds nothing wrong in a live journal mid-saga and mid-settlement") {
  temp_dir dir;
  auto data = (dir / "data").string();
  auto p = start_platform(data);
  open_market(*p, "m1");
  open_market(*p, "m2");
  // Bets on m2 to settle while the bettors go on with m1.
  for (int u = 0; u < 20; ++u) {
    auto user = user_id{"w" + std::to_string(u)};
    must<wallet_receipt>([&](auto done) { p->deposit(user, request_id{"d"}, money{1000}, done); });
    place_bet_cmd cmd{request_id{"b"}, market_id{"m2"}, selection_id{u % 2 ? "home" : "away"},
                      money{100 + u}, price{u % 2 ? 200 : 300}};
    must<bet>([&](auto done) { p->place_bet(user, cmd, done); });
  }
  // Each round reads another moment; 40 rounds in a row found nothing wrong
  // while this test was written, 3 keep it fast.
  constexpr int verify_rounds = 3;
  std::vector<run_result> checks;
  {
    bettors load{*p, 4};
    REQUIRE(wager::test::wait_until([&] { return load.written() >= 8; }, 30s));
    p->settle_market(market_id{"m2"}, {"home"}, [](caf::expected<market_view>) {});
    for (int i = 0; i < verify_rounds; ++i)
      checks.push_back(run_ctl({"--data-dir", data, "verify"}));
  }
  p->stop();
  for (auto& c : checks) {
    INFO(c.err);
    INFO((c.out.empty() ? std::string{} : c.out[0]));
    CHECK(c.status == 0);
  }
  auto last = run_ctl({"--data-dir", data, "verify"});
  INFO(last.out[0]);
  CHECK(last.status == 0);
}

TEST_CASE("restore refuses a data dir that is not empty") {
  temp_dir dir;
  auto data = (dir / "data").string();
  write_settled_ledger(data);
  auto backup = (dir / "backup.db").string();
  REQUIRE(run_ctl({"--data-dir", data, "backup", backup}).status == 0);
  auto r = run_ctl({"--data-dir", data, "restore", backup});
  CHECK(r.status == 2);
  CHECK(lines_in(r.err) == 1);
  CHECK(r.err.find("not empty") != std::string::npos);
  auto again = run_ctl({"--data-dir", data, "backup", backup});
  CHECK(again.status == 2); // a backup never overwrites a file
  CHECK(again.err.find("exists") != std::string::npos);
}

// Regression (issue 19): shared/API.md lists `wagerctl upgrade` among the
// journal commands, and wagerctl did not have it.
TEST_CASE("upgrade brings a version 1 journal to the current layout, keeping its streams") {
  temp_dir dir;
  auto data = dir / "data";
  std::filesystem::create_directories(data);
  auto path = (data / "journal.db").string();
  // The tables as schema version 1 shipped them, with one stream of 7 events.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  auto sql = "PRAGMA journal_mode = WAL; PRAGMA application_id = " +
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
             "INSERT INTO streams VALUES ('market/old', 'market', 7);";
  for (uint64_t seq = 1; seq <= 7; ++seq) {
    auto payload = "{\"n\":" + std::to_string(seq) + "}";
    auto sum = static_cast<int64_t>(row_checksum("market/old", seq, "noted", 1, payload));
    sql += "INSERT INTO events VALUES ('market/old', " + std::to_string(seq) + ", 'noted', 1, '" +
           payload + "', 1000, " + std::to_string(sum) + ");";
  }
  sql += "PRAGMA user_version = 1;";
  auto rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  sqlite3_close(db);
  REQUIRE(rc == SQLITE_OK);

  auto backup = (dir / "before.db").string();
  auto r = run_ctl({"--data-dir", data.string(), "upgrade", backup});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  auto s = summary(r);
  CHECK(s.at("from_version").as_int64() == 1);
  CHECK(s.at("to_version").as_int64() == journal_schema_version);
  CHECK(s.at("from_layout").as_string() == "rows");
  CHECK(s.at("layout").as_string() == "log");
  CHECK(s.at("upgraded").as_bool());
  CHECK(s.at("backup").as_string() == backup);
  CHECK(s.at("streams").as_int64() == 1);
  CHECK(s.at("events").as_int64() == 7);
  auto after = open_journal_for_inspection(path);
  REQUIRE(after);
  CHECK(*after->query_int("PRAGMA user_version", "") == journal_schema_version);
  CHECK(*after->query_int("SELECT count(*) FROM layout WHERE name = 'log'", "") == 1);
  CHECK(*after->query_int("SELECT count(*) FROM events", "") == 0);
  after->close();
  // The backup is the file as it was.
  auto saved = open_journal_for_inspection(backup);
  REQUIRE(saved);
  CHECK(*saved->query_int("PRAGMA user_version", "") == 1);
  CHECK(*saved->query_int("SELECT count(*) FROM events", "") == 7);
  saved->close();
  {
    journal_options o;
    o.path = path;
    o.create_if_missing = false;
    auto j = open_sqlite_journal(std::move(o));
    REQUIRE_MESSAGE(j, message_of(j.error()));
    auto events = (*j)->read_events("market/old", 1, 100);
    REQUIRE(events);
    REQUIRE(events->size() == 7u);
    CHECK(events->back().data.payload == "{\"n\":7}");
    CHECK(events->back().at_ms == 1000);
  }
  // The journal checks pass (the money audit does not know these events).
  auto verified = run_ctl({"--data-dir", data.string(), "verify"});
  CHECK(at(summary(verified), {"journal", "events"}) == 7);
  CHECK(at(summary(verified), {"journal", "problems"}) == 0);

  // Already current: nothing to do, no backup.
  r = run_ctl({"--data-dir", data.string(), "upgrade"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  CHECK(summary(r).at("from_version").as_int64() == journal_schema_version);
  CHECK_FALSE(summary(r).at("upgraded").as_bool());
  CHECK(std::distance(std::filesystem::directory_iterator{data},
                      std::filesystem::directory_iterator{}) == 1);
  r = run_ctl({"--data-dir", (dir / "nothing-here").string(), "upgrade"});
  CHECK(r.status == 2);
}

TEST_CASE("upgrade rewrites a row journal a platform wrote, and the money and bets stay") {
  temp_dir dir;
  auto data = (dir / "data").string();
  auto b1 = write_settled_ledger(data, journal_layout::rows);
  // Not while something has the journal open.
  {
    auto p = start_platform(data);
    auto busy = run_ctl({"--data-dir", data, "upgrade", (dir / "busy.db").string()});
    CHECK(busy.status == 2);
    CHECK(busy.err.find("in use") != std::string::npos);
    p->stop();
  }
  // What the journal holds now (the platform above may have appended to it).
  auto before = run_ctl({"--data-dir", data, "verify"});
  REQUIRE_MESSAGE(before.status == 0, before.err);
  auto r = run_ctl({"--data-dir", data, "upgrade"});
  REQUIRE_MESSAGE(r.status == 0, r.err);
  auto s = summary(r);
  CHECK(s.at("upgraded").as_bool());
  CHECK(std::filesystem::is_regular_file(std::string{s.at("backup").as_string()}));
  auto after = run_ctl({"--data-dir", data, "verify"});
  REQUIRE_MESSAGE(after.status == 0, after.err);
  auto money_before = summary(before);
  auto money_after = summary(after);
  for (auto* key : {"path", "snapshots"}) {
    money_before.at("journal").as_object().erase(key);
    money_after.at("journal").as_object().erase(key);
  }
  CHECK(boost::json::serialize(money_after) == boost::json::serialize(money_before));

  auto p = start_platform(data);
  auto bets = wager::await<std::vector<bet>>([&](auto done) { p->bets(user_id{"u1"}, true, done); });
  REQUIRE(bets);
  REQUIRE(bets->size() == 1u);
  CHECK(bets->front().id == b1.id);
  auto wallet = must<wallet_balance>([&](auto done) { p->balance(user_id{"u1"}, done); });
  CHECK(wallet.available == money{10'000 - 1000 + 2000 - 3000});
  p->stop();
}

TEST_CASE("bad usage exits 2 with one clear line") {
  temp_dir dir;
  auto data = (dir / "data").string();
  struct usage {
    std::vector<std::string> args;
    std::string says;
  };
  std::vector<usage> cases{
    {{}, "no command"},
    {{"--data-dir", data, "frobnicate"}, "frobnicate"},
    {{"verify"}, "--data-dir"},
    {{"--url", "http://127.0.0.1:1", "--admin-key", "k", "verify"}, "--data-dir"},
    {{"--url", "http://127.0.0.1:1", "backup", "x.db"}, "--data-dir"},
    {{"status"}, "--url"},
    {{"--url", "http://127.0.0.1:1", "drain"}, "--admin-key"},
    {{"--url", "ftp://x", "--admin-key", "k", "status"}, "http://"},
    {{"--data-dir", data, "backup"}, "FILE"},
    {{"--data-dir", data, "verify"}, "does not exist"},
  };
  for (auto& c : cases) {
    auto r = run_ctl(c.args, {{"WAGER_ADMIN_KEY", ""}});
    INFO(r.err);
    CHECK(r.status == 2);
    CHECK(lines_in(r.err) == 1);
    CHECK(r.err.rfind("wagerctl: ", 0) == 0);
    CHECK(r.err.find(c.says) != std::string::npos);
    CHECK(r.out.empty());
  }
  auto help = run_ctl({"--help"});
  CHECK(help.status == 0);
  CHECK_FALSE(help.out.empty());
}
