#pragma once
// Client: one paho MQTT connection with jittered reconnect and resubscription.
//
// It uses paho's C API (MQTTAsync) directly: the C++ wrapper adds a token
// object, a mutex and a condition variable to every publish, about 5 us of
// CPU each (bench/mqtt_cost), for completion tracking boxgate does not use.
//
// Thread ownership: paho runs its own threads and calls every callback on its
// one callback thread; those callbacks never block: they update atomics, send
// subscriptions (asynchronous) and post to the EventLoop. publish() may be
// called from any thread and never waits for the network: while the client is
// not connected it returns false at once (nothing is buffered).
//
// Reconnect is ours, not paho's automatic one, so the delay can be jittered:
// min(mqtt_backoff_max_ms, 100 ms * 2^attempt), the upper half random.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxgate/config.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/readiness.hpp"

namespace boxgate::mqtt {

// MQTT v5 request/response properties of a command.
struct ResponseProperties {
  std::string response_topic;
  std::string correlation_data;
  std::uint32_t expiry_s = 0;
};

class Client {
 public:
  // Runs on paho's callback thread: must hand work off and return. The views
  // are valid during the call only.
  using MessageHandler = std::function<void(std::string_view topic, std::string_view payload)>;

  Client(EventLoop& loop, const MqttSettings& settings, const std::string& program, ops::Dependency& dependency);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Before start(): filters subscribed on every (re)connect, and their handler.
  void subscribe_on_connect(std::vector<std::string> filters, MessageHandler handler);
  void start();
  // Disconnects (waits up to `timeout` for in-flight work). Not from a paho callback.
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

  bool connected() const noexcept { return connected_.load(); }
  int version() const noexcept { return static_cast<int>(settings_.version); }

  // Queues one message; false when not connected or paho refused it.
  bool publish(const std::string& topic, std::string_view payload, int qos,
               const ResponseProperties* v5 = nullptr);

 private:
  struct Paho;  // the C API's callbacks
  void connect();
  void on_connected();
  void on_subscribed();
  void on_lost(const std::string& why);
  void schedule_reconnect();

  EventLoop& loop_;
  MqttSettings settings_;
  ops::Dependency& dependency_;
  void* handle_ = nullptr;  // MQTTAsync
  std::vector<std::string> filters_;
  MessageHandler handler_;
  std::atomic<bool> connected_{false};
  std::atomic<bool> stopping_{false};
  std::atomic<int> subacks_left_{0};  // subscriptions of this connection not yet granted
  bool ever_connected_ = false;  // paho callback thread only
  int attempt_ = 0;              // loop thread only
  Timer retry_timer_;            // loop thread only
};

}  // namespace boxgate::mqtt
