#pragma once

// Wager: everything an embedding application needs, in one include: the
// runtime, the journal, the embedded platform with its entities' messages,
// the client API and the HTTP, WebSocket and feed edges, and a node's seat
// in a cluster. Link wager::wager (find_package(wager CONFIG REQUIRED)).
//
// It includes every installed header (cmake/WagerPublicHeaders.cmake);
// tests/package/check_package.sh fails when one is left out.

#include "wager/runtime/assert.hpp"
#include "wager/runtime/config.hpp"
#include "wager/runtime/directory.hpp"
#include "wager/runtime/entity.hpp"
#include "wager/runtime/errors.hpp"
#include "wager/runtime/log.hpp"
#include "wager/runtime/message_types.hpp"
#include "wager/runtime/metrics.hpp"
#include "wager/runtime/node_runtime.hpp"
#include "wager/runtime/options.hpp"
#include "wager/runtime/request_deadlines.hpp"
#include "wager/runtime/rfc3339.hpp"
#include "wager/runtime/ring_queue.hpp"
#include "wager/runtime/supervisor.hpp"

#include "wager/persistence/backup.hpp"
#include "wager/persistence/event.hpp"
#include "wager/persistence/journal.hpp"
#include "wager/persistence/journal_options.hpp"
#include "wager/persistence/open_journal.hpp"
#include "wager/persistence/pg_journal.hpp"
#include "wager/persistence/sqlite_journal.hpp"
#include "wager/persistence/upcasting.hpp"

#include "wager/actors/bet.hpp"
#include "wager/actors/feed.hpp"
#include "wager/actors/feed_message.hpp"
#include "wager/actors/gambling_limits.hpp"
#include "wager/actors/history.hpp"
#include "wager/actors/ids.hpp"
#include "wager/actors/ledger_audit.hpp"
#include "wager/actors/market.hpp"
#include "wager/actors/market_state.hpp"
#include "wager/actors/market_status.hpp"
#include "wager/actors/money.hpp"
#include "wager/actors/odds.hpp"
#include "wager/actors/platform.hpp"
#include "wager/actors/resume.hpp"
#include "wager/actors/session.hpp"
#include "wager/actors/slip.hpp"
#include "wager/actors/user.hpp"
#include "wager/actors/wallet.hpp"
#include "wager/actors/wallet_state.hpp"

#include "wager/gateway/api.hpp"
#include "wager/gateway/auth.hpp"
#include "wager/gateway/auth_store.hpp"
#include "wager/gateway/feed_listener.hpp"
#include "wager/gateway/http_server.hpp"
#include "wager/gateway/intrusion.hpp"
#include "wager/gateway/operations.hpp"
#include "wager/gateway/stream.hpp"

#include "wager/cluster/cluster_node.hpp"
#include "wager/cluster/membership.hpp"
#include "wager/cluster/placement.hpp"
