#pragma once
// The messages a Device has to send while it cannot (the connection is down,
// or the broker did not acknowledge them before it broke), in order.
//
// Bounded by `max_messages` and `max_bytes` (topic + payload + correlation).
// Overflow policy: a new event or state is refused when the outbox is full;
// a reply or a status first evicts the oldest queued event or state (the
// next one supersedes it anyway) and is refused only when replies and
// statuses alone fill it. Worst case: max_bytes plus ~100 bytes a message.
// Not thread-safe: one owner (the Device's loop thread).

#include <cstddef>
#include <deque>
#include <string>

namespace boxgate::device {

struct Outgoing {
  enum class Kind { reply, status, telemetry };
  Kind kind = Kind::telemetry;
  std::string topic;
  std::string payload;
  std::string correlation;  // MQTT 5 Correlation Data (replies)
  std::string traceparent;  // MQTT 5 user property (events)
  bool retain = false;
  std::size_t bytes() const noexcept { return topic.size() + payload.size() + correlation.size(); }
};

class Outbox {
 public:
  Outbox(std::size_t max_messages, std::size_t max_bytes) : max_messages_(max_messages), max_bytes_(max_bytes) {}

  // False when refused (see the policy above). `front`: put it first (a
  // message sent before, whose PUBACK never came).
  bool push(Outgoing message, bool front = false);
  bool empty() const noexcept { return queue_.empty(); }
  Outgoing pop();
  std::size_t size() const noexcept { return queue_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t evicted() const noexcept { return evicted_; }

 private:
  bool fits(std::size_t more) const noexcept {
    return queue_.size() + 1 <= max_messages_ && bytes_ + more <= max_bytes_;
  }
  bool evict_oldest_telemetry();

  std::size_t max_messages_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::size_t evicted_ = 0;
  std::deque<Outgoing> queue_;
};

}  // namespace boxgate::device
