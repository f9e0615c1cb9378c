#include "device/outbox.hpp"

#include <algorithm>

namespace boxgate::device {

bool Outbox::push(Outgoing message, bool front) {
  const std::size_t more = message.bytes();
  if (message.kind != Outgoing::Kind::telemetry) {
    while (!fits(more) && evict_oldest_telemetry()) {
    }
  }
  if (!fits(more)) return false;
  bytes_ += more;
  if (front) {
    queue_.push_front(std::move(message));
  } else {
    queue_.push_back(std::move(message));
  }
  return true;
}

Outgoing Outbox::pop() {
  Outgoing message = std::move(queue_.front());
  queue_.pop_front();
  bytes_ -= message.bytes();
  return message;
}

bool Outbox::evict_oldest_telemetry() {
  auto it = std::find_if(queue_.begin(), queue_.end(),
                         [](const Outgoing& m) { return m.kind == Outgoing::Kind::telemetry; });
  if (it == queue_.end()) return false;
  bytes_ -= it->bytes();
  queue_.erase(it);
  ++evicted_;
  return true;
}

}  // namespace boxgate::device
