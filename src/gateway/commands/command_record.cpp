#include "commands/command_record.hpp"

#include <charconv>
#include <chrono>

#include <nlohmann/json.hpp>

#include "boxgate/digest.hpp"
#include "boxgate/json_scan.hpp"

namespace boxgate::gateway {

const char* mode_name(CommandMode mode) { return mode == CommandMode::async ? "async" : "sync"; }

const char* state_name(CommandState state) {
  switch (state) {
    case CommandState::queued: return "queued";
    case CommandState::pending: return "pending";
    case CommandState::succeeded: return "succeeded";
    case CommandState::timed_out: return "timed_out";
    case CommandState::expired: return "expired";
    case CommandState::cancelled: return "cancelled";
  }
  return "pending";
}

std::optional<CommandState> state_of(std::string_view name) {
  for (CommandState state : kAllStates) {
    if (name == state_name(state)) return state;
  }
  return std::nullopt;
}

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
  text(R"(,"state":")", state_name(state));
  text(R"(,"mode":")", mode_name(mode));
  number(R"(,"accepted_ms":)", accepted_ms);
  number(R"(,"deadline_ms":)", deadline_ms);
  text(R"(,"gateway":")", gateway);
  if (delivered) out += *delivered ? R"(,"delivered":true)" : R"(,"delivered":false)";
  if (finished_ms) number(R"(,"finished_ms":)", *finished_ms);
  if (ttl_ms) number(R"(,"ttl_ms":)", *ttl_ms);
  if (sent_ms) number(R"(,"sent_ms":)", *sent_ms);
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
  auto known_state = state_of(*state);
  if (!known_state) return std::nullopt;
  r.box_id = *box;
  r.request_id = *id;
  r.body_sha256 = *hash;
  r.state = *known_state;
  r.mode = *mode == "async" ? CommandMode::async : CommandMode::sync;
  r.gateway = *gateway;
  r.accepted_ms = *accepted;
  r.deadline_ms = *deadline;
  if (auto it = doc.find("delivered"); it != doc.end() && it->is_boolean()) r.delivered = it->get<bool>();
  r.finished_ms = number("finished_ms");
  r.ttl_ms = number("ttl_ms");
  r.sent_ms = number("sent_ms");
  return r;
}

std::string body_sha256(std::string_view body) { return digest::to_hex(digest::sha256(body)); }

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

CommandStatus status_of(const CommandRecord& record, bool has_reply, std::int64_t now) {
  switch (record.state) {
    case CommandState::expired:
    case CommandState::cancelled: return {record.state, false};  // never sent: no reply can be its
    case CommandState::queued:
      if (record.ttl_ms && now > record.accepted_ms + *record.ttl_ms) return {CommandState::expired, false};
      return {CommandState::queued, false};
    case CommandState::pending:
    case CommandState::succeeded:
    case CommandState::timed_out: break;
  }
  if (has_reply) return {CommandState::succeeded, record.state == CommandState::timed_out};
  if (record.state == CommandState::succeeded) return {CommandState::succeeded, false};  // its reply expired
  if (record.state == CommandState::timed_out || now > record.deadline_ms) return {CommandState::timed_out, false};
  return {CommandState::pending, false};
}

RetryAnswer answer_retry(const std::optional<CommandRecord>& record, bool has_reply, std::string_view body_sha256,
                         CommandMode mode, std::int64_t now) {
  if (!record) return RetryAnswer::send;
  if (record->body_sha256 != body_sha256) return RetryAnswer::request_id_reused;
  if (has_reply) return RetryAnswer::replay;
  switch (status_of(*record, false, now).state) {
    case CommandState::queued:
    case CommandState::expired:
    case CommandState::cancelled:
      return mode == CommandMode::async ? RetryAnswer::accept_again : RetryAnswer::duplicate;
    case CommandState::pending:
      // An async retry of an async command is the same command, already on its way.
      return mode == CommandMode::async && record->mode == CommandMode::async ? RetryAnswer::accept_again
                                                                              : RetryAnswer::duplicate;
    case CommandState::succeeded:
      // Succeeded, but its reply expired: the command must not run again.
      return RetryAnswer::duplicate;
    case CommandState::timed_out: break;
  }
  return RetryAnswer::timed_out_before;
}

}  // namespace boxgate::gateway
