#include "command_record.hpp"

#include <chrono>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "auth.hpp"
#include "boxgate/json_scan.hpp"

namespace boxgate::gateway {

const char* mode_name(CommandMode mode) { return mode == CommandMode::async ? "async" : "sync"; }

std::string CommandRecord::to_json() const {
  // Built by hand: every string is a validated id, a hex digest or a state
  // name (nothing to escape), and this runs once or twice per command.
  std::string out = fmt::format(
      R"({{"box_id":"{}","request_id":"{}","body_sha256":"{}","state":"{}","mode":"{}","accepted_ms":{},)"
      R"("deadline_ms":{},"gateway":"{}")",
      box_id, request_id, body_sha256, state, mode_name(mode), accepted_ms, deadline_ms, gateway);
  if (delivered) out += fmt::format(R"(,"delivered":{})", *delivered);
  if (finished_ms) out += fmt::format(R"(,"finished_ms":{})", *finished_ms);
  out += '}';
  return out;
}

std::optional<CommandRecord> parse_record(std::string_view json) {
  // Scanned first (iterative, depth-bounded), so the DOM never meets deep input.
  if (json.size() > kMaxRecordBytes || json::scan(json, 2).error != json::ScanError::none) return std::nullopt;
  auto doc = nlohmann::json::parse(json, nullptr, false);
  if (!doc.is_object()) return std::nullopt;
  auto text = [&doc](const char* key) -> std::optional<std::string> {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_string()) return std::nullopt;
    return it->get<std::string>();
  };
  auto number = [&doc](const char* key) -> std::optional<std::int64_t> {
    auto it = doc.find(key);
    if (it == doc.end() || !it->is_number_integer()) return std::nullopt;
    return it->get<std::int64_t>();
  };
  CommandRecord r;
  auto box = text("box_id"), id = text("request_id"), hash = text("body_sha256"), state = text("state"),
       mode = text("mode"), gateway = text("gateway");
  auto accepted = number("accepted_ms"), deadline = number("deadline_ms");
  if (!box || !id || !hash || !state || !mode || !gateway || !accepted || !deadline) return std::nullopt;
  if (*state != "pending" && *state != "succeeded" && *state != "timed_out") return std::nullopt;
  r.box_id = *box;
  r.request_id = *id;
  r.body_sha256 = *hash;
  r.state = *state;
  r.mode = *mode == "async" ? CommandMode::async : CommandMode::sync;
  r.gateway = *gateway;
  r.accepted_ms = *accepted;
  r.deadline_ms = *deadline;
  if (auto it = doc.find("delivered"); it != doc.end() && it->is_boolean()) r.delivered = it->get<bool>();
  r.finished_ms = number("finished_ms");
  return r;
}

std::string body_sha256(std::string_view body) { return to_hex(sha256(body)); }

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

CommandStatus status_of(const CommandRecord& record, bool has_reply, std::int64_t now) {
  if (has_reply) return {"succeeded", record.state == "timed_out"};
  if (record.state == "succeeded") return {"succeeded", false};  // its reply expired
  if (record.state == "timed_out" || now > record.deadline_ms) return {"timed_out", false};
  return {"pending", false};
}

}  // namespace boxgate::gateway
