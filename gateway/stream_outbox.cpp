#include "wager/gateway/stream_outbox.hpp"

#include <boost/json.hpp>

#include <algorithm>

namespace wager {

stream_outbox::stream_outbox(stream_outbox_limits limits) : limits_(limits) {}

void stream_outbox::on_ready(std::function<void()> wake) {
  std::lock_guard lock{mutex_};
  wake_ = std::move(wake);
}

void stream_outbox::wake() {
  std::function<void()> w;
  {
    std::lock_guard lock{mutex_};
    w = wake_;
  }
  if (w)
    w();
}

bool stream_outbox::push(std::string text) {
  bool ok = true;
  {
    std::lock_guard lock{mutex_};
    if (closing_)
      return false;
    if (reliable_ >= limits_.reliable_max) {
      // Too slow for messages we may not drop: say so and stop.
      queue_.clear();
      pending_price_.clear();
      reliable_ = 0;
      closing_ = close_now_ = true;
      reason_ = "client too slow";
      ok = false;
    } else {
      queue_.push_back(entry{false, std::move(text), {}, 0, {}});
      ++reliable_;
      high_water_ = std::max(high_water_, queue_.size());
    }
  }
  wake();
  return ok;
}

bool stream_outbox::push_price(const std::string& market, uint64_t version,
                               const std::map<std::string, std::string>& prices) {
  {
    std::lock_guard lock{mutex_};
    if (closing_)
      return false;
    entry e{true, {}, market, version, prices};
    if (auto it = pending_price_.find(market); it != pending_price_.end()) {
      // Older prices of selections this change leaves alone still count.
      for (auto& [sel, p] : it->second->prices)
        e.prices.emplace(sel, p);
      queue_.erase(it->second);
      pending_price_.erase(it);
      ++conflated_;
    } else if (pending_price_.size() >= limits_.price_markets_max) {
      return true; // cannot happen with subscriptions bounded below this
    }
    queue_.push_back(std::move(e));
    pending_price_[market] = std::prev(queue_.end());
    high_water_ = std::max(high_water_, queue_.size());
  }
  wake();
  return true;
}

void stream_outbox::close(std::string reason, bool graceful) {
  {
    std::lock_guard lock{mutex_};
    if (closing_)
      return;
    closing_ = true;
    close_now_ = !graceful;
    reason_ = std::move(reason);
    if (close_now_) {
      queue_.clear();
      pending_price_.clear();
      reliable_ = 0;
    }
  }
  wake();
}

std::optional<stream_outbox::item> stream_outbox::take() {
  std::lock_guard lock{mutex_};
  if (!queue_.empty()) {
    auto e = std::move(queue_.front());
    queue_.pop_front();
    if (e.is_price) {
      pending_price_.erase(e.market);
      return item{price_message(e.market, e.version, e.prices), false, {}};
    }
    --reliable_;
    return item{std::move(e.text), false, {}};
  }
  if (closing_ && !close_sent_) {
    close_sent_ = true;
    return item{{}, true, reason_};
  }
  return std::nullopt;
}

bool stream_outbox::closed() const {
  std::lock_guard lock{mutex_};
  return closing_;
}

size_t stream_outbox::size() const {
  std::lock_guard lock{mutex_};
  return queue_.size();
}

size_t stream_outbox::high_water() const {
  std::lock_guard lock{mutex_};
  return high_water_;
}

uint64_t stream_outbox::conflated() const {
  std::lock_guard lock{mutex_};
  return conflated_;
}

std::string price_message(const std::string& market, uint64_t version,
                          const std::map<std::string, std::string>& prices) {
  boost::json::object p;
  for (auto& [sel, text] : prices)
    p[sel] = text;
  return boost::json::serialize(boost::json::object{
    {"type", "price"}, {"market_id", market}, {"version", version}, {"prices", std::move(p)}});
}

} // namespace wager
