// Units: byte sizes and durations, parsing and formatting, and the monotonic clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

#include "gpuhive/status.h"

namespace gpuhive {

inline constexpr uint64_t KiB = 1024ull;
inline constexpr uint64_t MiB = 1024ull * KiB;
inline constexpr uint64_t GiB = 1024ull * MiB;

// "12GiB", "512MiB", "1.5G" (binary), "100MB" (decimal), "4096" (bytes). Case-insensitive units.
StatusOr<uint64_t> ParseBytes(std::string_view text);
// 1536 -> "1.50 KiB".
std::string FormatBytes(uint64_t bytes);

// "100ms", "5s", "250us", "2m", "1h", plain number = milliseconds. Returns microseconds.
StatusOr<int64_t> ParseDurationUs(std::string_view text);

// Monotonic clock in nanoseconds since an arbitrary epoch.
inline int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr uint64_t AlignUp(uint64_t n, uint64_t alignment) {
  return (n + alignment - 1) / alignment * alignment;
}

}  // namespace gpuhive
