#pragma once

// Upcasting: old events stay readable after their type evolves. Each
// upcaster turns an event of (type, version) into the next shape, version + 1
// (and may rename the type). On read, the journal applies them in a chain
// until no upcaster matches, so an entity only ever folds current shapes.
// Stored rows are never rewritten: a rollback to the previous release still
// reads what it wrote.
//
// Register everything before the journal opens; the registry is read by
// reader threads without locks, so it is immutable once shared.

#include "wager/persistence/event.hpp"

#include <caf/error.hpp>

#include <boost/json/value.hpp>

#include <functional>
#include <map>
#include <string>
#include <utility>

namespace wager {

// An upcaster's view of an event: it edits the payload in place and may
// rename the type. The version is raised by the registry, not the upcaster.
struct upcast_event {
  std::string type;
  uint32_t version = 1;
  boost::json::value payload;
};

// Returns an error (errc::journal_failure) if the payload cannot be upcast,
// e.g. a field the old shape required is missing: the event is corrupt for
// this release and the read fails rather than fold a guess.
using upcaster = std::function<caf::error(upcast_event&)>;

// Upcasting chains stop here: a longer chain means a loop (a rename back and
// forth) and is a programmer error.
inline constexpr uint32_t upcast_steps_max = 64;

class upcaster_registry {
public:
  // Registers the step from (type, from_version) to from_version + 1.
  // Registering the same step twice is a programmer error.
  void add(std::string type, uint32_t from_version, upcaster step);

  bool empty() const noexcept { return steps_.empty(); }

  // Brings `e` to its current shape. Events no upcaster matches are left
  // untouched (and their payload is not parsed).
  caf::error upcast(event& e) const;

private:
  std::map<std::pair<std::string, uint32_t>, upcaster, std::less<>> steps_;
};

} // namespace wager
