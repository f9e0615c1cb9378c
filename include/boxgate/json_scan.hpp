#pragma once
// A strict JSON (RFC 8259) scanner for bytes nobody vouches for: command
// bodies in the gateway, device replies in the bridge, commands in devsim.
// It validates a whole document and finds the top-level "id" member, without
// building a DOM.
//
// Contract
// - Pure function; any thread; throws nothing but std::bad_alloc.
// - No recursion: nesting is tracked on an explicit stack of one bit per
//   level, so a document nested a million levels deep costs ~125 KB of heap,
//   never the call stack. `max_depth` exists for callers that hand the
//   document on to a recursive consumer (a DOM, a device's parser).
// - Linear time. Memory: the nesting stack plus the decoded "id" string.
// - Accepts exactly what nlohmann::json 3.11 accepts, with two deliberate
//   exceptions where nlohmann is lenient and RFC 8259 is not: a UTF-8 byte
//   order mark before the value and a NUL byte after it are errors (nlohmann
//   skips the one and stops reading at the other). So: strings must be valid
//   UTF-8 (no overlong forms, no encoded surrogates, nothing above U+10FFFF)
//   with control characters escaped; a \u escape of a high surrogate must be
//   followed by one of a low surrogate and a lone low surrogate is an error;
//   numbers follow the RFC grammar and, as in nlohmann, one whose magnitude
//   does not fit a double (1e400) is an error; whitespace is space, tab, LF
//   and CR; anything after the value but whitespace is an error.

#include <cstddef>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace boxgate::json {

enum class ScanError {
  none,
  syntax,      // unexpected byte or end of input
  bad_string,  // control character, bad escape, unpaired surrogate, invalid UTF-8
  bad_number,  // not the RFC grammar, or beyond the range of a double
  too_deep,    // more than max_depth nested objects/arrays
};

enum class Kind { object, array, string, number, literal };

// Bytes [offset, offset + size) of the document.
struct Span {
  std::size_t offset = 0;
  std::size_t size = 0;
};

struct ScanResult {
  ScanError error = ScanError::none;
  std::size_t error_offset = 0;  // the byte where the document stopped being valid
  // The rest is meaningful when ok().
  Kind top = Kind::literal;    // the kind of the top-level value
  std::size_t top_offset = 0;  // where it starts (after leading whitespace)
  // Members of a top-level object whose key decodes to "id" (escapes count:
  // "\u0069d" is "id", as for any JSON parser). Nested objects never count.
  std::size_t id_count = 0;
  Span id;                               // the value of the first such member
  std::optional<std::string> id_string;  // that value decoded, when it is a string

  bool ok() const noexcept { return error == ScanError::none; }
};

inline constexpr std::size_t kNoDepthLimit = std::numeric_limits<std::size_t>::max();

// Scans `document`. Depth counts open containers: `{}` is 1, `[{}]` is 2, a
// scalar is 0; a container that would exceed `max_depth` stops the scan with
// too_deep.
ScanResult scan(std::string_view document, std::size_t max_depth = kNoDepthLimit);

// A short English phrase for an error ("invalid string: ..."), for messages.
const char* describe(ScanError error) noexcept;

}  // namespace boxgate::json
