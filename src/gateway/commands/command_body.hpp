#pragma once
// The command a caller sends: a JSON object, published with "id" set to the
// request id. Pure functions; any thread.
//
// Untrusted bytes: the body is checked by the iterative json::scan (no DOM, no
// recursion) and the id is spliced into the caller's bytes, so no body can
// exhaust the stack whatever its shape. The depth limit protects the devices,
// whose parsers are often recursive with small stacks.

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

#include "boxgate/ids.hpp"

namespace boxgate::gateway {

// Objects and arrays may nest this deep in a command body (`{}` is depth 1);
// deeper is 400 invalid_body (docs/contract.md).
inline constexpr std::size_t kMaxCommandDepth = 64;

struct CommandPayload {
  std::optional<std::string> payload;  // the command to publish, when the body is valid
  std::string problem;                 // otherwise one sentence for the 400 invalid_body
};

// The payload to publish: `body` with its top-level "id" set to `id`, every
// other byte of the caller kept as sent. An existing top-level "id" has its
// value replaced (whatever its type); otherwise "id" is inserted as the first
// member. Refused: anything but a valid JSON object, nesting deeper than
// kMaxCommandDepth, and more than one top-level "id" (which one a device would
// read differs between parsers).
CommandPayload command_payload(std::string_view body, const RequestId& id);

}  // namespace boxgate::gateway
