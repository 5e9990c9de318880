#include "wager/persistence/sqlite_journal.hpp"

#include "wager/persistence/journal_metrics.hpp"
#include "wager/persistence/journal_reader.hpp"
#include "wager/persistence/journal_schema.hpp"
#include "wager/persistence/journal_writer.hpp"
#include "wager/persistence/log_journal.hpp"
#include "wager/persistence/reader_pool.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

namespace wager {

namespace {

class sqlite_journal final : public journal {
public:
  // `index` is null for the row layout.
  sqlite_journal(journal_options options, sqlite::connection writer_db,
                 std::shared_ptr<log_index> index)
    : options_(std::move(options)), index_(std::move(index)) {
    if (options_.metrics_registry != nullptr)
      metrics_ = std::make_unique<journal_metrics>(*options_.metrics_registry);
    auto store = index_ != nullptr ? make_log_store(std::move(writer_db), options_, index_)
                                   : make_row_store(std::move(writer_db), options_);
    writer_ = std::make_unique<journal_writer>(std::move(store), options_, metrics_.get());
    readers_ = std::make_unique<reader_pool<journal_reader>>(
      options_, [this]() -> caf::expected<std::unique_ptr<journal_reader>> {
        auto db = open_journal_file(options_, journal_role::reader);
        if (!db)
          return db.error();
        return std::make_unique<journal_reader>(std::move(*db), options_.upcasters);
      });
  }

  // The log layout: loads the index checkpoint, if the file has one that
  // matches its log, then reads every frame after it into the index,
  // checking the hash chain from there, before the journal is used.
  //
  // The frames before the checkpoint are checked afterwards, on a thread of
  // its own (check_index_checkpoint): if they do not give the checkpoint,
  // the journal turns unhealthy and refuses every write, as an opening that
  // read them would have refused the file.
  caf::error load_index() {
    if (index_ == nullptr)
      return {};
    bool from_checkpoint = false;
    auto err = readers_->with_reader([&](journal_reader& r) -> caf::error {
      if (options_.index_checkpoint_frames > 0) {
        auto loaded = load_index_checkpoint(*index_, r);
        if (!loaded)
          return loaded.error();
        from_checkpoint = *loaded;
      }
      return catch_up(*index_, r);
    });
    if (!err && from_checkpoint)
      checker_ = std::thread{[this] { check_checkpoint(); }};
    return err;
  }

  ~sqlite_journal() override {
    cancel_check_ = true;
    if (checker_.joinable())
      checker_.join();
    // Writes first: their callbacks may still post reads. Then the reads,
    // while both members are whole: a posted read may call back into us.
    writer_->stop();
    readers_->stop();
    readers_.reset();
    writer_.reset();
  }

  caf::error append(append_request request, result_callback<append_ack> done) override {
    if (broken_.load())
      return broken_error();
    return writer_->append(std::move(request), std::move(done));
  }

  caf::error save_snapshot(snapshot snap, result_callback<snapshot_saved> done) override {
    if (broken_.load())
      return broken_error();
    return writer_->save_snapshot(std::move(snap), std::move(done));
  }

  caf::expected<std::vector<recorded_event>> read_events(const std::string& stream,
                                                         uint64_t from_seq,
                                                         uint32_t max_count) override {
    auto count = std::min(max_count, options_.read_page_max);
    return readers_->with_reader([&](journal_reader& r) {
      return index_ != nullptr ? read_log_events(*index_, r, stream, from_seq, count)
                               : r.read_events(stream, from_seq, count);
    });
  }

  caf::expected<uint64_t> last_seq(const std::string& stream) override {
    return readers_->with_reader([&](journal_reader& r) -> caf::expected<uint64_t> {
      if (index_ == nullptr)
        return r.last_seq(stream);
      if (auto err = catch_up(*index_, r))
        return err;
      return index_->stream(stream).last_seq;
    });
  }

  caf::expected<std::optional<snapshot>> load_snapshot(const std::string& stream) override {
    return readers_->with_reader([&](journal_reader& r) { return r.load_snapshot(stream); });
  }

  caf::expected<std::vector<std::string>> list_streams(std::string_view kind,
                                                       const std::string& after,
                                                       uint32_t max_count) override {
    auto count = std::min(max_count, options_.read_page_max);
    return readers_->with_reader([&](journal_reader& r) { return list(r, kind, after, count, false); });
  }

  caf::expected<std::vector<std::string>> list_open_streams(std::string_view kind,
                                                            const std::string& after,
                                                            uint32_t max_count) override {
    auto count = std::min(max_count, options_.read_page_max);
    return readers_->with_reader([&](journal_reader& r) { return list(r, kind, after, count, true); });
  }

  caf::expected<std::optional<stored_request>>
  find_request(const std::string& stream, const std::string& request_id) override {
    return readers_->with_reader([&](journal_reader& r) {
      return index_ != nullptr ? find_log_request(*index_, r, stream, request_id)
                               : r.find_request(stream, request_id);
    });
  }

  caf::expected<log_page> read_log(uint64_t after, uint32_t max_frames,
                                   std::string_view kind) override {
    if (index_ == nullptr)
      return no_log();
    auto count = std::min(max_frames, options_.read_page_max);
    return readers_->with_reader(
      [&](journal_reader& r) { return read_log_page(r, after, count, kind); });
  }

  caf::expected<uint64_t> log_end() override {
    if (index_ == nullptr)
      return no_log();
    return readers_->with_reader([&](journal_reader& r) -> caf::expected<uint64_t> {
      if (auto err = catch_up(*index_, r))
        return err;
      return index_->applied();
    });
  }

  journal_health health() const override {
    auto h = writer_->health();
    if (broken_.load()) {
      h.writable = false;
      std::lock_guard lock{broken_mutex_};
      h.last_error = broken_message_;
    }
    return h;
  }

  caf::error post_read(std::function<void()> work) override {
    return readers_->post(std::move(work));
  }

private:
  caf::expected<std::vector<std::string>> list(journal_reader& r, std::string_view kind,
                                               const std::string& after, uint32_t count,
                                               bool open_work_only) {
    if (index_ == nullptr)
      return open_work_only ? r.list_open_streams(kind, after, count)
                            : r.list_streams(kind, after, count);
    if (auto err = catch_up(*index_, r))
      return err;
    return index_->streams(kind, after, count, open_work_only);
  }

  static caf::error no_log() {
    return make_error(errc::unavailable,
                      "this journal is in the row layout, which has no ordered log "
                      "(wagerctl upgrade rewrites it in the log layout)");
  }

  void check_checkpoint() {
    auto db = open_journal_file(options_, journal_role::reader);
    if (!db) {
      log().warn("journal {}: the frames before the index checkpoint are not checked: {}",
                 options_.path, message_of(db.error()));
      return;
    }
    journal_reader reader{std::move(*db), nullptr};
    auto err = check_index_checkpoint(reader, cancel_check_);
    if (!err || cancel_check_.load())
      return;
    log().error("journal {}: {}", options_.path, message_of(err));
    {
      std::lock_guard lock{broken_mutex_};
      broken_message_ = message_of(err);
    }
    broken_ = true;
  }

  caf::error broken_error() const {
    std::lock_guard lock{broken_mutex_};
    return make_error(errc::journal_failure, broken_message_);
  }

  journal_options options_;
  std::shared_ptr<log_index> index_;
  // The check of the frames before the index checkpoint, and what it found.
  std::thread checker_;
  std::atomic<bool> cancel_check_{false};
  std::atomic<bool> broken_{false};
  mutable std::mutex broken_mutex_;
  std::string broken_message_;
  std::unique_ptr<journal_metrics> metrics_;
  std::unique_ptr<journal_writer> writer_;
  std::unique_ptr<reader_pool<journal_reader>> readers_;
};

} // namespace

caf::expected<std::unique_ptr<journal>> open_sqlite_journal(journal_options options) {
  if (auto err = validate(options))
    return err;
  if (options.path.empty())
    return make_error(errc::invalid_field, "journal option path is empty");
  auto db = open_journal_file(options, journal_role::writer);
  if (!db)
    return db.error();
  auto layout = layout_of(*db, options.path);
  if (!layout)
    return layout.error();
  std::shared_ptr<log_index> index;
  if (*layout == journal_layout::log)
    index = std::make_shared<log_index>();
  auto j = std::make_unique<sqlite_journal>(std::move(options), std::move(*db), std::move(index));
  if (auto err = j->load_index())
    return err;
  return std::unique_ptr<journal>{std::move(j)};
}

} // namespace wager
