// The journal writer's work inside one transaction (each append's sequence
// check and rows, snapshot saves), the fences of failed pipelines, and the
// answers after the batch is decided.

#include "wager/persistence/journal_metrics.hpp"
#include "wager/persistence/journal_writer.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <algorithm>

namespace wager {

namespace {

// Chains remembered per fenced stream. A caller pipelines one chain, so a
// second already means confusion; beyond this the oldest is dropped.
constexpr size_t fence_chains_max = 8;

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

journal_writer::step journal_writer::stored(journal_store::result result, caf::error error,
                                            outcome& out, caf::error& batch_error) {
  switch (result) {
    case journal_store::result::ok:
    case journal_store::result::request_taken:
      return step::done;
    case journal_store::result::op_failed:
      out = outcome{std::move(error), {}, true, true};
      return step::op_failed;
    case journal_store::result::storage_failed:
      break;
  }
  batch_error = std::move(error);
  return step::storage_failed;
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
  if (auto why = store_->refused(r.stream); !why.empty())
    return fail(errc::unavailable, std::move(why));
  auto current = store_->last_seq(r.stream);
  if (!current) {
    batch_error = current.error();
    return step::storage_failed;
  }
  if (*current != r.expected_seq)
    return fail(errc::sequence_conflict, "stream " + r.stream + " is at seq " +
                                           std::to_string(*current) + ", the append expected " +
                                           std::to_string(r.expected_seq));
  for (auto& p : r.after) {
    auto sum = store_->event_checksum(p.stream, p.seq);
    if (!sum) {
      batch_error = sum.error();
      return step::storage_failed;
    }
    if (!*sum || **sum != p.checksum)
      return fail(errc::sequence_conflict, "stream " + r.stream + " builds on event " +
                                             std::to_string(p.seq) + " of " + p.stream +
                                             ", which is not in the journal");
  }
  auto now = r.at_ms > 0 ? r.at_ms : journal_clock_ms();
  auto last = r.expected_seq + count;
  caf::error error;
  auto result = store_->write_append(r, now, error);
  if (result == journal_store::result::request_taken)
    return fail(errc::request_id_reused,
                "request " + r.request->request_id + " is already stored for " + r.stream);
  if (result != journal_store::result::ok)
    return stored(result, std::move(error), out, batch_error);
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
  if (auto why = store_->refused(snap.stream); !why.empty()) {
    out = outcome{make_error(errc::unavailable, std::move(why)), {}, true, false};
    return step::done;
  }
  auto current = store_->last_seq(snap.stream);
  if (!current) {
    batch_error = current.error();
    return step::storage_failed;
  }
  if (snap.seq > *current)
    return fail("snapshot of " + snap.stream + " at seq " + std::to_string(snap.seq) +
                " is ahead of the stream (seq " + std::to_string(*current) + ")");
  auto stored_seq = store_->snapshot_seq(snap.stream);
  if (!stored_seq) {
    batch_error = stored_seq.error();
    return step::storage_failed;
  }
  if (*stored_seq && **stored_seq > snap.seq)
    return fail("snapshot of " + snap.stream + " at seq " + std::to_string(snap.seq) +
                " is older than the stored one (seq " + std::to_string(**stored_seq) + ")");
  caf::error error;
  auto result = store_->write_snapshot(snap, journal_clock_ms(), error);
  if (result != journal_store::result::ok)
    return stored(result, std::move(error), out, batch_error);
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
