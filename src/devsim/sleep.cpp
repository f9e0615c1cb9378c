#include "devsim/sleep.hpp"

#include <algorithm>

#include "boxgate/logging.hpp"

namespace boxgate::devsim {

namespace {
// Each connection's offline and DISCONNECT, as at devsim's own stop.
constexpr auto kLeaveBudget = std::chrono::milliseconds(2000);
// How often the closing connections are looked at: Device has no callback
// for a finished stop (it ends inside libmosquitto's write call).
constexpr auto kAsleepPoll = std::chrono::milliseconds(10);

std::int64_t elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count();
}
}  // namespace

SleepCycle::SleepCycle(EventLoop& loop, const FleetSettings& settings, std::vector<device::Device*> devices,
                       Rng::result_type seed)
    : settings_(settings),
      devices_(std::move(devices)),
      rng_(seed),
      sleep_timer_(loop, [this] { fall_asleep(); }),
      asleep_poll_(loop, [this] { check_asleep(); }),
      wake_timer_(loop, [this] { resume_due(); }) {
  for (const device::Device* device : devices_) boxes_ += device->boxes().size();
  awake_.assign(devices_.size(), false);
}

void SleepCycle::arm() {
  if (settings_.sleep_after_ms > 0) sleep_timer_.start(std::chrono::milliseconds(settings_.sleep_after_ms));
}

void SleepCycle::cancel() {
  sleep_timer_.cancel();
  asleep_poll_.cancel();
  wake_timer_.cancel();
  waking_ = false;
}

void SleepCycle::fall_asleep() {
  log::get("devsim")->info("fleet going to sleep: {} connections announce {} boxes offline", devices_.size(), boxes_);
  for (device::Device* device : devices_) device->stop(kLeaveBudget);
  // Bounded: every stop ends within kLeaveBudget.
  asleep_poll_.start(kAsleepPoll, /*repeat=*/true);
}

void SleepCycle::check_asleep() {
  if (!std::all_of(devices_.begin(), devices_.end(), [](const device::Device* d) { return d->stopped(); })) return;
  asleep_poll_.cancel();
  // Tests and benchmarks wait for this exact line.
  log::get("devsim")->info("fleet asleep: {} boxes offline", boxes_);
  schedule_wakes();
}

void SleepCycle::schedule_wakes() {
  wake_started_ = std::chrono::steady_clock::now() + std::chrono::milliseconds(settings_.sleep_for_ms);
  std::uniform_int_distribution<std::int64_t> at(0, settings_.wake_window_ms);
  wakes_.clear();
  for (std::size_t i = 0; i < devices_.size(); ++i) {
    wakes_.emplace_back(wake_started_ + std::chrono::milliseconds(at(rng_)), i);
  }
  std::sort(wakes_.begin(), wakes_.end());
  next_wake_ = 0;
  waking_ = true;
  wake_timer_.start(std::chrono::milliseconds(settings_.sleep_for_ms));
}

void SleepCycle::resume_due() {
  auto now = std::chrono::steady_clock::now() + kTimerSlack;
  for (; next_wake_ < wakes_.size() && wakes_[next_wake_].first <= now; ++next_wake_) {
    device::Device& device = *devices_[wakes_[next_wake_].second];
    // Cannot fail: every stop had finished before the schedule was made.
    if (!device.resume()) log::get("devsim")->warn("client {} could not resume", device.client_id());
  }
  if (next_wake_ == wakes_.size()) return;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(wakes_[next_wake_].first -
                                                                    std::chrono::steady_clock::now());
  wake_timer_.start(std::max(left, std::chrono::milliseconds(0)));
}

void SleepCycle::connection_up(std::size_t index) {
  if (!waking_ || awake_[index]) return;
  awake_[index] = true;
  if (++awake_count_ < devices_.size()) return;
  waking_ = false;
  // Tests and benchmarks wait for this exact line.
  log::get("devsim")->info("fleet awake: {} boxes online in {} ms", boxes_, elapsed_ms(wake_started_));
}

}  // namespace boxgate::devsim
