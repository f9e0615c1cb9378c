// json::scan against nlohmann, and command_payload's splice (the first fuzz
// target, from the json-hardening work).
//
// For every input: scan's verdict equals nlohmann::json::accept's, minus the
// two leniencies scan does not share (a leading BOM, a NUL ending the
// document); the reported "id" span holds exactly the value nlohmann reads;
// and a payload command_payload accepts is a JSON object whose only
// top-level "id" is the request id. Deep inputs are scanned like any other;
// nlohmann's DOM (whose comparison recurses) is only built for inputs within
// the gateway's depth limit.

#include <string>

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"
#include "commands/command_body.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

int json_scan(const std::uint8_t* data, std::size_t size) {
  const std::string doc(reinterpret_cast<const char*>(data), size);
  const json::ScanResult scan = json::scan(doc);
  const bool lenient_only = doc.find('\0') != std::string::npos || doc.rfind("\xEF\xBB\xBF", 0) == 0;
  check(scan.ok() == (nlohmann::json::accept(doc) && !lenient_only), "verdict differs from nlohmann");
  if (!scan.ok() || !json::scan(doc, gateway::kMaxCommandDepth).ok()) return 0;

  const auto dom = nlohmann::json::parse(doc);
  if (scan.id_count == 1) {
    const auto value = nlohmann::json::parse(doc.substr(scan.id.offset, scan.id.size), nullptr, false);
    check(value == dom["id"], "id span is not the value nlohmann reads");
    check(scan.id_string.has_value() == dom["id"].is_string(), "id_string presence");
    if (scan.id_string) check(*scan.id_string == dom["id"].get<std::string>(), "id_string decoding");
  }
  const auto command = gateway::command_payload(doc, *RequestId::parse("fuzz-1"));
  if (command.payload) {
    const auto out = nlohmann::json::parse(*command.payload, nullptr, false);
    check(out.is_object() && out["id"] == "fuzz-1", "spliced payload lacks our id");
    check(json::scan(*command.payload).id_count == 1, "spliced payload has not exactly one id");
  }
  return 0;
}

}  // namespace boxgate::fuzz
