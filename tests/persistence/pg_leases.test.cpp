// Shard leases on PostgreSQL (persistence/shard_leases.hpp): journals of
// two nodes on one real server, each with its own leases, as wager-node
// processes on two hosts have. A node commits for a shard only while it
// holds the shard's lease at the epoch the table has; a node whose lease was
// taken fails with unavailable and commits nothing, and verify proves from
// the database that no event was written by a node without the lease.

#include "journal_support.hpp"

#include "wager/persistence/pg_db.hpp"
#include "wager/persistence/pg_journal.hpp"
#include "wager/persistence/shard_leases.hpp"
#include "wager/runtime/entity.hpp"

#include "support/postgres_server.hpp"
#include "support/wait.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>

using namespace wager;
using namespace wager::test;
using namespace std::chrono_literals;

namespace {

constexpr uint32_t shards = 16;

struct node {
  std::shared_ptr<shard_leases> leases;
  std::unique_ptr<journal> j;
};

node open_node(const std::string& url, const std::string& id,
               std::chrono::milliseconds heartbeat = 50ms) {
  node n;
  n.leases = std::make_shared<shard_leases>(shards);
  n.leases->owner_silence = 1000ms;
  n.leases->heartbeat = heartbeat;
  n.leases->set_member({id, "127.0.0.1:" + id, 1, "up"});
  journal_options o;
  o.url = url;
  o.connect_timeout_s = 2;
  o.leases = n.leases;
  auto j = open_pg_journal(std::move(o));
  REQUIRE_MESSAGE(j, message_of(j.error()));
  n.j = std::move(*j);
  return n;
}

std::unique_ptr<pg::connection> connect_to(const std::string& url) {
  auto c = pg::connection::open(url, "test", 5);
  REQUIRE(c);
  return std::make_unique<pg::connection>(std::move(*c));
}

std::string sql_text(const std::string& url, const std::string& query) {
  auto c = connect_to(url);
  auto r = c->query(query, {}, "test SQL");
  REQUIRE_MESSAGE(r, message_of(r.error()));
  REQUIRE(r->rows() == 1);
  return std::string{r->text(0, 0)};
}

void sql(const std::string& url, const std::string& statement) {
  auto c = connect_to(url);
  auto err = c->exec(statement, "test SQL");
  REQUIRE_MESSAGE(!err, message_of(err));
}

// A wallet stream of shard `s`.
std::string stream_in(uint32_t s, int nth = 0) {
  for (int i = 0;; ++i) {
    auto key = "u" + std::to_string(i);
    if (shard_of(entity_id{"wallet", key}, shards) == s && nth-- == 0)
      return "wallet/" + key;
  }
}

std::string lease_of(const std::string& url, uint32_t s) {
  return sql_text(url, "SELECT coalesce(split_part(owner, '@', 1), '') || ':' || epoch FROM "
                       "wager_leases WHERE shard = " + std::to_string(s));
}

caf::expected<append_ack> put(node& n, const std::string& stream, uint64_t seq) {
  return append_sync(*n.j, stream, seq, {amount_event("deposited", 10)});
}

verify_report verify(const std::string& url) {
  journal_options o;
  o.url = url;
  auto r = verify_pg_journal(o);
  REQUIRE_MESSAGE(r, message_of(r.error()));
  return *r;
}

bool names(const verify_report& r, const std::string& what) {
  for (auto& p : r.problems)
    if (p.find(what) != std::string::npos)
      return true;
  return false;
}

std::string problems(const verify_report& r) {
  std::string out;
  for (auto& p : r.problems)
    out += p + "\n";
  return out;
}

} // namespace

TEST_CASE("a shard's lease is taken by the first writer, refused to a second while the first "
          "lives, handed over on a grant, and the old holder then commits nothing") {
  auto& pg = shared_postgres();
  pg.create_database("handover");
  auto url = pg.url("handover");
  auto a = open_node(url, "node-a");
  auto b = open_node(url, "node-b");
  auto w = stream_in(3);
  auto other = stream_in(5);

  REQUIRE(put(a, w, 0));
  CHECK(lease_of(url, 3) == "node-a:1");
  CHECK(a.leases->held(3) == 1);
  CHECK(lease_of(url, 5) == ":0");

  // node-a lives (its member row is fresh): node-b may not take the shard.
  auto refused = put(b, w, 1);
  REQUIRE_FALSE(refused);
  CHECK(code_of(refused.error()) == errc::unavailable);
  CHECK(message_of(refused.error()).find("owned by node node-a") != std::string::npos);
  CHECK(b.leases->refusals() == 1);
  CHECK(lease_of(url, 3) == "node-a:1");
  // Another shard in the same journal is node-b's to take.
  REQUIRE(put(b, other, 0));
  CHECK(lease_of(url, 5) == "node-b:1");

  // A grant names the node the shard comes from: one from another node
  // takes nothing.
  b.leases->grant(3, "node-c");
  REQUIRE_FALSE(put(b, w, 1));
  CHECK(lease_of(url, 3) == "node-a:1");

  // The cluster hands shard 3 over from node-a to node-b.
  b.leases->grant(3, "node-a");
  REQUIRE(put(b, w, 1));
  CHECK(lease_of(url, 3) == "node-b:2");
  CHECK(b.leases->held(3) == 2);
  CHECK_FALSE(b.leases->granted(3, a.leases->owner()));

  // node-a still thinks it holds epoch 1, and its append would fit the
  // stream's seq: the lease refuses it, and node-a drops the shard.
  auto stale = put(a, w, 2);
  REQUIRE_FALSE(stale);
  CHECK(code_of(stale.error()) == errc::unavailable);
  CHECK(a.leases->held(3) == 0);
  CHECK(a.leases->losses() == 1);
  CHECK(sql_text(url, "SELECT last_seq FROM streams WHERE stream = '" + w + "'") == "2");

  auto report = verify(url);
  CHECK_MESSAGE(report.ok(), problems(report));
  CHECK(sql_text(url, "SELECT string_agg(split_part(owner, '@', 1) || ':' || epoch, ',' ORDER "
                      "BY epoch) FROM wager_lease_takes WHERE shard = 3") == "node-a:1,node-b:2");

  // A grant is good for owner_silence (1 s here) after the cluster last
  // gave it: one given before a pause is stale when the node wakes.
  a.leases->grant(3, "node-b");
  CHECK(a.leases->granted(3, b.leases->owner()));
  REQUIRE(wait_until([&] { return !a.leases->granted(3, b.leases->owner()); }, 5s));
  REQUIRE_FALSE(put(a, w, 2));
  CHECK(lease_of(url, 3) == "node-b:2");
}

TEST_CASE("the shards of a node whose member row went silent, or that left, are taken without "
          "a hand-over") {
  auto& pg = shared_postgres();
  pg.create_database("silence");
  auto url = pg.url("silence");
  auto w = stream_in(7);
  auto v = stream_in(9);
  auto b = open_node(url, "node-b");
  {
    // node-a refreshes its row once, then (as if paused) never again.
    auto a = open_node(url, "node-a", 1h);
    REQUIRE(put(a, w, 0));
    REQUIRE(put(a, v, 0));
    CHECK(lease_of(url, 7) == "node-a:1");
    REQUIRE_FALSE(put(b, w, 1));
    // Past owner_silence (1 s) by the database's clock, node-b takes it.
    REQUIRE(wait_until([&] { return static_cast<bool>(put(b, w, 1)); }, 10s));
    CHECK(lease_of(url, 7) == "node-b:2");
    // node-a, back from its pause, writes nothing more to shard 7.
    auto stale = put(a, w, 2);
    REQUIRE_FALSE(stale);
    CHECK(code_of(stale.error()) == errc::unavailable);
    // Its journal closes: its row says it left.
  }
  CHECK(sql_text(url, "SELECT status FROM wager_members WHERE node = 'node-a'") == "left");
  // The shard of a life of node-c whose row is fresh is not taken by the
  // next life of node-c (a second process with its id): only once it is
  // silent or left.
  auto c1 = open_node(url, "node-c");
  auto u = stream_in(11);
  REQUIRE(put(c1, u, 0));
  auto c2 = open_node(url, "node-c");
  REQUIRE_FALSE(put(c2, u, 1));
  c1.j.reset();
  REQUIRE(put(c2, u, 1));
  auto d = open_node(url, "node-d", 1h);
  // node-d takes shard 9 from node-a, which left, at once.
  REQUIRE(put(d, v, 1));
  CHECK(lease_of(url, 9) == "node-d:2");
  auto report = verify(url);
  CHECK_MESSAGE(report.ok(), problems(report));
}

TEST_CASE("verify names an event written by a node that did not hold its shard's lease") {
  auto& pg = shared_postgres();
  pg.create_database("intruder");
  auto url = pg.url("intruder");
  auto a = open_node(url, "node-a");
  auto w = stream_in(2);
  REQUIRE(put(a, w, 0));
  REQUIRE(put(a, w, 1));
  CHECK(verify(url).ok());
  // The last frame claims another writer, as a node without the lease
  // would have left it had the check in its transaction been missing.
  sql(url, "UPDATE frames SET node = 'node-x' WHERE position = (SELECT max(position) FROM frames)");
  auto report = verify(url);
  CHECK_FALSE(report.ok());
  CHECK_MESSAGE(names(report, "were written by node node-x while node node-a@"), problems(report));
  CHECK_MESSAGE(names(report, "held the lease of shard 2 (epoch 1)"), problems(report));
}

TEST_CASE("a node with another shard count is refused, and a version 1 journal is migrated") {
  auto& pg = shared_postgres();
  pg.create_database("counts");
  auto url = pg.url("counts");
  {
    auto a = open_node(url, "node-a");
    REQUIRE(put(a, stream_in(1), 0));
  }
  journal_options o;
  o.url = url;
  o.leases = std::make_shared<shard_leases>(shards * 2);
  auto other = open_pg_journal(o);
  REQUIRE_FALSE(other);
  CHECK(code_of(other.error()) == errc::invalid_field);
  CHECK(message_of(other.error()).find("the same --shards") != std::string::npos);

  // A journal of schema version 1 (no lease tables) gains them at open.
  pg.create_database("v1");
  auto old = pg.url("v1");
  {
    journal_options plain;
    plain.url = old;
    auto j = open_pg_journal(plain);
    REQUIRE(j);
    REQUIRE(append_sync(**j, "wallet/x", 0, {amount_event("deposited", 1)}));
  }
  sql(old, "DROP TABLE wager_leases, wager_lease_takes, wager_members; "
           "ALTER TABLE frames DROP COLUMN node; UPDATE wager_journal SET schema_version = 1");
  auto n = open_node(old, "node-a");
  REQUIRE(put(n, "wallet/x", 1));
  CHECK(sql_text(old, "SELECT schema_version FROM wager_journal") == "2");
  CHECK(verify(old).ok());
}
