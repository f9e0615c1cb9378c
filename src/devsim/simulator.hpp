#pragma once
// The simulated fleet: its boxes spread over `clients` device::Device
// connections (libboxgate-device), all on one EventLoop, answering commands as
// the Fleet decides (at once, after a delay, or never), publishing telemetry
// and, when asked, dropping connections in reconnect storms, sending the
// whole fleet to sleep once (sleep.hpp) and logging every command a box ran
// (command_log.hpp).
//
// Threads: the loop thread only, like the Devices it owns. main() builds it,
// calls start(), and stop() from a signal handler on the loop.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "boxgate/device/device.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "devsim/command_log.hpp"
#include "devsim/fleet.hpp"
#include "devsim/settings.hpp"
#include "devsim/sleep.hpp"
#include "devsim/telemetry.hpp"

namespace boxgate::devsim {

// What the fleet did, for the periodic stats line.
struct Totals {
  std::uint64_t received = 0;  // commands that reached a box
  std::uint64_t replied = 0;   // replies the broker acknowledged
  std::uint64_t silent = 0;    // commands ignored on purpose
  std::uint64_t failed = 0;    // replies the device library dropped (outbox full, refused)
  std::uint64_t rejected = 0;  // messages on a topic that is not a command of a served box, or not JSON
  std::uint64_t duplicates = 0;
  std::uint64_t expired = 0;
  bool operator==(const Totals&) const = default;
};

class Simulator {
 public:
  // Throws std::invalid_argument (from device::Device) on unusable settings,
  // ConfigError("command_log") when the command log cannot be opened.
  Simulator(EventLoop& loop, const DevsimConfig& config, std::vector<BoxId> boxes);
  void start();
  // Replies not yet due are dropped (a device switched off answers nothing);
  // every box is announced offline, then each connection DISCONNECTs.
  void stop(std::chrono::milliseconds timeout);
  bool stopped() const;

  Totals totals() const;
  std::size_t delayed() const noexcept { return delayed_.size(); }
  const Telemetry& telemetry() const noexcept { return *telemetry_; }

 private:
  void on_command(std::size_t index, const device::Command& command, device::Reply reply);
  void on_connection(std::size_t index, bool up);
  void release_due();
  void storm();
  std::string client_id(std::size_t index, const std::vector<BoxId>& boxes) const;

  EventLoop& loop_;
  DevsimConfig config_;
  Fleet fleet_;
  Rng rng_;
  std::vector<std::unique_ptr<device::Device>> devices_;
  std::vector<bool> ever_up_;
  std::vector<std::int64_t> online_ms_;  // per connection: its boxes' last `online` (wall clock)
  std::size_t ready_ = 0;
  std::size_t box_count_ = 0;
  std::uint64_t received_ = 0;
  std::uint64_t silent_ = 0;
  // Replies waiting for their due time, earliest first; one timer.
  std::multimap<std::chrono::steady_clock::time_point, std::pair<device::Reply, std::string>> delayed_;
  Timer delay_timer_;
  Timer storm_timer_;
  std::unique_ptr<Telemetry> telemetry_;
  std::unique_ptr<SleepCycle> sleep_;
  std::unique_ptr<CommandLog> command_log_;  // null when command_log is empty
};

}  // namespace boxgate::devsim
