# The headers Wager installs: its public API, what an embedding application
# may include (all of them through <wager/wager.hpp>). A header not listed
# here stays inside the build tree: implementation splits (*_internal.hpp,
# codecs, journal internals), test hooks, and anything that pulls in Beast
# or Asio, whose compile cost stays in gateway/'s .cpp files. A public header
# may include only public headers; tests/package checks that each installed
# header compiles on its own against the installed package.
include_guard(GLOBAL)

set(WAGER_PUBLIC_HEADERS_runtime
  assert.hpp config.hpp directory.hpp entity.hpp errors.hpp log.hpp metrics.hpp
  message_types.hpp node_runtime.hpp options.hpp request_deadlines.hpp rfc3339.hpp
  ring_queue.hpp supervisor.hpp)
set(WAGER_PUBLIC_HEADERS_persistence
  backup.hpp event.hpp journal.hpp journal_options.hpp open_journal.hpp pg_journal.hpp
  sqlite_journal.hpp upcasting.hpp)
set(WAGER_PUBLIC_HEADERS_actors
  bet.hpp feed.hpp feed_message.hpp gambling_limits.hpp history.hpp ids.hpp ledger_audit.hpp
  market.hpp market_state.hpp market_status.hpp money.hpp odds.hpp platform.hpp resume.hpp
  session.hpp slip.hpp user.hpp wallet.hpp wallet_state.hpp)
set(WAGER_PUBLIC_HEADERS_gateway
  api.hpp auth.hpp auth_store.hpp feed_listener.hpp http_server.hpp intrusion.hpp operations.hpp
  stream.hpp)
set(WAGER_PUBLIC_HEADERS_cluster
  cluster_node.hpp membership.hpp placement.hpp)
