#pragma once
// The behaviour of the simulated devices, without any MQTT: which commands are
// ignored, how long a box waits before replying and what it replies. Pure
// logic, so the unit tests drive it with a seeded generator.
//
// Which topic a reply goes to is the device library's business
// (device::Settings::id_in_topic follows reply_mode).
//
// Threads: a Fleet is immutable after construction and may be shared. The
// random generator passed to draw_*() belongs to the caller.

#include <chrono>
#include <cstdint>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_set>

#include "boxgate/ids.hpp"
#include "boxgate/topics.hpp"
#include "devsim/settings.hpp"

namespace boxgate::devsim {

using Rng = std::mt19937_64;

// The reply to one command. Never throws and never recurses on the payload: a
// payload that is not JSON, or nests objects/arrays deeper than 64 levels (the
// gateway's limit), gets the error reply
// {"id":req,"error":{"code":"bad_json","message":...}}; otherwise
// {"id":req,"result":{"box":box,"echo":<params or null>,"method":<method or null>}}.
// The id is always the request id of the topic (the device's view of the
// command), whatever the payload's own "id" says.
std::string build_reply(const BoxId& box, const RequestId& request, std::string_view command);

class Fleet {
 public:
  Fleet(const FleetSettings& settings, Topics topics);

  // True for about silent_percent % of the draws.
  bool draw_silent(Rng& rng) const;
  // delay_ms (slow boxes: slow_delay_ms) plus a uniform 0..jitter_ms.
  std::chrono::milliseconds draw_delay(const BoxId& box, Rng& rng) const;
  ReplyMode mode() const noexcept { return mode_; }
  bool presence() const noexcept { return presence_; }
  const Topics& topics() const noexcept { return topics_; }

 private:
  Topics topics_;
  ReplyMode mode_;
  std::int64_t delay_ms_;
  std::int64_t jitter_ms_;
  std::int64_t silent_percent_;
  std::int64_t slow_delay_ms_;
  bool presence_;
  std::unordered_set<std::string> slow_boxes_;
};

}  // namespace boxgate::devsim
