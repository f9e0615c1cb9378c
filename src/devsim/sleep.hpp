#pragma once
// Sleep: the whole fleet goes visibly offline for a while, then comes back
// in a burst -- for benchmarks of what waits for a box to return (commands
// queued while it is offline).
//
// sleep_after_ms after arm() (the fleet is up for the first time) every
// connection is stop()ped: its boxes announce `offline` (retained, QoS 1,
// the PUBACKs awaited) and it DISCONNECTs, so even boxes sharing a
// connection (no will) show offline. Once every connection is closed:
// "fleet asleep: N boxes offline". They stay away sleep_for_ms; then each
// connection resume()s at a random moment within wake_window_ms and its
// boxes announce `online` as after any connect. When the last is up again:
// "fleet awake: N boxes online in X ms", X counted from the window's start.
// Once per run. Sessions are persistent or not as `persistent` says.
//
// Threads: the loop thread only (Timers on devsim's EventLoop), like the
// Devices it drives; the Simulator owns both and outlives neither.

#include <chrono>
#include <cstddef>
#include <utility>
#include <vector>

#include "boxgate/device/device.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "devsim/fleet.hpp"
#include "devsim/settings.hpp"

namespace boxgate::devsim {

class SleepCycle {
 public:
  SleepCycle(EventLoop& loop, const FleetSettings& settings, std::vector<device::Device*> devices,
             Rng::result_type seed);
  // The fleet is up for the first time: the countdown starts (off: nothing).
  void arm();
  // Connection `index` is ready, every box announced online: counted while
  // the fleet wakes.
  void connection_up(std::size_t index);
  // devsim stops: nothing more is scheduled (the Simulator stops the devices).
  void cancel();

 private:
  void fall_asleep();
  void check_asleep();
  void schedule_wakes();
  void resume_due();

  FleetSettings settings_;
  std::vector<device::Device*> devices_;
  std::size_t boxes_ = 0;
  Rng rng_;
  Timer sleep_timer_;  // sleep_after_ms
  Timer asleep_poll_;  // until every connection is closed
  Timer wake_timer_;   // the next connection due to resume
  // The wake schedule, earliest first, and how far it has got.
  std::vector<std::pair<std::chrono::steady_clock::time_point, std::size_t>> wakes_;
  std::size_t next_wake_ = 0;
  std::chrono::steady_clock::time_point wake_started_{};
  bool waking_ = false;
  std::vector<bool> awake_;
  std::size_t awake_count_ = 0;
};

}  // namespace boxgate::devsim
