#pragma once
// The device side's message formats, without MQTT: reading a command,
// writing a reply, choosing the reply topic. Pure functions; any thread;
// they never throw on what a message holds and never recurse on it (the
// payload is scanned for depth before nlohmann parses it).

#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "boxgate/ids.hpp"
#include "boxgate/topics.hpp"

namespace boxgate::device {

// Deeper commands are refused before parsing: the gateway lets nothing deeper
// through, and nlohmann's copy and dump recurse once per level.
inline constexpr std::size_t kMaxCommandDepth = 64;

// A command payload, read. `problem` is "" when it parsed; else why not (the
// message of a bad_json error reply) and the other fields are empty.
struct ParsedCommand {
  std::string problem;
  std::string method;      // "method" when a string
  nlohmann::json params;   // "params", null when absent
};
ParsedCommand parse_command(std::string_view payload);

// {"id":"<id>","result":<result>}
std::string result_reply(const RequestId& id, const nlohmann::json& result);
// {"id":"<id>","error":{"code":"<code>","message":"<message>"}}
std::string error_reply(const RequestId& id, std::string_view code, std::string_view message);

// Where the reply to a command of `box` goes: its MQTT 5 Response Topic when
// that is this box's own reply topic (a device must not be steered into
// publishing anywhere else), else {prefix}/{box}/response/{id}.
std::string reply_topic(const Topics& topics, const BoxId& box, const RequestId& id,
                        const std::optional<std::string>& response_topic);

}  // namespace boxgate::device
