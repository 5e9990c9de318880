#pragma once

// The read side of a journal: read connections opened on demand up to
// read_connections_max and kept, and reader threads that run posted reads
// (journal::post_read). One per journal, whatever the store: the SQLite
// journal's readers hold a file connection each, the PostgreSQL journal's a
// server connection each. Internal to persistence/.

#include "wager/persistence/journal_options.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"

#include <caf/error.hpp>
#include <caf/expected.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace wager {

template <class Reader>
class reader_pool {
public:
  using opener = std::function<caf::expected<std::unique_ptr<Reader>>()>;

  reader_pool(const journal_options& options, opener open)
    : options_(options), open_(std::move(open)) {
    for (uint32_t i = 0; i < options_.reader_threads; ++i)
      threads_.emplace_back([this] { run(); });
  }

  ~reader_pool() { stop(); }

  reader_pool(const reader_pool&) = delete;
  reader_pool& operator=(const reader_pool&) = delete;

  // Refuses new reads, runs every read already posted, joins the threads.
  // REQUIRES: the journal is still whole: a posted read may use it.
  void stop() {
    {
      std::lock_guard lock{work_mutex_};
      stopping_ = true;
    }
    work_ready_.notify_all();
    for (auto& t : threads_)
      if (t.joinable())
        t.join();
  }

  caf::error post(std::function<void()> work) {
    {
      std::lock_guard lock{work_mutex_};
      if (stopping_)
        return make_error(errc::unavailable, "journal is closed");
      if (work_.size() >= options_.read_queue_max)
        return make_error(errc::unavailable, "journal read queue is full (read_queue_max " +
                                               std::to_string(options_.read_queue_max) + ")");
      work_.push_back(std::move(work));
    }
    work_ready_.notify_one();
    return {};
  }

  // Runs f(Reader&) with a connection of the pool, waiting for one when all
  // are in use. A reader whose `usable()` turns false during f (a server
  // connection that broke) is closed instead of kept.
  template <class F>
  auto with_reader(F&& f) -> decltype(f(std::declval<Reader&>())) {
    auto reader = borrow();
    if (!reader)
      return reader.error();
    auto result = f(**reader);
    give_back(std::move(*reader));
    return result;
  }

private:
  caf::expected<std::unique_ptr<Reader>> borrow() {
    {
      std::unique_lock lock{conn_mutex_};
      conn_free_.wait(lock, [this] {
        return !idle_.empty() || opened_ < options_.read_connections_max;
      });
      if (!idle_.empty()) {
        auto reader = std::move(idle_.back());
        idle_.pop_back();
        return reader;
      }
      ++opened_; // reserve the slot, then open without holding the lock
    }
    auto reader = open_();
    if (!reader) {
      {
        std::lock_guard lock{conn_mutex_};
        --opened_;
      }
      conn_free_.notify_one();
      return reader.error();
    }
    return std::move(*reader);
  }

  void give_back(std::unique_ptr<Reader> reader) {
    {
      std::lock_guard lock{conn_mutex_};
      if (reader->usable())
        idle_.push_back(std::move(reader));
      else
        --opened_;
    }
    conn_free_.notify_one();
  }

  void run() {
    for (;;) {
      std::function<void()> work;
      {
        std::unique_lock lock{work_mutex_};
        work_ready_.wait(lock, [this] { return !work_.empty() || stopping_; });
        if (work_.empty())
          return; // stopping, and every posted read has run
        work = std::move(work_.front());
        work_.pop_front();
      }
      try {
        work();
      } catch (const std::exception& e) {
        log().error("journal: a read callback threw: {}", e.what());
      } catch (...) {
        log().error("journal: a read callback threw");
      }
    }
  }

  const journal_options& options_;
  opener open_;
  std::mutex conn_mutex_;
  std::condition_variable conn_free_;
  std::vector<std::unique_ptr<Reader>> idle_;
  uint32_t opened_ = 0;
  std::mutex work_mutex_;
  std::condition_variable work_ready_;
  std::deque<std::function<void()>> work_;
  bool stopping_ = false;
  std::vector<std::thread> threads_;
};

} // namespace wager
