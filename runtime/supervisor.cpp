#include "wager/runtime/supervisor.hpp"

#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/metrics.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <deque>
#include <exception>
#include <map>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace wager {

namespace {

using clock_type = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Messages a supervisor sends itself. Timers cannot be cancelled, so each
// carries the child incarnation (or regroup generation) it was armed for and
// is ignored once that has passed.
using restart_atom = caf::atom_constant<caf::atom("sv_restart")>;
using regroup_atom = caf::atom_constant<caf::atom("sv_regroup")>;
using start_fail_atom = caf::atom_constant<caf::atom("sv_nostart")>;
using stop_timeout_atom = caf::atom_constant<caf::atom("sv_stoptmo")>;

// The back-off stops doubling here: 2^20 times any sane backoff_initial is
// past any sane backoff_max, and the shift cannot overflow.
constexpr uint32_t backoff_step_max = 20;

struct child_entry {
  child_spec spec;
  caf::actor handle;         // invalid while the child is not running
  uint64_t incarnation = 0;  // bumped at every start
  uint32_t restarts = 0;     // successful starts after the first
  uint32_t backoff_step = 0; // consecutive restarts without a stable run
  clock_type::time_point started_at;
  bool started_once = false;
  bool deleting = false; // stopped on request: forget it, never restart it
  caf::response_promise delete_reply;
};

enum class phase {
  running,    // children run, or wait for their own restart timer
  regrouping, // one_for_all: stopping the siblings, then restarting all
  stopping,   // stopping every child, then quitting with stop_reason_
};

bool is_normal_exit(const caf::error& reason) {
  return !reason || reason == caf::make_error(caf::exit_reason::user_shutdown);
}

void check_spec(const child_spec& spec) {
  WAGER_ASSERT(!spec.name.empty(), "a supervised child needs a name");
  WAGER_ASSERT(static_cast<bool>(spec.start), spec.name);
}

void check_setup(const supervisor_options& opts, const std::vector<child_spec>& children) {
  WAGER_ASSERT(opts.intensity_period.count() > 0, opts.name);
  WAGER_ASSERT(opts.backoff_initial.count() >= 0, opts.name);
  WAGER_ASSERT(opts.backoff_initial <= opts.backoff_max, opts.name);
  WAGER_ASSERT(children.size() <= opts.children_max, opts.name);
  std::unordered_set<std::string> names;
  for (const auto& spec : children) {
    check_spec(spec);
    WAGER_ASSERT(names.insert(spec.name).second, "duplicate child name " + spec.name);
  }
}

class supervisor_actor final : public caf::event_based_actor {
public:
  supervisor_actor(caf::actor_config& cfg, supervisor_options opts,
                   std::vector<child_spec> children)
    : caf::event_based_actor(cfg), opts_(std::move(opts)), initial_(std::move(children)) {}

  const char* name() const override { return "wager.supervisor"; }

  caf::behavior make_behavior() override {
    set_exit_handler([this](caf::exit_msg& msg) { on_exit_message(msg); });
    set_down_handler([this](caf::down_msg& msg) { on_down_message(msg); });
    for (auto& spec : initial_)
      add_child(std::move(spec));
    initial_.clear();
    return {
      [this](caf::get_atom, const std::string& name) -> caf::result<caf::actor> {
        auto* c = find(name);
        if (c == nullptr)
          return make_error(errc::not_found, "no child " + name);
        if (!c->handle)
          return make_error(errc::unavailable, "child " + name + " is restarting");
        return c->handle;
      },
      [this](children_atom) {
        std::vector<child_status> out;
        out.reserve(children_.size());
        for (const auto& [order, c] : children_)
          out.push_back(child_status{c.spec.name, c.handle, c.spec.restart, c.restarts});
        return out;
      },
      [this](caf::add_atom, child_spec& spec) -> caf::result<caf::actor> {
        return add_at_run_time(std::move(spec));
      },
      [this](caf::delete_atom, const std::string& name) { return delete_child(name); },
      [this](restart_atom, uint64_t order, uint64_t incarnation) {
        auto* c = current(order, incarnation);
        if (c != nullptr && phase_ == phase::running)
          start_child(order, *c);
      },
      [this](start_fail_atom, uint64_t order, uint64_t incarnation, caf::error& reason) {
        if (current(order, incarnation) != nullptr && phase_ == phase::running)
          on_child_exit(order, std::move(reason));
      },
      [this](stop_timeout_atom, uint64_t order, uint64_t incarnation) {
        auto it = children_.find(order);
        if (it == children_.end() || !it->second.handle || it->second.incarnation != incarnation)
          return;
        log().warn("supervisor {}: child {} ignored shutdown for {} ms, killing it",
                   opts_.name, it->second.spec.name, opts_.shutdown_timeout.count());
        send_exit(it->second.handle, caf::exit_reason::kill);
      },
      [this](regroup_atom, uint64_t generation) {
        if (phase_ == phase::regrouping && generation == regroup_generation_)
          restart_all();
      },
    };
  }

private:
  // -- children -------------------------------------------------------------

  child_entry* find(const std::string& name) {
    auto it = by_name_.find(name);
    return it == by_name_.end() ? nullptr : &children_.at(it->second);
  }

  // The child at `order` if it is still down in the incarnation a timer or
  // failed start refers to.
  child_entry* current(uint64_t order, uint64_t incarnation) {
    auto it = children_.find(order);
    if (it == children_.end() || it->second.handle || it->second.incarnation != incarnation)
      return nullptr;
    return &it->second;
  }

  child_entry& add_child(child_spec spec) {
    auto order = next_order_++;
    by_name_.emplace(spec.name, order);
    auto& c = children_[order];
    c.spec = std::move(spec);
    start_child(order, c);
    return c;
  }

  void forget(uint64_t order) {
    auto it = children_.find(order);
    by_name_.erase(it->second.spec.name);
    children_.erase(it);
  }

  caf::result<caf::actor> add_at_run_time(child_spec spec) {
    if (phase_ != phase::running)
      return make_error(errc::unavailable, "supervisor " + opts_.name + " is not running");
    if (spec.name.empty() || !spec.start)
      return make_error(errc::invalid_field, "a child needs a name and a start function");
    if (by_name_.count(spec.name) != 0)
      return make_error(errc::invalid_field, "child name " + spec.name + " is taken");
    if (children_.size() >= opts_.children_max)
      return make_error(errc::limit_exceeded, "supervisor " + opts_.name + " is full");
    auto& c = add_child(std::move(spec));
    if (!c.handle)
      return make_error(errc::internal, "child " + c.spec.name + " failed to start");
    return c.handle;
  }

  caf::response_promise delete_child(const std::string& name) {
    auto rp = make_response_promise();
    auto it = by_name_.find(name);
    if (it == by_name_.end()) {
      rp.deliver(make_error(errc::not_found, "no child " + name));
    } else if (phase_ != phase::running) {
      rp.deliver(make_error(errc::unavailable, "supervisor " + opts_.name + " is busy"));
    } else if (auto& c = children_.at(it->second); c.deleting) {
      rp.deliver(make_error(errc::unavailable, "child " + name + " is already stopping"));
    } else if (!c.handle) {
      forget(it->second);
      rp.deliver(caf::ok_atom::value);
    } else {
      c.deleting = true;
      c.delete_reply = rp;
      request_stop(it->second, c);
    }
    return rp;
  }

  void start_child(uint64_t order, child_entry& c) {
    ++c.incarnation;
    c.started_at = clock_type::now();
    caf::actor handle;
    caf::error failure;
    try {
      handle = c.spec.start(this);
    } catch (const std::exception& e) {
      failure = make_error(errc::internal, std::string{"start threw: "} + e.what());
    } catch (...) {
      failure = make_error(errc::internal, "start threw");
    }
    if (!handle) {
      if (!failure)
        failure = make_error(errc::internal, "start returned no actor");
      // Handled like an exit, but as a message: a child that never starts
      // must not recurse through restart and start again.
      send(this, start_fail_atom::value, order, c.incarnation, std::move(failure));
      return;
    }
    c.handle = handle;
    by_addr_.emplace(handle.address(), order);
    // Monitored, not linked: a child that receives an exit message unlinks
    // from its sender, so after our own user_shutdown a link would never tell
    // us the child is gone. A monitor always does (at once if it is dead).
    // on_exit() stands in for the link when we end abruptly.
    unlink_from(handle);
    monitor(handle);
    if (c.started_once) {
      ++c.restarts;
      count_restart(c);
    }
    c.started_once = true;
  }

  void count_restart(const child_entry& c) {
    log().info("supervisor {}: restarted child {} (restart {})", opts_.name, c.spec.name,
               c.restarts);
    if (opts_.metrics != nullptr)
      opts_.metrics->restarts()
        .Add({{"supervisor", opts_.name},
              {"child", c.spec.metrics_label.empty() ? c.spec.name : c.spec.metrics_label}})
        .Increment();
  }

  // -- exits ----------------------------------------------------------------

  // The parent or an operator asks us to stop. A normal exit message stops
  // nobody, as with CAF's default handler.
  void on_exit_message(caf::exit_msg& msg) {
    if (msg.reason)
      begin_stop(std::move(msg.reason));
  }

  void on_down_message(caf::down_msg& msg) {
    auto it = msg.source ? by_addr_.find(msg.source) : by_addr_.end();
    if (it == by_addr_.end())
      return;
    auto order = it->second;
    by_addr_.erase(it);
    on_child_exit(order, std::move(msg.reason));
  }

  // Orderly stops end with no child left. An abrupt end (kill, an exception
  // in this class) passes its reason on, as a link would.
  void on_exit() override {
    auto reason = fail_state() ? fail_state() : caf::make_error(caf::exit_reason::user_shutdown);
    for (auto& [order, c] : children_)
      if (c.handle)
        send_exit(c.handle, reason);
    children_.clear();
    by_addr_.clear();
  }

  void on_child_exit(uint64_t order, caf::error reason) {
    auto it = children_.find(order);
    WAGER_ASSERT(it != children_.end(), "exit of a child the supervisor forgot");
    auto& c = it->second;
    c.handle = nullptr;
    if (c.deleting) {
      c.delete_reply.deliver(caf::ok_atom::value);
      forget(order);
    } else if (phase_ != phase::running) {
      if (c.spec.restart == restart_policy::temporary)
        forget(order);
    } else {
      on_running_child_exit(order, c, std::move(reason));
    }
    if (phase_ != phase::running && stopping_ == order)
      stop_next();
  }

  void on_running_child_exit(uint64_t order, child_entry& c, caf::error reason) {
    auto policy = c.spec.restart;
    bool restart = policy == restart_policy::permanent
                   || (policy == restart_policy::transient && !is_normal_exit(reason));
    if (!restart) {
      log().info("supervisor {}: child {} exited ({}), not restarted", opts_.name,
                 c.spec.name, describe(reason));
      forget(order);
      return;
    }
    auto now = clock_type::now();
    if (!note_restart(now)) {
      log().error("supervisor {}: child {} exited ({}); more than {} restarts in {} ms, "
                  "giving up",
                  opts_.name, c.spec.name, describe(reason), opts_.intensity_max,
                  opts_.intensity_period.count());
      begin_stop(make_error(errc::restart_intensity_exceeded,
                            "supervisor " + opts_.name + " gave up on child " + c.spec.name
                              + " (" + describe(reason) + ")"));
      return;
    }
    auto delay = next_backoff(c, now);
    log().warn("supervisor {}: child {} exited ({}), restarting {} in {} ms", opts_.name,
               c.spec.name, describe(reason),
               opts_.strategy == restart_strategy::one_for_all ? "all children" : "it",
               delay.count());
    if (opts_.strategy == restart_strategy::one_for_all) {
      begin_regroup(delay);
    } else if (delay.count() == 0) {
      start_child(order, c);
    } else {
      delayed_send(this, delay, restart_atom::value, order, c.incarnation);
    }
  }

  // Records a restart; false when it exceeds the restart intensity.
  bool note_restart(clock_type::time_point now) {
    restart_times_.push_back(now);
    while (now - restart_times_.front() >= opts_.intensity_period)
      restart_times_.pop_front();
    return restart_times_.size() <= opts_.intensity_max;
  }

  milliseconds next_backoff(child_entry& c, clock_type::time_point now) {
    if (now - c.started_at >= opts_.backoff_reset_after)
      c.backoff_step = 0;
    auto delay = std::min(opts_.backoff_initial * (int64_t{1} << c.backoff_step),
                          opts_.backoff_max);
    if (delay < opts_.backoff_max && c.backoff_step < backoff_step_max)
      ++c.backoff_step;
    return delay;
  }

  std::string describe(const caf::error& reason) const {
    if (!reason)
      return "normal";
    if (reason.category() != error_category)
      return home_system().render(reason);
    auto text = std::string{to_code(code_of(reason))};
    auto detail = message_of(reason);
    return detail.empty() ? text : text + ": " + detail;
  }

  // -- stopping children ----------------------------------------------------

  void begin_regroup(milliseconds delay) {
    phase_ = phase::regrouping;
    regroup_delay_ = delay;
    queue_running_children();
    stop_next();
  }

  void begin_stop(caf::error reason) {
    if (phase_ == phase::stopping)
      return;
    log().info("supervisor {}: stopping ({})", opts_.name, describe(reason));
    phase_ = phase::stopping;
    stop_reason_ = std::move(reason);
    queue_running_children();
    // A stop already under way (regrouping) finishes first, then the queue.
    if (!stopping_)
      stop_next();
  }

  void queue_running_children() {
    stop_queue_.clear();
    for (const auto& [order, c] : children_)
      if (c.handle)
        stop_queue_.push_back(order);
  }

  // Stops the next child in reverse start order and waits for its exit;
  // when none is left, quits or restarts everyone.
  void stop_next() {
    while (!stop_queue_.empty()) {
      auto order = stop_queue_.back();
      stop_queue_.pop_back();
      auto it = children_.find(order);
      if (it != children_.end() && it->second.handle) {
        stopping_ = order;
        request_stop(order, it->second);
        return;
      }
    }
    stopping_.reset();
    if (phase_ == phase::stopping) {
      quit(stop_reason_);
    } else if (regroup_delay_.count() == 0) {
      restart_all();
    } else {
      delayed_send(this, regroup_delay_, regroup_atom::value, ++regroup_generation_);
    }
  }

  void request_stop(uint64_t order, const child_entry& c) {
    send_exit(c.handle, caf::exit_reason::user_shutdown);
    delayed_send(this, opts_.shutdown_timeout, stop_timeout_atom::value, order,
                 c.incarnation);
  }

  void restart_all() {
    phase_ = phase::running;
    for (auto& [order, c] : children_)
      if (!c.handle)
        start_child(order, c);
  }

  supervisor_options opts_;
  std::vector<child_spec> initial_; // moved into children_ at start
  std::map<uint64_t, child_entry> children_; // by start order
  std::unordered_map<std::string, uint64_t> by_name_;
  std::unordered_map<caf::actor_addr, uint64_t> by_addr_; // running children
  uint64_t next_order_ = 0;
  std::deque<clock_type::time_point> restart_times_; // at most intensity_max + 1
  phase phase_ = phase::running;
  std::vector<uint64_t> stop_queue_; // start order; stopped from the back
  std::optional<uint64_t> stopping_; // the child whose exit we wait for
  caf::error stop_reason_;
  milliseconds regroup_delay_{0};
  uint64_t regroup_generation_ = 0;
};

} // namespace

caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_options opts,
                            std::vector<child_spec> children) {
  check_setup(opts, children);
  return sys.spawn<supervisor_actor>(std::move(opts), std::move(children));
}

child_spec supervisor_child(supervisor_options opts, std::vector<child_spec> children,
                            restart_policy restart) {
  check_setup(opts, children);
  auto name = opts.name;
  return child_spec{
    std::move(name),
    [opts = std::move(opts), children = std::move(children)](caf::local_actor* parent) {
      return parent->spawn<supervisor_actor>(opts, children);
    },
    restart};
}

} // namespace wager
