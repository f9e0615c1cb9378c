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
// Thread ownership: one thread of its own, started by start() and joined by
// stop() (or the destructor); it only calls DeviceClient::publish_telemetry,
// which paho allows from any thread. The pacing is by the clock: a slow
// tick catches up (bounded to one second's worth) rather than drifting.

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "boxgate/ids.hpp"
#include "boxgate/topics.hpp"
#include "devsim/device_client.hpp"
#include "devsim/settings.hpp"

namespace boxgate::devsim {

// The event payload of sequence number `seq` sent at `sent_us`, `bytes` long
// at least (exposed for tests).
std::string telemetry_payload(std::uint64_t seq, std::int64_t sent_us, std::size_t bytes);

class Telemetry {
 public:
  // box i is published through clients[i % clients.size()].
  Telemetry(const FleetSettings& settings, const Topics& topics, std::vector<BoxId> boxes,
            std::vector<DeviceClient*> clients);
  ~Telemetry();
  void start();
  void stop();
  std::uint64_t events_sent() const noexcept { return events_.load(); }
  std::uint64_t states_sent() const noexcept { return states_.load(); }

 private:
  void run();

  FleetSettings settings_;
  std::vector<std::string> event_topics_;
  std::vector<std::string> state_topics_;
  std::vector<DeviceClient*> clients_;
  std::atomic<bool> stop_{false};
  std::atomic<std::uint64_t> events_{0};
  std::atomic<std::uint64_t> states_{0};
  std::thread thread_;
};

}  // namespace boxgate::devsim
