#include "boxgate/outcome_events.hpp"

#include <nlohmann/json.hpp>

namespace boxgate {

std::string outcome_payload(const OutcomeEvent& e) {
  // Ids are validated (ids.hpp), so dump() never meets invalid UTF-8 here.
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
  return j.dump();
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
