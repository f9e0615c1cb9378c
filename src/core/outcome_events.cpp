#include "boxgate/outcome_events.hpp"

#include <nlohmann/json.hpp>

namespace boxgate {

namespace {

// Characters of ids (ids.hpp) and of the fixed words: nothing to escape in JSON.
bool plain(std::string_view s) {
  for (char c : s) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '.' ||
              c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

void field(std::string& out, std::string_view name, std::string_view value) {
  out.append(",\"").append(name).append("\":\"").append(value).append("\"");
}

void field(std::string& out, std::string_view name, std::int64_t value) {
  out.append(",\"").append(name).append("\":").append(std::to_string(value));
}

void field(std::string& out, std::string_view name, bool value) {
  out.append(",\"").append(name).append("\":").append(value ? "true" : "false");
}

// The general path, for a field that is not plain (never from the daemons).
std::string payload_by_json(const OutcomeEvent& e) {
  nlohmann::ordered_json j;
  j["request_id"] = e.request_id;
  j["box"] = e.box;
  j["state"] = e.state;
  j["at_ms"] = e.at_ms;
  if (e.mode) j["mode"] = *e.mode;
  if (e.delivered) j["delivered"] = *e.delivered;
  if (e.late) j["late"] = *e.late;
  if (e.reply_bytes) j["reply_bytes"] = *e.reply_bytes;
  if (e.gateway) j["gateway"] = *e.gateway;
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string outcome_payload(const OutcomeEvent& e) {
  // Every command's state change builds one: appended, not through a JSON
  // document (that cost the bridge half again its instructions per reply).
  if (!plain(e.box) || !plain(e.request_id) || !plain(e.state) || (e.mode && !plain(*e.mode)) ||
      (e.gateway && !plain(*e.gateway))) {
    return payload_by_json(e);
  }
  std::string out;
  out.reserve(96 + e.box.size() + e.request_id.size() + (e.gateway ? e.gateway->size() : 0));
  out.append("{\"request_id\":\"").append(e.request_id).append("\"");
  field(out, "box", e.box);
  field(out, "state", e.state);
  field(out, "at_ms", e.at_ms);
  if (e.mode) field(out, "mode", *e.mode);
  if (e.delivered) field(out, "delivered", *e.delivered);
  if (e.late) field(out, "late", *e.late);
  if (e.reply_bytes) field(out, "reply_bytes", *e.reply_bytes);
  if (e.gateway) field(out, "gateway", *e.gateway);
  out.push_back('}');
  return out;
}

std::string presence_payload(std::string_view box, bool online, std::int64_t at_ms) {
  nlohmann::ordered_json j;
  j["box"] = box;
  j["online"] = online;
  j["at_ms"] = at_ms;
  return j.dump();
}

StreamAppender::StreamAppender(redis::Commands& redis, std::string stream, std::int64_t maxlen)
    : redis_(redis), stream_(std::move(stream)), maxlen_text_(std::to_string(maxlen)), maxlen_(maxlen) {}

void StreamAppender::add(std::string_view box, std::string_view name, std::string_view payload, std::int64_t at_ms) {
  if (maxlen_ <= 0) return;
  // MAXLEN ~: Redis trims whole nodes (about 100 entries), so the trim costs
  // next to nothing per entry and the stream holds at most maxlen + a node.
  std::string at = std::to_string(at_ms);
  redis_.run({"XADD", stream_, "MAXLEN", "~", maxlen_text_, "*", "box", box, "name", name, "payload", payload,
              "received_ms", at},
             {});
}

}  // namespace boxgate
