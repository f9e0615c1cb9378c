#include "commands/command_body.hpp"

#include "boxgate/json_scan.hpp"

namespace boxgate::gateway {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

std::string quoted(const RequestId& id) { return "\"" + id.str() + "\""; }  // ids need no JSON escaping

// Why a body that scanned with `error` is refused.
std::string invalid_json_problem(const json::ScanResult& scan) {
  if (scan.error == json::ScanError::too_deep) {
    return "The body nests objects and arrays deeper than " + std::to_string(kMaxCommandDepth) + " levels.";
  }
  return std::string("The body is not valid JSON: ") + json::describe(scan.error) + " at byte " +
         std::to_string(scan.error_offset) + ".";
}

// The caller's "id" value replaced by ours; every other byte as sent.
std::string replace_id(std::string_view body, json::Span value, const RequestId& id) {
  std::string out;
  out.reserve(body.size() - value.size + id.str().size() + 2);
  out.append(body.substr(0, value.offset)).append(quoted(id)).append(body.substr(value.offset + value.size));
  return out;
}

// "id" inserted as the first member, right after the opening brace.
std::string insert_id(std::string_view body, std::size_t open, const RequestId& id) {
  std::size_t next = open + 1;
  while (is_space(body[next])) ++next;  // a valid object has its '}' ahead
  bool empty = body[next] == '}';
  std::string out;
  out.reserve(body.size() + id.str().size() + 8);
  out.append(body.substr(0, open + 1)).append("\"id\":").append(quoted(id));
  if (!empty) out.push_back(',');
  out.append(body.substr(open + 1));
  return out;
}

}  // namespace

CommandPayload command_payload(std::string_view body, const RequestId& id) {
  json::ScanResult scan = json::scan(body, kMaxCommandDepth);
  if (!scan.ok()) return {std::nullopt, invalid_json_problem(scan)};
  if (scan.top != json::Kind::object) return {std::nullopt, "The body must be a JSON object."};
  if (scan.id_count > 1) {
    return {std::nullopt, "The body has more than one top-level \"id\"; the gateway sets exactly one."};
  }
  if (scan.id_count == 1) return {replace_id(body, scan.id, id), {}};
  return {insert_id(body, scan.top_offset, id), {}};
}

}  // namespace boxgate::gateway
