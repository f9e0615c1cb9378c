#pragma once
// MessageService: one-way messages to a device (POST .../messages). Published
// at QoS 1 (or 2) on {prefix}/{box}/message/{id}; answered once the broker
// acknowledged the publish, or refused when it did not within ack_timeout.
// Nothing waits for the device.
//
// Thread ownership: loop thread only. Every send() completes exactly once,
// possibly from inside send().

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "boxgate/ids.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/topics.hpp"
#include "commands/command_ports.hpp"

namespace boxgate::gateway {

class MessageService {
 public:
  enum class Result { acknowledged, not_acknowledged, mqtt_unavailable, too_many, shutting_down };
  using Done = std::function<void(Result)>;

  struct Settings {
    int qos;  // at least 1: the answer is the broker's acknowledgement
    std::chrono::milliseconds ack_timeout;
    std::size_t max_in_flight;
  };

  MessageService(EventLoop& loop, const Topics& topics, Settings settings, CommandPublisher& publisher,
                 ops::Metrics& metrics);
  ~MessageService();

  void send(const BoxId& box, const RequestId& id, std::string payload, Done done);
  void start_draining() noexcept { draining_ = true; }
  std::size_t in_flight() const noexcept { return waiting_.size(); }

 private:
  struct Waiting;
  void end(std::uint64_t seq, Result result);
  void count(Result result);

  EventLoop& loop_;
  const Topics& topics_;
  Settings settings_;
  CommandPublisher& publisher_;
  bool draining_ = false;
  std::uint64_t next_ = 1;
  std::unordered_map<std::uint64_t, std::unique_ptr<Waiting>> waiting_;
  ops::Counter* outcomes_[5];
};

const char* result_name(MessageService::Result result);

}  // namespace boxgate::gateway
