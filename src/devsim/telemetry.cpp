#include "devsim/telemetry.hpp"

#include <algorithm>
#include <chrono>

namespace boxgate::devsim {

namespace {
std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}
}  // namespace

std::string telemetry_payload(std::uint64_t seq, std::int64_t sent_us, std::size_t bytes) {
  std::string head = "{\"seq\":" + std::to_string(seq) + ",\"sent_us\":" + std::to_string(sent_us);
  constexpr std::size_t kPadFrame = 10;  // ,"pad":"" and }
  if (bytes <= head.size() + 1 + kPadFrame) return head + "}";
  return head + ",\"pad\":\"" + std::string(bytes - head.size() - kPadFrame, 'x') + "\"}";
}

Telemetry::Telemetry(EventLoop& loop, const FleetSettings& settings, std::vector<BoxId> boxes,
                     std::vector<device::Device*> devices)
    : settings_(settings), boxes_(std::move(boxes)), devices_(std::move(devices)), tick_(loop, [this] { tick(); }) {}

void Telemetry::start() {
  if (settings_.event_rate == 0 && settings_.state_every_ms == 0) return;
  if (boxes_.empty() || devices_.empty()) return;
  start_ = std::chrono::steady_clock::now();
  next_state_ = start_ + std::chrono::milliseconds(settings_.state_every_ms);
  tick_.start(std::chrono::milliseconds(5), /*repeat=*/true);
}

void Telemetry::tick() {
  auto now = std::chrono::steady_clock::now();
  if (settings_.event_rate > 0) send_events(now);
  if (settings_.state_every_ms > 0 && now >= next_state_) send_states(now);
}

void Telemetry::send_events(std::chrono::steady_clock::time_point now) {
  static const EventName kName = *EventName::parse("telemetry");
  double elapsed = std::chrono::duration<double>(now - start_).count();
  auto due = static_cast<std::uint64_t>(elapsed * static_cast<double>(settings_.event_rate));
  // Behind by more than a second (a stall): skip ahead instead of a burst.
  auto rate = static_cast<std::uint64_t>(settings_.event_rate);
  if (due > sent_ + rate) sent_ = due - rate;
  const auto bytes = static_cast<std::size_t>(settings_.event_bytes);
  for (; sent_ < due; ++sent_) {
    std::size_t box = next_box_++ % boxes_.size();
    if (devices_[box % devices_.size()]->publish_event(boxes_[box], kName.str(),
                                                       telemetry_payload(sent_, now_us(), bytes))) {
      ++events_;
    }
  }
}

void Telemetry::send_states(std::chrono::steady_clock::time_point now) {
  ++state_seq_;
  for (std::size_t box = 0; box < boxes_.size(); ++box) {
    std::string state = "{\"seq\":" + std::to_string(state_seq_) + ",\"sent_us\":" + std::to_string(now_us()) + "}";
    if (devices_[box % devices_.size()]->publish_state(boxes_[box], std::move(state))) ++states_;
  }
  next_state_ += std::chrono::milliseconds(settings_.state_every_ms);
  if (next_state_ < now) next_state_ = now + std::chrono::milliseconds(settings_.state_every_ms);
}

}  // namespace boxgate::devsim
