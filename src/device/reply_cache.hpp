#pragma once
// The ids of a box's recent commands and their replies, so a command seen
// again (a QoS 1 redelivery after a reconnect, a caller's retry with the same
// id) is never run twice: a finished one is answered again, one still
// running is ignored (its reply is on its way).
//
// Bounded per box: at most `max_entries` ids and `max_bytes` of stored
// replies (topic + payload); the oldest id goes first. A reply larger than
// the byte bound is not stored (its id is kept: a duplicate is then ignored,
// never run). Worst case per box: max_bytes + max_entries * ~200 bytes.
// Not thread-safe: one owner (the Device's loop thread).

#include <cstddef>
#include <list>
#include <optional>
#include <string>
#include <unordered_map>

namespace boxgate::device {

class ReplyCache {
 public:
  struct Stored {
    std::string topic;
    std::string payload;
    std::string correlation;  // MQTT 5 Correlation Data to send again
  };
  enum class Seen { new_command, running, answered, answered_not_kept };

  ReplyCache(std::size_t max_entries, std::size_t max_bytes) : max_entries_(max_entries), max_bytes_(max_bytes) {}

  // What is known of `id`; a new id is recorded as running.
  Seen admit(const std::string& id);
  // The stored reply of an answered id.
  const Stored* reply(const std::string& id) const;
  // `id` was answered with `reply` (kept when it fits the byte bound).
  void answered(const std::string& id, Stored reply);

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  struct Entry {
    bool done = false;
    std::optional<Stored> reply;
  };
  void evict();
  static std::size_t cost(const Stored& s) { return s.topic.size() + s.payload.size() + s.correlation.size(); }

  std::size_t max_entries_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::unordered_map<std::string, Entry> entries_;
  // Oldest first. A list, not a deque: an empty deque allocates, and a
  // device gateway keeps two caches for each of up to 100k boxes.
  std::list<std::string> order_;
};

}  // namespace boxgate::device
