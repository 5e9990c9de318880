#pragma once

// Logging for every Wager component: spdlog, to stderr, as text or as one
// JSON object per line (for log shippers). Components log through
// wager::log(), which is always valid, even before configure_logging().

#include <spdlog/spdlog.h>

#include <string>
#include <string_view>

namespace wager {

enum class log_format {
  text, // human-readable lines
  json, // one JSON object per line: ts, level, logger, msg
};

// Returns false (and changes nothing) for an unknown level or format name.
bool parse_log_level(std::string_view name, spdlog::level::level_enum& out);
bool parse_log_format(std::string_view name, log_format& out);

// Sets up the process-wide logger. Safe to call more than once.
void configure_logging(spdlog::level::level_enum level, log_format format);

// The process-wide logger.
spdlog::logger& log();

} // namespace wager
