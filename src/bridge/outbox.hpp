#pragma once
// Outbox: the bounded queue between the MQTT message handler and Redis, shared
// by the reply and the event forwarders. Items wait here while Redis is away
// or busy; a window bounds what is handed to Redis at a time; an item whose
// command was lost (the connection broke before Redis answered) goes back to
// the head and leaves again after the reconnect.
//
// Thread ownership: loop thread only (the forwarder's), like its gauges.
//
// Bounds, in bytes: every item counts item.cost() from push() until its
// answer released it (queued or in flight). push() refuses an item that would
// take the outbox past max_items items or max_bytes bytes. The window bounds
// hiredis's copies of the commands in flight: at most window items and
// window_bytes bytes, but one item always goes, however large.
//
// Item: movable, with `std::size_t cost() const`.

#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <utility>

#include "boxgate/ops/metrics.hpp"

namespace boxgate::bridge {

struct OutboxLimits {
  std::size_t max_items;  // queued + in flight
  std::size_t max_bytes;  // cost of the items queued + in flight
  // In flight to Redis, and their cost (one item always goes): enough to keep
  // the pipeline full, small enough to bound hiredis's copy of a slow Redis's
  // backlog.
  std::size_t window = 4096;
  std::size_t window_bytes = 32 << 20;
};

template <class Item>
class Outbox {
 public:
  // queued: items waiting (not yet handed to Redis); held: bytes queued or in flight.
  Outbox(OutboxLimits limits, ops::Gauge& queued, ops::Gauge& held) : limits_(limits), queued_(queued), held_(held) {}

  // Keeps the item, or returns false (and keeps nothing) when it does not fit.
  bool push(Item item) {
    std::size_t cost = item.cost();
    if (queue_.size() + in_flight_ >= limits_.max_items || cost > limits_.max_bytes - held_bytes_) return false;
    held_bytes_ += cost;
    queue_.push_back(std::move(item));
    update_gauges();
    return true;
  }

  // While `up` and the window has room, hands the head item to
  // send(std::shared_ptr<Item>) -> bool. Shared, so the answer's callback and
  // a retry hold one copy. An item send() refuses (not connected) goes back to
  // the head and ends the flush; an accepted one is in flight until answered().
  template <class Send>
  void flush(bool up, Send&& send) {
    while (up && in_flight_ < limits_.window && !queue_.empty()) {
      std::size_t cost = queue_.front().cost();
      if (in_flight_ > 0 && in_flight_bytes_ + cost > limits_.window_bytes) break;
      auto item = std::make_shared<Item>(std::move(queue_.front()));
      queue_.pop_front();
      const bool was_returned = returned_ > 0;
      if (was_returned) --returned_;
      ++in_flight_;
      in_flight_bytes_ += cost;
      if (!send(item)) {
        // Back where it was, at the head.
        --in_flight_;
        in_flight_bytes_ -= cost;
        queue_.push_front(std::move(*item));
        if (was_returned) ++returned_;
        break;
      }
    }
    update_gauges();
  }

  // An item in flight got its answer. again: its command was lost, so it goes
  // back to the head (moved out of `item`), behind the items that came back
  // before it: a broken connection fails its commands oldest first, and they
  // leave again in that order; else it is released.
  void answered(Item& item, bool again) {
    std::size_t cost = item.cost();
    --in_flight_;
    in_flight_bytes_ -= cost;
    if (again) {
      queue_.insert(queue_.begin() + static_cast<std::ptrdiff_t>(returned_++), std::move(item));
    } else {
      held_bytes_ -= cost;
    }
    update_gauges();
  }

  // Items queued or on their way to Redis.
  std::size_t backlog() const noexcept { return queue_.size() + in_flight_; }

  // At exit: empties the queue and returns what was waiting in it, for the
  // forwarder to count and log. Items in flight stay in flight.
  std::deque<Item> abandon() {
    std::deque<Item> left;
    left.swap(queue_);
    returned_ = 0;
    for (const Item& item : left) held_bytes_ -= item.cost();
    update_gauges();
    return left;
  }

 private:
  void update_gauges() {
    queued_.set(static_cast<std::int64_t>(queue_.size()));
    held_.set(static_cast<std::int64_t>(held_bytes_));
  }

  OutboxLimits limits_;
  std::deque<Item> queue_;
  std::size_t returned_ = 0;  // items at the head of queue_ that came back from Redis
  std::size_t held_bytes_ = 0;  // cost of the items queued or in flight
  std::size_t in_flight_ = 0;
  std::size_t in_flight_bytes_ = 0;
  ops::Gauge& queued_;
  ops::Gauge& held_;
};

}  // namespace boxgate::bridge
