#pragma once
// GraceQueue: new commands that arrived while a dependency (Redis or MQTT) is
// reconnecting, held until it is back or their grace ends -- a blip of a
// fraction of a second then costs callers a short wait, not a 503.
//
// Thread ownership: loop thread only. Each held command has its own timer;
// when it fires, on_expired gets the command back (the owner answers it or,
// if the dependency is back by then, sends it on). take() and take_all()
// hand commands back without calling on_expired. Nothing is sent from here.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "boxgate/loop/event_loop.hpp"
#include "commands/command_request.hpp"

namespace boxgate::gateway {

class GraceQueue {
 public:
  struct Held {
    CommandRequest request;
    Completion done;
    std::chrono::steady_clock::time_point since;
  };
  using Expired = std::function<void(Held&&)>;

  GraceQueue(EventLoop& loop, Expired on_expired) : loop_(loop), on_expired_(std::move(on_expired)) {}

  // Holds the command for `wait`, charged `bytes`. The id must not be held.
  void hold(CommandRequest&& request, Completion&& done, std::chrono::milliseconds wait, std::size_t bytes);
  bool holds(const std::string& id) const { return held_.count(id) != 0; }
  std::optional<Held> take(const std::string& id);
  std::vector<Held> take_all();

  std::size_t size() const noexcept { return held_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }

 private:
  struct Slot {
    Held held;
    std::size_t bytes;
    std::unique_ptr<Timer> timer;
  };
  Held release(std::unordered_map<std::string, Slot>::iterator it);

  EventLoop& loop_;
  Expired on_expired_;
  std::unordered_map<std::string, Slot> held_;
  std::size_t bytes_ = 0;
};

}  // namespace boxgate::gateway
