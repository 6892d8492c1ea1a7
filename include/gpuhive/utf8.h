// UTF-8 validation: names and messages that reach JSON, protobuf strings or Prometheus labels
// must be valid UTF-8 (file names and URL-decoded paths are arbitrary bytes on Linux).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace gpuhive {

// Length (1..4) of the well-formed UTF-8 sequence that starts at s[i], or 0 when the bytes there
// are not one (a stray continuation byte, an overlong form, a surrogate, past U+10FFFF, cut off).
size_t Utf8SequenceLength(std::string_view s, size_t i);
bool IsValidUtf8(std::string_view s);
// `s` with every byte that is not part of a well-formed sequence replaced by U+FFFD.
std::string ToValidUtf8(std::string_view s);

}  // namespace gpuhive
