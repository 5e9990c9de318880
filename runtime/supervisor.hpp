#pragma once

// OTP-style supervisors (DESIGN.md, "Supervision"). A supervisor starts its
// children and monitors them (a child that ends by any means is noticed,
// and a supervisor that ends abruptly sends its children its exit reason, as
// a link would); it traps exit messages itself. A child that throws or fails
// is restarted according to its restart policy and the supervisor's strategy.
// Too many restarts in a short time mean restarting does not help: the
// supervisor stops all its children and quits with
// errc::restart_intensity_exceeded, which its own parent (a supervisor one
// level up the node tree) sees as an abnormal child exit.
//
// Restarted children get new actor handles, so callers route by child name:
// ask the supervisor (get_atom, name) for the current handle and ask again
// after a request fails with request_receiver_down.
//
// Messages a supervisor answers:
//   (caf::get_atom, std::string name)  -> caf::actor
//       errors: not_found (no such child, or one that exited for good),
//               unavailable (waiting for its restart)
//   (children_atom)                    -> std::vector<child_status>, start order
//   (caf::add_atom, child_spec)        -> caf::actor, the child started now
//       errors: invalid_field (empty or taken name, no start function),
//               limit_exceeded (children_max), unavailable (stopping or
//               restarting all), internal (its start failed: the child is
//               kept and handled as if it had crashed)
//   (caf::delete_atom, std::string)    -> caf::ok_atom once the child has
//       exited; it is stopped (user_shutdown) and forgotten, never restarted.
//       errors: not_found, unavailable (stopping or restarting all)
// An exit message (its parent stopping it, or anon_send_exit(sup,
// user_shutdown)) stops the children in reverse start order, each sent
// user_shutdown and waited for (killed after shutdown_timeout), then the
// supervisor quits with that reason. Exit messages with reason normal are
// ignored, as CAF's default does; exit_reason::kill cannot be trapped.
//
// Back-off rule: the n-th consecutive restart of a child waits
// backoff_initial * 2^(n-1), at most backoff_max. A child that stayed up for
// at least backoff_reset_after before exiting starts over at backoff_initial.
// With one_for_all the delay is that of the child whose exit caused it.
//
// Counting: each failure that leads to a restart counts once toward the
// restart intensity (OTP's rule, also for one_for_all), while
// wager_restarts_total{supervisor,child} counts every child actually started
// again, so one one_for_all restart of three children adds three.

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>
#include <caf/allowed_unsafe_message_type.hpp>
#include <caf/atom.hpp>
#include <caf/local_actor.hpp>
#include <caf/meta/type_name.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace wager {

class metrics;

using children_atom = caf::atom_constant<caf::atom("children")>;

enum class restart_policy : uint8_t {
  permanent, // restarted after every exit, normal or not: a service that must run
  transient, // restarted only after an abnormal exit; exit_reason::normal and
             // user_shutdown count as normal (a finished job, a passivated entity)
  temporary, // never restarted: a one-off whose failure the caller handles
};

enum class restart_strategy : uint8_t {
  one_for_one, // only the child that exited is restarted
  one_for_all, // the other children are stopped (reverse start order), then
               // all are restarted in start order: for children that only work
               // together (temporary siblings are stopped and not restarted)
};

struct child_spec {
  // Unique within its supervisor; the metrics label and the routing key.
  std::string name;
  // Spawns the child (e.g. `return sup->spawn(wallet_actor, id);`). Called
  // inside the supervisor, so it must not block. The supervisor monitors the
  // returned actor (and removes any link to itself); an invalid handle or an
  // exception is a failed start and is handled like an abnormal exit.
  std::function<caf::actor(caf::local_actor* supervisor)> start;
  restart_policy restart = restart_policy::permanent;
  // The `child` label of wager_restarts_total; empty uses `name`. Children
  // named per entity (wallet/u42) set their kind here, so the number of
  // series stays bounded.
  std::string metrics_label;
};

struct supervisor_options {
  // In logs and the `supervisor` metrics label; also the child name when the
  // supervisor is nested with supervisor_child().
  std::string name = "supervisor";

  restart_strategy strategy = restart_strategy::one_for_one;

  // Restart intensity: more than intensity_max restarts within
  // intensity_period and the supervisor gives up and escalates. 0 escalates
  // at the first failure. OTP's defaults are 1 in 5 s; 5 lets a node ride
  // out a short burst (a flapping disk) without restarting the whole tree.
  uint32_t intensity_max = 5;
  std::chrono::milliseconds intensity_period{5000};

  // Restart back-off (rule above). 0 restarts at once. Kept short by
  // default: a restart replays a journal, and clients wait meanwhile.
  std::chrono::milliseconds backoff_initial{10};
  std::chrono::milliseconds backoff_max{1000};
  std::chrono::milliseconds backoff_reset_after{5000};

  // How long a child may take to stop after user_shutdown before it is
  // killed (exit_reason::kill, which it cannot trap).
  std::chrono::milliseconds shutdown_timeout{5000};

  // Bound on children added at run time (caf::add_atom); a shard supervisor
  // holding entity actors is the largest expected user.
  uint32_t children_max = 1'000'000;

  // Restarts are counted in metrics->restarts() when set. Must outlive the
  // supervisor.
  wager::metrics* metrics = nullptr;
};

// One child as the supervisor sees it, for (children_atom).
struct child_status {
  std::string name;
  caf::actor handle; // invalid while the child waits for its restart
  restart_policy restart = restart_policy::permanent;
  uint32_t restarts = 0; // times this child has been started again
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, child_status& x) {
  return f(caf::meta::type_name("wager.child_status"), x.name, x.handle,
           x.restart, x.restarts);
}

// Spawns a top-level supervisor and starts `children` in order. Nobody
// restarts it: whoever spawns it monitors it and stops it with
// anon_send_exit(sup, caf::exit_reason::user_shutdown).
caf::actor spawn_supervisor(caf::actor_system& sys, supervisor_options opts,
                            std::vector<child_spec> children);

// A child spec that starts a nested supervisor (named opts.name), so
// supervisors form the node's tree. Permanent by default.
child_spec supervisor_child(supervisor_options opts, std::vector<child_spec> children,
                            restart_policy restart = restart_policy::permanent);

} // namespace wager

// A child_spec carries a std::function: it travels only between local actors.
CAF_ALLOW_UNSAFE_MESSAGE_TYPE(wager::child_spec)
