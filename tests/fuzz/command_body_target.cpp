// command_payload: the request id spliced into a caller's body. The first
// byte picks the id, the rest is the body. A body is accepted exactly when an
// independent reading (nlohmann's SAX parser, json_oracle.hpp) finds a JSON
// object nested at most 64 levels with at most one top-level "id"; then the
// payload is that object with "id" set to our id and every other byte kept as
// the caller sent it.

#include <string>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"
#include "commands/command_body.hpp"
#include "json_oracle.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

int command_body(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static const std::string ids[] = {"fuzz-1", "a", std::string(128, 'z'), "0:_.-x"};
  const RequestId id = *RequestId::parse(ids[data[0] % 4]);
  const std::string body(reinterpret_cast<const char*>(data + 1), size - 1);

  const gateway::CommandPayload command = gateway::command_payload(body, id);
  const JsonFacts facts = json_facts(body);
  const bool expected = facts.valid && facts.object && facts.depth <= gateway::kMaxCommandDepth && facts.id_count <= 1;
  check(command.payload.has_value() == expected, "accepted differs from the oracle");
  if (!command.payload) {
    check(!command.problem.empty(), "a refusal without a reason");
    return 0;
  }
  const std::string& payload = *command.payload;
  const std::string quoted = "\"" + id.str() + "\"";
  const json::ScanResult scan = json::scan(body);
  if (facts.id_count == 1) {
    // The caller's value replaced in place: the bytes around it unchanged.
    check(payload == body.substr(0, scan.id.offset) + quoted + body.substr(scan.id.offset + scan.id.size),
          "bytes around the replaced id changed");
  } else {
    check(payload.compare(0, scan.top_offset + 1, body, 0, scan.top_offset + 1) == 0, "bytes before the id changed");
    check(payload.substr(scan.top_offset + 1, 5 + quoted.size()) == "\"id\":" + quoted, "id not inserted first");
  }
  // Within the depth limit nlohmann's DOM is safe to build: the payload is the
  // body with "id" set, and nothing else changed.
  nlohmann::json in = nlohmann::json::parse(body);
  nlohmann::json out = nlohmann::json::parse(payload);
  check(out["id"] == id.str(), "payload id is not ours");
  in.erase("id");
  out.erase("id");
  check(in == out, "members other than id changed");
  check(json_facts(payload).id_count == 1, "payload has not exactly one id");
  return 0;
}

}  // namespace boxgate::fuzz
