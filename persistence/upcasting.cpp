#include "wager/persistence/upcasting.hpp"

#include "wager/runtime/assert.hpp"
#include "wager/runtime/errors.hpp"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

namespace wager {

void upcaster_registry::add(std::string type, uint32_t from_version, upcaster step) {
  WAGER_ASSERT(step != nullptr, "upcaster for " + type);
  auto [_, inserted] = steps_.emplace(std::pair{std::move(type), from_version}, std::move(step));
  WAGER_ASSERT(inserted, "upcaster registered twice");
}

caf::error upcaster_registry::upcast(event& e) const {
  if (steps_.empty())
    return {};
  auto step = steps_.find(std::pair{e.type, e.version});
  if (step == steps_.end())
    return {};
  boost::system::error_code ec;
  upcast_event current{e.type, e.version, boost::json::parse(e.payload, ec)};
  if (ec)
    return make_error(errc::journal_failure,
                      "event of type " + e.type + " has a payload that is not JSON");
  for (uint32_t steps = 0; step != steps_.end(); ++steps) {
    WAGER_ASSERT(steps < upcast_steps_max, "upcaster chain loops for " + e.type);
    auto from = current.version;
    if (auto err = step->second(current))
      return err;
    current.version = from + 1;
    step = steps_.find(std::pair{current.type, current.version});
  }
  e.type = std::move(current.type);
  e.version = current.version;
  e.payload = boost::json::serialize(current.payload);
  return {};
}

} // namespace wager
