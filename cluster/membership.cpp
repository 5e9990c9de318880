#include "wager/cluster/membership.hpp"

#include "wager/runtime/assert.hpp"

namespace wager {

std::string_view to_string(member_status s) noexcept {
  switch (s) {
    case member_status::joining: return "joining";
    case member_status::up: return "up";
    case member_status::leaving: return "leaving";
    case member_status::down: return "down";
  }
  return "down";
}

membership::membership(member_report self, membership_options options)
  : self_(std::move(self)), options_(options) {
  WAGER_ASSERT(!self_.node_id.empty(), "a member needs a node id");
  WAGER_ASSERT(options_.down_after_ms > options_.heartbeat_interval_ms,
               "down_after_ms must exceed the heartbeat interval");
}

bool membership::learn(const member_report& r, bool direct, int64_t now_ms) {
  if (r.node_id == self_.node_id) {
    // Somebody calls this incarnation down: its shards are gone already.
    if (r.status == member_status::down && r.incarnation == self_.incarnation
        && !rejoin_needed_) {
      rejoin_needed_ = true;
      return true;
    }
    return false;
  }
  auto [i, fresh] = peers_.try_emplace(r.node_id);
  auto& p = i->second;
  if (fresh) {
    p.report = r;
    p.last_heard_ms = now_ms;
    // Heard of, not from: the silence clock starts now, so a member only
    // gossiped about is marked down if it never speaks for itself.
    return true;
  }
  auto& known = p.report;
  if (r.incarnation < known.incarnation)
    return false; // news of an older life
  bool changed = false;
  if (r.incarnation > known.incarnation) {
    known = r;
    changed = true;
  } else if (known.status == member_status::down) {
    return false; // down is final for an incarnation
  } else if (r.status != known.status && (direct || r.status == member_status::down)) {
    // A member's own word sets its status; from a third party only "down"
    // counts (it spreads the verdict; the rest could be stale).
    known.status = r.status;
    changed = true;
  }
  if (r.address != known.address && direct) {
    known.address = r.address;
    changed = true;
  }
  if (direct)
    p.last_heard_ms = now_ms;
  return changed;
}

bool membership::on_heartbeat(const heartbeat& hb, int64_t now_ms) {
  if (hb.self.node_id == self_.node_id)
    return false;
  bool changed = learn(hb.self, true, now_ms);
  for (auto& r : hb.view)
    changed = learn(r, false, now_ms) || changed;
  if (changed)
    ++version_;
  return changed;
}

bool membership::tick(int64_t now_ms) {
  bool changed = false;
  for (auto& [id, p] : peers_) {
    if (p.report.status == member_status::down)
      continue;
    if (now_ms - p.last_heard_ms > options_.down_after_ms) {
      p.report.status = member_status::down;
      changed = true;
    }
  }
  if (changed)
    ++version_;
  return changed;
}

void membership::joined() {
  if (self_.status == member_status::joining) {
    self_.status = member_status::up;
    ++version_;
  }
}

void membership::leave() {
  if (self_.status == member_status::up || self_.status == member_status::joining) {
    self_.status = member_status::leaving;
    ++version_;
  }
}

void membership::rejoin(uint64_t new_incarnation) {
  WAGER_ASSERT(new_incarnation > self_.incarnation, "a rejoin takes a larger incarnation");
  self_.incarnation = new_incarnation;
  if (self_.status != member_status::leaving)
    self_.status = member_status::joining;
  rejoin_needed_ = false;
  // What this node believed while it was cut off is stale (it may call
  // every survivor down); it learns the members again from their heartbeats.
  peers_.clear();
  ++version_;
}

heartbeat membership::make_heartbeat() const {
  heartbeat hb;
  hb.self = self_;
  for (auto& [id, p] : peers_)
    hb.view.push_back(p.report);
  return hb;
}

std::vector<member_report> membership::members() const {
  std::vector<member_report> out;
  bool self_added = false;
  for (auto& [id, p] : peers_) {
    if (!self_added && self_.node_id < id) {
      out.push_back(self_);
      self_added = true;
    }
    out.push_back(p.report);
  }
  if (!self_added)
    out.push_back(self_);
  return out;
}

std::vector<std::string> membership::owners() const {
  std::vector<std::string> out;
  // While called down, this node owns nothing, whatever it believes.
  for (auto& m : members())
    if (m.status == member_status::up && !(m.node_id == self_.node_id && rejoin_needed_))
      out.push_back(m.node_id);
  return out;
}

} // namespace wager
