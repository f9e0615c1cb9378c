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

Telemetry::Telemetry(const FleetSettings& settings, const Topics& topics, std::vector<BoxId> boxes,
                     std::vector<DeviceClient*> clients)
    : settings_(settings), clients_(std::move(clients)) {
  auto name = EventName::parse("telemetry");
  for (const BoxId& box : boxes) {
    event_topics_.push_back(topics.event_channel(box, *name));
    state_topics_.push_back(topics.state_key(box));
  }
}

Telemetry::~Telemetry() { stop(); }

void Telemetry::start() {
  if (settings_.event_rate == 0 && settings_.state_every_ms == 0) return;
  if (event_topics_.empty() || clients_.empty()) return;
  thread_ = std::thread([this] { run(); });
}

void Telemetry::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Telemetry::run() {
  using Clock = std::chrono::steady_clock;
  const auto start = Clock::now();
  const auto tick = std::chrono::milliseconds(5);
  std::uint64_t sent = 0;
  std::size_t next_box = 0;
  auto next_state = start + std::chrono::milliseconds(settings_.state_every_ms);
  std::uint64_t state_seq = 0;
  const auto bytes = static_cast<std::size_t>(settings_.event_bytes);
  while (!stop_) {
    auto now = Clock::now();
    if (settings_.event_rate > 0) {
      double elapsed = std::chrono::duration<double>(now - start).count();
      auto due = static_cast<std::uint64_t>(elapsed * static_cast<double>(settings_.event_rate));
      // Behind by more than a second (a stall): skip ahead instead of a burst.
      auto rate = static_cast<std::uint64_t>(settings_.event_rate);
      if (due > sent + rate) sent = due - rate;
      for (; sent < due && !stop_; ++sent) {
        std::size_t box = next_box++ % event_topics_.size();
        if (clients_[box % clients_.size()]->publish_telemetry(event_topics_[box],
                                                               telemetry_payload(sent, now_us(), bytes))) {
          ++events_;
        }
      }
    }
    if (settings_.state_every_ms > 0 && now >= next_state) {
      ++state_seq;
      for (std::size_t box = 0; box < state_topics_.size() && !stop_; ++box) {
        std::string state = "{\"seq\":" + std::to_string(state_seq) + ",\"sent_us\":" + std::to_string(now_us()) + "}";
        if (clients_[box % clients_.size()]->publish_telemetry(state_topics_[box], std::move(state))) ++states_;
      }
      next_state += std::chrono::milliseconds(settings_.state_every_ms);
      if (next_state < now) next_state = now + std::chrono::milliseconds(settings_.state_every_ms);
    }
    std::this_thread::sleep_for(tick);
  }
}

}  // namespace boxgate::devsim
