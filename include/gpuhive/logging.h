// Structured logging: one line per event, "ts level component: message key=value ...",
// or one JSON object per line when JSON output is selected. Thread safe; lines never interleave.
#pragma once

#include <fmt/format.h>

#include <string_view>

namespace gpuhive {

enum class LogLevel : int { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3, kOff = 4 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warning"/"warn", "error", "off".
bool ParseLogLevel(std::string_view text, LogLevel* level);
void SetLogJson(bool json);
bool GetLogJson();

// Writes one line to stderr. Prefer the GH_LOG_* macros, which skip formatting below the level.
void LogLine(LogLevel level, std::string_view component, std::string_view message);

}  // namespace gpuhive

#define GH_LOG(level, component, ...)                                                     \
  do {                                                                                    \
    if (static_cast<int>(level) >= static_cast<int>(::gpuhive::GetLogLevel()))           \
      ::gpuhive::LogLine(level, component, fmt::format(__VA_ARGS__));                     \
  } while (0)
#define GH_LOG_DEBUG(component, ...) GH_LOG(::gpuhive::LogLevel::kDebug, component, __VA_ARGS__)
#define GH_LOG_INFO(component, ...) GH_LOG(::gpuhive::LogLevel::kInfo, component, __VA_ARGS__)
#define GH_LOG_WARN(component, ...) GH_LOG(::gpuhive::LogLevel::kWarning, component, __VA_ARGS__)
#define GH_LOG_ERROR(component, ...) GH_LOG(::gpuhive::LogLevel::kError, component, __VA_ARGS__)
