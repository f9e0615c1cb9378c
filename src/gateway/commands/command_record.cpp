#include "commands/command_record.hpp"

#include <charconv>
#include <chrono>

#include <nlohmann/json.hpp>

#include "boxgate/digest.hpp"
#include "boxgate/json_scan.hpp"

namespace boxgate::gateway {

const char* mode_name(CommandMode mode) { return mode == CommandMode::async ? "async" : "sync"; }

std::string CommandRecord::to_json() const {
  // Appended by hand (no formatter): every string is a validated id, a hex
  // digest or a state name, so nothing needs escaping, and this runs twice
  // per command.
  std::string out;
  out.reserve(256 + box_id.size() + request_id.size() + gateway.size());
  auto text = [&out](const char* key, std::string_view value) {
    out += key;
    out += value;
    out += '"';
  };
  auto number = [&out](const char* key, std::int64_t value) {
    char digits[24];
    out += key;
    out.append(digits, std::to_chars(digits, digits + sizeof digits, value).ptr);
  };
  text(R"({"box_id":")", box_id);
  text(R"(,"request_id":")", request_id);
  text(R"(,"body_sha256":")", body_sha256);
  text(R"(,"state":")", state);
  text(R"(,"mode":")", mode_name(mode));
  number(R"(,"accepted_ms":)", accepted_ms);
  number(R"(,"deadline_ms":)", deadline_ms);
  text(R"(,"gateway":")", gateway);
  if (delivered) out += *delivered ? R"(,"delivered":true)" : R"(,"delivered":false)";
  if (finished_ms) number(R"(,"finished_ms":)", *finished_ms);
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

std::string body_sha256(std::string_view body) { return digest::to_hex(digest::sha256(body)); }

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
