// The journal writer's work inside one transaction (each append's sequence
// check and rows, snapshot saves), the fences of failed pipelines, and the
// answers after the batch is decided.

#include "wager/persistence/journal_metrics.hpp"
#include "wager/persistence/journal_writer.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <sqlite3.h>

#include <algorithm>

namespace wager {

namespace {

// Chains remembered per fenced stream. A caller pipelines one chain, so a
// second already means confusion; beyond this the oldest is dropped.
constexpr size_t fence_chains_max = 8;

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
           std::chrono::system_clock::now().time_since_epoch())
    .count();
}

int64_t as_int(uint64_t value) {
  return static_cast<int64_t>(value);
}

template <class T>
void call_back(const result_callback<T>& done, caf::expected<T> value) {
  // A callback that throws on the writer thread would take the journal
  // down for everyone; it is a bug in the caller, reported and contained.
  if (!done)
    return;
  try {
    done(std::move(value));
  } catch (const std::exception& e) {
    log().error("journal: a write callback threw: {}", e.what());
  } catch (...) {
    log().error("journal: a write callback threw");
  }
}

} // namespace

journal_writer::step journal_writer::statement_failed(int rc, const std::string& context,
                                                      outcome& out, caf::error& batch_error) {
  auto err = sqlite::failure(db_.get(), rc, context);
  if (sqlite::is_storage_error(rc)) {
    batch_error = std::move(err);
    return step::storage_failed;
  }
  // A constraint or data problem of this one write: the file disagrees with
  // itself (e.g. an event row beyond the stream's last seq). Only this
  // write fails; the others are retried without it.
  out = outcome{std::move(err), {}, true, true};
  return step::op_failed;
}

journal_writer::step journal_writer::apply_append(const op& o, uint64_t batch_last_ticket,
                                                  outcome& out, caf::error& batch_error) {
  const auto& r = std::get<queued_append>(o.what).request;
  uint64_t count = r.events.size();
  auto fail = [&](errc code, std::string message) {
    out = outcome{make_error(code, std::move(message)), {}, true, true};
    fence_in_batch(r, batch_last_ticket);
    return step::done;
  };
  if (fenced(fence_of(r.stream), o, r))
    return fail(errc::sequence_conflict, "stream " + r.stream +
                                           ": an earlier append of this stream failed; re-read "
                                           "the stream before appending");
  auto current = current_seq(r.stream);
  if (!current) {
    batch_error = current.error();
    return step::storage_failed;
  }
  if (*current != r.expected_seq)
    return fail(errc::sequence_conflict, "stream " + r.stream + " is at seq " +
                                           std::to_string(*current) + ", the append expected " +
                                           std::to_string(r.expected_seq));
  for (auto& p : r.after) {
    auto& st = sql_->event_checksum;
    sqlite::reset_on_exit reset{st};
    st.bind(1, p.stream).bind(2, as_int(p.seq));
    auto rc = st.step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      return statement_failed(rc, "reading event " + std::to_string(p.seq) + " of " + p.stream,
                              out, batch_error);
    if (rc == SQLITE_DONE || static_cast<uint64_t>(st.column_int(0)) != p.checksum)
      return fail(errc::sequence_conflict, "stream " + r.stream + " builds on event " +
                                             std::to_string(p.seq) + " of " + p.stream +
                                             ", which is not in the journal");
  }
  auto now = r.at_ms > 0 ? r.at_ms : now_ms();
  auto last = r.expected_seq + count;
  if (r.request) {
    // First write of the append: if the id is taken, nothing is written yet.
    auto& st = sql_->insert_request;
    sqlite::reset_on_exit reset{st};
    auto sum = row_checksum(r.stream, last, r.request->request_id, 0, r.request->result);
    st.bind(1, r.stream).bind(2, r.request->request_id).bind(3, as_int(last));
    st.bind(4, r.request->result).bind(5, now).bind(6, as_int(sum));
    auto rc = st.step();
    if (rc == SQLITE_CONSTRAINT_PRIMARYKEY)
      return fail(errc::request_id_reused, "request " + r.request->request_id +
                                             " is already stored for " + r.stream);
    if (rc != SQLITE_DONE)
      return statement_failed(rc, "storing request " + r.request->request_id, out, batch_error);
  }
  auto seq = r.expected_seq;
  for (auto& e : r.events) {
    ++seq;
    auto& st = sql_->insert_event;
    sqlite::reset_on_exit reset{st};
    auto sum = row_checksum(r.stream, seq, e.type, e.version, e.payload);
    st.bind(1, r.stream).bind(2, as_int(seq)).bind(3, e.type).bind(4, int64_t{e.version});
    st.bind(5, e.payload).bind(6, now).bind(7, as_int(sum));
    if (auto rc = st.step(); rc != SQLITE_DONE)
      return statement_failed(rc, "writing event " + std::to_string(seq) + " of " + r.stream, out,
                              batch_error);
  }
  if (count > 0) {
    auto& st = sql_->upsert_stream;
    sqlite::reset_on_exit reset{st};
    st.bind(1, r.stream).bind(2, kind_of(r.stream)).bind(3, as_int(last));
    if (r.open_work)
      st.bind(4, int64_t{*r.open_work ? 1 : 0}); // unbound: NULL, the mark stays
    if (auto rc = st.step(); rc != SQLITE_DONE)
      return statement_failed(rc, "advancing stream " + r.stream, out, batch_error);
    seq_cache_[r.stream] = last;
  }
  batch_fences_.erase(r.stream);
  batch_lifted_[r.stream] = true;
  out = outcome{{}, append_ack{r.expected_seq + 1, last}, true, false};
  return step::done;
}

journal_writer::step journal_writer::apply_snapshot(const queued_snapshot& s, outcome& out,
                                                    caf::error& batch_error) {
  auto& snap = s.snap;
  auto fail = [&](std::string message) {
    out = outcome{make_error(errc::sequence_conflict, std::move(message)), {}, true, false};
    return step::done;
  };
  auto current = current_seq(snap.stream);
  if (!current) {
    batch_error = current.error();
    return step::storage_failed;
  }
  if (snap.seq > *current)
    return fail("snapshot of " + snap.stream + " at seq " + std::to_string(snap.seq) +
                " is ahead of the stream (seq " + std::to_string(*current) + ")");
  {
    auto& st = sql_->snapshot_seq;
    sqlite::reset_on_exit reset{st};
    st.bind(1, snap.stream);
    auto rc = st.step();
    if (rc == SQLITE_ROW && static_cast<uint64_t>(st.column_int(0)) > snap.seq)
      return fail("snapshot of " + snap.stream + " at seq " + std::to_string(snap.seq) +
                  " is older than the stored one (seq " + std::to_string(st.column_int(0)) + ")");
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
      return statement_failed(rc, "reading the snapshot of " + snap.stream, out, batch_error);
  }
  auto& st = sql_->upsert_snapshot;
  sqlite::reset_on_exit reset{st};
  auto sum = row_checksum(snap.stream, snap.seq, "snapshot", snap.version, snap.state);
  st.bind(1, snap.stream).bind(2, as_int(snap.seq)).bind(3, int64_t{snap.version});
  st.bind(4, snap.state).bind(5, now_ms()).bind(6, as_int(sum));
  if (auto rc = st.step(); rc != SQLITE_DONE)
    return statement_failed(rc, "saving the snapshot of " + snap.stream, out, batch_error);
  out = outcome{{}, append_ack{snap.seq, snap.seq}, true, false};
  return step::done;
}

const journal_writer::fence* journal_writer::fence_of(const std::string& stream) const {
  if (auto i = batch_fences_.find(stream); i != batch_fences_.end())
    return &i->second;
  if (batch_lifted_.count(stream) > 0)
    return nullptr;
  if (auto i = fences_.find(stream); i != fences_.end())
    return &i->second;
  return nullptr;
}

bool journal_writer::fenced(const fence* f, const op& o, const append_request& r) const {
  if (f == nullptr)
    return false;
  return o.ticket <= f->tickets_through ||
         (!r.from_read &&
          std::find(f->chains.begin(), f->chains.end(), r.expected_seq) != f->chains.end());
}

void journal_writer::extend_fence(fence& f, uint64_t expected_seq, uint64_t count,
                                  uint64_t tickets_through) {
  // An append fenced because it chained on a failed one moves that chain
  // to its own end; any other failure starts a new chain. Moving (rather
  // than adding) matters: the caller's fresh append after re-reading may
  // expect the very seq the dead chain started from.
  f.tickets_through = std::max(f.tickets_through, tickets_through);
  auto chain = std::find(f.chains.begin(), f.chains.end(), expected_seq);
  if (chain != f.chains.end())
    f.chains.erase(chain);
  if (std::find(f.chains.begin(), f.chains.end(), expected_seq + count) == f.chains.end())
    f.chains.push_back(expected_seq + count);
  if (f.chains.size() > fence_chains_max)
    f.chains.erase(f.chains.begin());
}

void journal_writer::fence_in_batch(const append_request& r, uint64_t tickets_through) {
  auto i = batch_fences_.find(r.stream);
  if (i == batch_fences_.end()) {
    fence f;
    if (auto* global = fence_of(r.stream))
      f = *global;
    i = batch_fences_.emplace(r.stream, std::move(f)).first;
  }
  extend_fence(i->second, r.expected_seq, r.events.size(), tickets_through);
}

void journal_writer::set_fence(const std::string& stream, uint64_t expected_seq, uint64_t count,
                               uint64_t tickets_through) {
  auto& f = fences_[stream];
  extend_fence(f, expected_seq, count, tickets_through);
  f.order = ++fence_counter_;
  fence_order_.emplace_back(f.order, stream);
  // Beyond the bound the oldest fence goes: its pipeline has long been
  // answered. Entries superseded by a newer order are skipped.
  while (fences_.size() > options_.fenced_streams_max && !fence_order_.empty()) {
    auto [order, name] = std::move(fence_order_.front());
    fence_order_.pop_front();
    if (auto j = fences_.find(name); j != fences_.end() && j->second.order == order)
      fences_.erase(j);
  }
  if (fence_order_.size() > 2 * size_t{options_.fenced_streams_max}) {
    fence_order_.clear();
    for (auto& [name, fence] : fences_)
      fence_order_.emplace_back(fence.order, name);
    std::sort(fence_order_.begin(), fence_order_.end());
  }
}

void journal_writer::lift_fence(const std::string& stream) {
  fences_.erase(stream);
}

void journal_writer::answer(std::vector<op>& batch, std::vector<outcome>& outcomes) {
  uint64_t tickets_through;
  {
    std::lock_guard lock{mutex_};
    tickets_through = last_ticket_;
  }
  // Fences first, all of them, then the callbacks: a callback may queue the
  // caller's next append, which must meet the fences of this batch.
  for (size_t i = 0; i < batch.size(); ++i) {
    auto* a = std::get_if<queued_append>(&batch[i].what);
    if (a == nullptr)
      continue;
    auto& r = a->request;
    if (outcomes[i].error && outcomes[i].fences)
      set_fence(r.stream, r.expected_seq, r.events.size(), tickets_through);
    else if (!outcomes[i].error)
      lift_fence(r.stream);
  }
  for (size_t i = 0; i < batch.size(); ++i) {
    auto& out = outcomes[i];
    if (auto* a = std::get_if<queued_append>(&batch[i].what)) {
      if (metrics_ != nullptr) {
        auto code = code_of(out.error);
        auto& counter = code == errc::none ? metrics_->appends_ok
                        : code == errc::sequence_conflict || code == errc::request_id_reused
                          ? metrics_->appends_conflict
                          : metrics_->appends_failed;
        counter.Increment();
      }
      call_back(a->done, out.error ? caf::expected<append_ack>{out.error}
                                   : caf::expected<append_ack>{out.ack});
    } else {
      auto& s = std::get<queued_snapshot>(batch[i].what);
      call_back(s.done, out.error ? caf::expected<snapshot_saved>{out.error}
                                  : caf::expected<snapshot_saved>{snapshot_saved{s.snap.seq}});
    }
  }
}

} // namespace wager
