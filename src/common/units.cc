#include "gpuhive/units.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>

namespace gpuhive {
namespace {
std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Splits "1.5GiB" into 1.5 and "gib".
bool SplitNumber(std::string_view text, double* value, std::string* unit) {
  size_t i = 0;
  while (i < text.size() && (std::isdigit(static_cast<unsigned char>(text[i])) || text[i] == '.')) ++i;
  if (i == 0) return false;
  std::string num(text.substr(0, i));
  char* end = nullptr;
  *value = std::strtod(num.c_str(), &end);
  if (end != num.c_str() + num.size() || !std::isfinite(*value)) return false;
  std::string_view rest = text.substr(i);
  while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
  *unit = Lower(rest);
  return true;
}
}  // namespace

StatusOr<uint64_t> ParseBytes(std::string_view text) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit)) return InvalidArgument("invalid byte size '{}'", text);
  double mult = 0;
  if (unit.empty() || unit == "b") mult = 1;
  else if (unit == "k" || unit == "kib" || unit == "ki") mult = 1024.0;
  else if (unit == "m" || unit == "mib" || unit == "mi") mult = 1024.0 * 1024;
  else if (unit == "g" || unit == "gib" || unit == "gi") mult = 1024.0 * 1024 * 1024;
  else if (unit == "t" || unit == "tib" || unit == "ti") mult = 1024.0 * 1024 * 1024 * 1024;
  else if (unit == "kb") mult = 1e3;
  else if (unit == "mb") mult = 1e6;
  else if (unit == "gb") mult = 1e9;
  else if (unit == "tb") mult = 1e12;
  else return InvalidArgument("invalid byte unit '{}' in '{}'", unit, text);
  double bytes = v * mult;
  if (bytes > 1.8e19) return InvalidArgument("byte size '{}' too large", text);
  return static_cast<uint64_t>(std::llround(bytes));
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < KiB) return fmt::format("{} B", bytes);
  if (bytes < MiB) return fmt::format("{:.2f} KiB", bytes / double(KiB));
  if (bytes < GiB) return fmt::format("{:.2f} MiB", bytes / double(MiB));
  return fmt::format("{:.2f} GiB", bytes / double(GiB));
}

StatusOr<int64_t> ParseDurationUs(std::string_view text) {
  double v = 0;
  std::string unit;
  if (!SplitNumber(text, &v, &unit)) return InvalidArgument("invalid duration '{}'", text);
  double us_per = 0;
  if (unit.empty() || unit == "ms") us_per = 1e3;
  else if (unit == "us") us_per = 1;
  else if (unit == "ns") us_per = 1e-3;
  else if (unit == "s") us_per = 1e6;
  else if (unit == "m" || unit == "min") us_per = 60e6;
  else if (unit == "h") us_per = 3600e6;
  else return InvalidArgument("invalid duration unit '{}' in '{}'", unit, text);
  return static_cast<int64_t>(std::llround(v * us_per));
}

}  // namespace gpuhive
