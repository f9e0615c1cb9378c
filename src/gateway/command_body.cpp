#include "command_body.hpp"

#include <nlohmann/json.hpp>

namespace boxgate::gateway {

std::optional<std::string> command_payload(std::string_view body, const RequestId& id) {
  nlohmann::json command = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (!command.is_object()) return std::nullopt;  // also the "discarded" value of a parse error
  command["id"] = id.str();
  return command.dump();
}

}  // namespace boxgate::gateway
