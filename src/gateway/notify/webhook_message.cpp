#include "notify/webhook_message.hpp"

#include <charconv>
#include <ctime>

#include <nlohmann/json.hpp>

#include "boxgate/digest.hpp"
#include "boxgate/json_scan.hpp"

namespace boxgate::gateway {

namespace {

std::string iso8601(std::int64_t ms) {
  std::time_t s = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&s, &tm);
  char buf[40];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  char out[48];
  std::snprintf(out, sizeof out, "%s.%03dZ", buf, static_cast<int>(ms % 1000));
  return out;
}

// A JSON string of arbitrary device bytes (invalid UTF-8 replaced).
std::string json_string(std::string_view bytes) {
  return nlohmann::json(std::string(bytes)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// `payload` verbatim when it is a JSON document (checked iteratively: no
// recursion on device input), else as a JSON string.
std::string json_or_string(std::string_view payload) {
  return json::scan(payload).ok() ? std::string(payload) : json_string(payload);
}

}  // namespace

std::int64_t stream_id_ms(std::string_view id) {
  std::int64_t ms = 0;
  auto dash = id.find('-');
  auto part = id.substr(0, dash);
  auto [end, ec] = std::from_chars(part.data(), part.data() + part.size(), ms);
  if (ec != std::errc() || end != part.data() + part.size()) return 0;
  return ms;
}

std::optional<std::string> webhook_kind(WebhookSource source, const redis::StoredEvent& entry) {
  switch (source) {
    case WebhookSource::commands: return "command." + entry.name;
    case WebhookSource::presence:
      if (entry.name == "online" || entry.name == "offline") return "device." + entry.name;
      return std::nullopt;
    case WebhookSource::events: return "event." + entry.name;
    case WebhookSource::replay: return entry.name;
  }
  return std::nullopt;
}

WebhookMessage webhook_message(WebhookSource source, const redis::StoredEvent& entry, std::string kind) {
  WebhookMessage m;
  m.id = std::string(source_name(source)) + "-" + entry.id;
  m.written_ms = stream_id_ms(entry.id);
  m.box = entry.box;
  std::string data;
  if (source == WebhookSource::events) {
    data = R"({"box":)" + json_string(entry.box) + R"(,"name":)" + json_string(entry.name) +
           R"(,"payload":)" + json_or_string(entry.payload) + R"(,"received_ms":)" +
           (entry.received_ms.empty() ? std::string("null") : json_or_string(entry.received_ms)) + "}";
  } else {
    data = json_or_string(entry.payload);  // written by the daemons: JSON
  }
  m.body = R"({"type":)" + json_string(kind) + R"(,"timestamp":")" + iso8601(m.written_ms) + R"(","stream":")" +
           source_name(source) + R"(","stream_id":)" + json_string(entry.id) + R"(,"data":)" + data + "}";
  m.kind = std::move(kind);
  return m;
}

std::string webhook_signature(std::string_view key, std::string_view id, std::int64_t timestamp_s,
                              std::string_view body) {
  std::string signed_content;
  signed_content.reserve(id.size() + body.size() + 24);
  signed_content.append(id).append(".").append(std::to_string(timestamp_s)).append(".").append(body);
  return "v1," + digest::base64(digest::hmac_sha256(key, signed_content));
}

}  // namespace boxgate::gateway
