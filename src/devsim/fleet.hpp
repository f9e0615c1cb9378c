#pragma once
// The behaviour of the simulated devices, without any MQTT: which commands are
// ignored, how long a box waits before replying, what it replies and on which
// topic. Pure logic, so the unit tests drive it with a seeded generator.
//
// Threads: a Fleet is immutable after construction and may be shared. The
// random generator passed to draw_*() / decide() belongs to the caller; each
// MQTT connection keeps its own (its callbacks run on one paho thread), so no
// lock is needed.

#include <atomic>
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

// What a device does with one command.
struct Decision {
  bool silent = false;                    // true: never answered (no reply, no delay)
  std::chrono::milliseconds delay{0};     // wait this long before publishing
  std::string topic;                      // where the reply goes
  std::string payload;                    // the reply JSON
};

class Fleet {
 public:
  Fleet(const FleetSettings& settings, Topics topics);

  // True for about silent_percent % of the draws.
  bool draw_silent(Rng& rng) const;
  // delay_ms (slow boxes: slow_delay_ms) plus a uniform 0..jitter_ms.
  std::chrono::milliseconds draw_delay(const BoxId& box, Rng& rng) const;
  // The reply topic for the configured mode. `response_topic` is the MQTT v5
  // Response Topic of the command, if any: honoured in topic mode when it is a
  // reply topic of the same box (a simulated device must not be steered into
  // publishing anywhere else); payload mode always uses {prefix}/{box}/response.
  std::string reply_topic(const BoxId& box, const RequestId& request,
                          std::optional<std::string_view> response_topic) const;
  // All of the above for one command.
  Decision decide(const BoxId& box, const RequestId& request, std::string_view command,
                  std::optional<std::string_view> response_topic, Rng& rng) const;

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

// What the fleet did, for the periodic stats line. Any thread may increment.
struct Counters {
  std::atomic<std::uint64_t> received{0};  // commands that reached a box
  std::atomic<std::uint64_t> replied{0};   // replies handed to paho
  std::atomic<std::uint64_t> silent{0};    // commands ignored on purpose
  std::atomic<std::uint64_t> failed{0};    // replies paho refused (disconnected, buffer full)
  std::atomic<std::uint64_t> rejected{0};  // messages on a topic that is not a command topic
  std::atomic<std::int64_t> delayed{0};    // replies waiting for their due time now
};

}  // namespace boxgate::devsim
