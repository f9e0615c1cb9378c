#include "devsim/fleet.hpp"

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"

namespace boxgate::devsim {

namespace {

// ordered_json keeps "id" first and the caller's params in their own order,
// which makes the replies easy to read in demos and diff in tests.
using Json = nlohmann::ordered_json;

// Replacing invalid UTF-8 keeps dump() from throwing on odd input echoed back
// (a parse error message can quote the offending bytes).
std::string dump(const Json& doc) { return doc.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A simulated device is as careful as a real one should be: nlohmann parses
// without recursion, but copying and dumping a value recurse once per level,
// so commands are scanned first and refused when deeper than the gateway
// lets through (its kMaxCommandDepth; devsim does not link the gateway).
constexpr std::size_t kMaxCommandDepth = 64;

// Why `command` is refused, or "" when it may be parsed.
std::string scan_problem(std::string_view command) {
  json::ScanResult scan = json::scan(command, kMaxCommandDepth);
  if (scan.ok()) return {};
  if (scan.error == json::ScanError::too_deep) {
    return "command is not JSON: nested deeper than " + std::to_string(kMaxCommandDepth) + " levels";
  }
  return std::string("command is not JSON: ") + json::describe(scan.error) + " at byte " +
         std::to_string(scan.error_offset);
}

Json field_or_null(const Json& command, const char* name) {
  if (!command.is_object()) return nullptr;
  auto it = command.find(name);
  return it == command.end() ? Json(nullptr) : *it;
}

}  // namespace

std::string build_reply(const BoxId& box, const RequestId& request, std::string_view command) {
  Json reply;
  reply["id"] = request.str();
  if (std::string problem = scan_problem(command); !problem.empty()) {
    reply["error"] = {{"code", "bad_json"}, {"message", problem}};
    return dump(reply);
  }
  Json parsed;
  try {  // not expected to throw once scanned; kept as the last line of defence
    parsed = Json::parse(command.begin(), command.end());
  } catch (const Json::exception& e) {
    reply["error"] = {{"code", "bad_json"}, {"message", std::string("command is not JSON: ") + e.what()}};
    return dump(reply);
  }
  reply["result"] = {{"box", box.str()},
                     {"echo", field_or_null(parsed, "params")},
                     {"method", field_or_null(parsed, "method")}};
  return dump(reply);
}

Fleet::Fleet(const FleetSettings& settings, Topics topics)
    : topics_(std::move(topics)),
      mode_(parse_reply_mode(settings.reply_mode)),
      delay_ms_(settings.delay_ms),
      jitter_ms_(settings.jitter_ms),
      silent_percent_(settings.silent_percent),
      slow_delay_ms_(settings.slow_delay_ms),
      presence_(settings.presence),
      slow_boxes_(settings.slow_boxes.begin(), settings.slow_boxes.end()) {}

bool Fleet::draw_silent(Rng& rng) const {
  if (silent_percent_ <= 0) return false;
  if (silent_percent_ >= 100) return true;
  std::uniform_int_distribution<std::int64_t> percent(0, 99);
  return percent(rng) < silent_percent_;
}

std::chrono::milliseconds Fleet::draw_delay(const BoxId& box, Rng& rng) const {
  std::int64_t base = slow_boxes_.count(box.str()) ? slow_delay_ms_ : delay_ms_;
  std::int64_t extra = 0;
  if (jitter_ms_ > 0) extra = std::uniform_int_distribution<std::int64_t>(0, jitter_ms_)(rng);
  return std::chrono::milliseconds(base + extra);
}

}  // namespace boxgate::devsim
