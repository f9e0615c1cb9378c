#pragma once
// Telemetry: devsim's boxes publish events and state on a schedule, so
// demos, tests and benchmarks have data-plane traffic (docs/events.md).
//
// Events: `event_rate` per second over the whole fleet, round robin over the
// boxes, on {prefix}/{box}/event/telemetry; payload a JSON object
// {"seq":N,"sent_us":<system clock, us>,"pad":"..."} padded to event_bytes
// (never shorter than the object without pad), so a consumer can measure
// the latency from the device. State: every `state_every_ms` each box
// publishes {"seq":N,"sent_us":...} on {prefix}/{box}/state.
//
// Thread ownership: the loop thread (a 5 ms Timer on devsim's EventLoop,
// publishing through the device::Device that serves each box). The pacing
// is by the clock: a slow tick catches up (bounded to one second's worth)
// rather than drifting.

#include <chrono>
#include <cstdint>
#include <vector>

#include "boxgate/device/device.hpp"
#include "boxgate/ids.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "devsim/settings.hpp"

namespace boxgate::devsim {

// The event payload of sequence number `seq` sent at `sent_us`, `bytes` long
// at least (exposed for tests).
std::string telemetry_payload(std::uint64_t seq, std::int64_t sent_us, std::size_t bytes);

class Telemetry {
 public:
  // box i is published through devices[i % devices.size()] (the fleet's shares).
  Telemetry(EventLoop& loop, const FleetSettings& settings, std::vector<BoxId> boxes,
            std::vector<device::Device*> devices);
  void start();
  void stop() { tick_.cancel(); }
  std::uint64_t events_sent() const noexcept { return events_; }
  std::uint64_t states_sent() const noexcept { return states_; }

 private:
  void tick();
  void send_events(std::chrono::steady_clock::time_point now);
  void send_states(std::chrono::steady_clock::time_point now);

  FleetSettings settings_;
  std::vector<BoxId> boxes_;
  std::vector<device::Device*> devices_;
  Timer tick_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::steady_clock::time_point next_state_;
  std::uint64_t sent_ = 0;  // events due so far (sent or refused)
  std::size_t next_box_ = 0;
  std::uint64_t state_seq_ = 0;
  std::uint64_t events_ = 0;
  std::uint64_t states_ = 0;
};

}  // namespace boxgate::devsim
