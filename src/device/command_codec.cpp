#include "device/command_codec.hpp"

#include "boxgate/json_scan.hpp"

namespace boxgate::device {

namespace {

// Invalid UTF-8 in a handler's result (or quoted from a bad payload) is
// replaced, so dump() never throws.
std::string dump(const nlohmann::ordered_json& doc) {
  return doc.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

}  // namespace

ParsedCommand parse_command(std::string_view payload) {
  ParsedCommand command;
  json::ScanResult scan = json::scan(payload, kMaxCommandDepth);
  if (!scan.ok()) {
    command.problem = scan.error == json::ScanError::too_deep
                          ? "command is not JSON: nested deeper than " + std::to_string(kMaxCommandDepth) + " levels"
                          : std::string("command is not JSON: ") + json::describe(scan.error) + " at byte " +
                                std::to_string(scan.error_offset);
    return command;
  }
  nlohmann::json doc;
  try {  // not expected to throw once scanned: the last line of defence
    doc = nlohmann::json::parse(payload.begin(), payload.end());
  } catch (const nlohmann::json::exception& e) {
    command.problem = std::string("command is not JSON: ") + e.what();
    return command;
  }
  if (!doc.is_object()) return command;
  if (auto method = doc.find("method"); method != doc.end() && method->is_string()) {
    command.method = method->get<std::string>();
  }
  if (auto params = doc.find("params"); params != doc.end()) command.params = std::move(*params);
  return command;
}

std::string result_reply(const RequestId& id, const nlohmann::json& result) {
  nlohmann::ordered_json reply;
  reply["id"] = id.str();
  reply["result"] = result;
  return dump(reply);
}

std::string error_reply(const RequestId& id, std::string_view code, std::string_view message) {
  nlohmann::ordered_json reply;
  reply["id"] = id.str();
  reply["error"] = {{"code", std::string(code)}, {"message", std::string(message)}};
  return dump(reply);
}

std::string reply_topic(const Topics& topics, const BoxId& box, const RequestId& id,
                        const std::optional<std::string>& response_topic) {
  if (response_topic) {
    auto address = topics.parse_reply_topic(*response_topic);
    if (address && address->box == box) return *response_topic;
  }
  return topics.response_channel(box, id);
}

}  // namespace boxgate::device
