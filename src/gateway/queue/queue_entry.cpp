#include "queue/queue_entry.hpp"

#include <nlohmann/json.hpp>

#include "boxgate/json_scan.hpp"

namespace boxgate::gateway {

std::string entry_text(const QueueEntry& entry) {
  nlohmann::json doc = {{"payload", entry.payload},
                        {"timeout_ms", entry.timeout.count()},
                        {"traceparent", entry.traceparent},
                        {"record", entry.record.to_json()}};
  // The payload passed the body checks (valid UTF-8), so dump cannot throw.
  return doc.dump();
}

std::optional<QueueEntry> parse_entry(std::string_view text) {
  // Two levels: the entry and its strings. Scanned first (iterative), so
  // the DOM never meets deep input, whoever wrote the key.
  if (json::scan(text, 2).error != json::ScanError::none) return std::nullopt;
  auto doc = nlohmann::json::parse(text, nullptr, false);
  if (!doc.is_object()) return std::nullopt;
  auto payload = doc.find("payload");
  auto timeout = doc.find("timeout_ms");
  auto trace = doc.find("traceparent");
  auto record = doc.find("record");
  if (payload == doc.end() || !payload->is_string() || timeout == doc.end() || !timeout->is_number_integer() ||
      trace == doc.end() || !trace->is_string() || record == doc.end() || !record->is_string()) {
    return std::nullopt;
  }
  auto parsed = parse_record(record->get_ref<const std::string&>());
  if (!parsed) return std::nullopt;
  return QueueEntry{payload->get<std::string>(), std::chrono::milliseconds(timeout->get<std::int64_t>()),
                    trace->get<std::string>(), std::move(*parsed)};
}

}  // namespace boxgate::gateway
