#pragma once
// One queued command as its box's queue keeps it (the hash field under its
// request id, queue_scripts.hpp): everything a gateway needs to send it
// later -- the payload as it will be published, its timeout, its trace
// context -- and its record as accepted (what the queue listing shows).
// JSON, built and read with nlohmann (the payload is a JSON string in it).
//
// Pure values; any thread.

#include <chrono>
#include <optional>
#include <string>
#include <string_view>

#include "commands/command_record.hpp"

namespace boxgate::gateway {

struct QueueEntry {
  std::string payload;
  std::chrono::milliseconds timeout{0};
  std::string traceparent;
  CommandRecord record;  // state queued
};

std::string entry_text(const QueueEntry& entry);
// nullopt when `text` is not an entry (not JSON, fields missing, a bad record).
std::optional<QueueEntry> parse_entry(std::string_view text);

}  // namespace boxgate::gateway
