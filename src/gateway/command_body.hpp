#pragma once
// The command a caller sends: a JSON object, published with "id" set to the
// request id. Pure functions; any thread.

#include <optional>
#include <string>
#include <string_view>

#include "boxgate/ids.hpp"

namespace boxgate::gateway {

// The payload to publish: `body` with its top-level "id" set to `id` (added or
// replaced), the caller's other fields kept. nullopt when `body` is not a JSON
// object.
std::optional<std::string> command_payload(std::string_view body, const RequestId& id);

}  // namespace boxgate::gateway
