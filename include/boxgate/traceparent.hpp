#pragma once
// W3C Trace Context (https://www.w3.org/TR/trace-context/): the
// `traceparent` a caller sends with a command travels to the device as an
// MQTT v5 user property, and a device reply's is logged by the bridge.
// Only the version-00 form is accepted (55 characters: 2-32-16-2 lowercase
// hex, dash-separated; version not ff, trace id and parent id not all
// zeros); anything else is dropped, so a caller's bytes never reach a log
// line or a device unchecked. Pure function; any thread.

#include <string_view>

namespace boxgate {

bool is_valid_traceparent(std::string_view value) noexcept;

}  // namespace boxgate
