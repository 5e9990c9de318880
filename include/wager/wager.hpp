#pragma once

// Wager: everything an embedding application needs, in one include.
// Link wager::wager (find_package(wager CONFIG REQUIRED)).

#include "wager/runtime/assert.hpp"
#include "wager/runtime/config.hpp"
#include "wager/runtime/directory.hpp"
#include "wager/runtime/entity.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/metrics.hpp"
#include "wager/runtime/node_runtime.hpp"
#include "wager/runtime/options.hpp"
#include "wager/runtime/supervisor.hpp"
