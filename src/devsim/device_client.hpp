#pragma once
// One MQTT connection of the simulated fleet, serving a share of its boxes.
//
// It connects (retrying until it succeeds), subscribes {prefix}/{box}/request/+
// for each of its boxes in batches, answers commands as the Fleet decides and
// resubscribes after every reconnect (the session is clean, so the broker
// forgets the subscriptions).
//
// Presence (when the fleet has it on): once every box is subscribed after a
// (re)connect, `online` is published retained (QoS 1) on each box's
// {prefix}/{box}/status, so it is announced only when commands can reach the
// box. An MQTT will covers one topic per connection, so only a connection
// serving exactly one box leaves `offline` (retained, QoS 1) as its will: an
// abrupt loss of that connection shows as offline. A connection serving more
// boxes goes offline only through a clean stop (announce_offline() before
// disconnect(), on SIGTERM/SIGINT); killed, its boxes stay `online`.
//
// Threads:
// - paho runs every callback (connected, connection lost, message, subscribe
//   and connect results) on its one callback thread; they never block: a
//   delayed reply or a connect retry is handed to the Scheduler.
// - the Scheduler's thread runs delayed publishes and connect retries.
// - main() calls start() and disconnect().
// paho's publish/subscribe/connect are asynchronous and may be called from any
// of these threads.

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <mqtt/async_client.h>

#include "boxgate/config.hpp"
#include "boxgate/ids.hpp"
#include "devsim/fleet.hpp"
#include "devsim/scheduler.hpp"

namespace boxgate::devsim {

class DeviceClient {
 public:
  // Called on the paho thread when every box of this client is subscribed
  // after a (re)connect; `first` is true for the first time only.
  using SubscribedHandler = std::function<void(std::size_t client_index, bool first)>;

  // Everything a client shares with the rest of the fleet; must outlive it.
  struct Shared {
    const Fleet& fleet;
    const MqttSettings& mqtt;
    Scheduler& scheduler;
    Counters& counters;
    SubscribedHandler on_subscribed;
  };

  // Boxes per SUBSCRIBE packet: large enough that 10k boxes need few round
  // trips, small enough to keep each packet a few tens of KiB.
  static constexpr std::size_t kSubscribeBatch = 500;

  DeviceClient(Shared shared, std::size_t index, std::string client_id, std::vector<BoxId> boxes);
  ~DeviceClient();
  DeviceClient(const DeviceClient&) = delete;
  DeviceClient& operator=(const DeviceClient&) = delete;

  // Starts connecting; returns at once. Throws mqtt::exception on a bad URI.
  void start();
  // Before disconnect() at a clean stop: publishes `offline` retained on
  // each box's status topic (presence on and connected; else nothing). Wait
  // on the tokens before disconnecting: a DISCONNECT discards the will, so
  // this is the only offline a multi-box connection ever sends.
  std::vector<mqtt::delivery_token_ptr> announce_offline();
  // Stops retrying and starts a disconnect; wait on the token (may be null
  // when the client never connected).
  mqtt::token_ptr disconnect();

  std::size_t box_count() const noexcept { return boxes_.size(); }
  // An event or state of one of its boxes (telemetry.hpp); any thread.
  // False when paho refused it (not connected, queue full).
  bool publish_telemetry(const std::string& topic, std::string payload);
  const std::string& client_id() const noexcept { return client_id_; }

 private:
  // A reply waiting to be published.
  struct Reply {
    std::string topic;
    std::string payload;
    std::optional<std::string> correlation;  // MQTT v5 Correlation Data to copy back
  };

  // paho's per-operation callbacks; both run on the paho callback thread.
  class ConnectListener : public mqtt::iaction_listener {
   public:
    explicit ConnectListener(DeviceClient& owner) : owner_(owner) {}
    void on_success(const mqtt::token&) override;
    void on_failure(const mqtt::token& token) override;

   private:
    DeviceClient& owner_;
  };
  class SubscribeListener : public mqtt::iaction_listener {
   public:
    explicit SubscribeListener(DeviceClient& owner) : owner_(owner) {}
    void on_success(const mqtt::token& token) override;
    void on_failure(const mqtt::token& token) override;

   private:
    DeviceClient& owner_;
  };

  void connect();                                  // any thread
  void retry_connect();                            // paho thread
  void on_connected();                             // paho thread
  void on_message(mqtt::const_message_ptr msg);    // paho thread
  void on_batch_acked(std::uint64_t round, std::size_t boxes);  // paho thread
  void publish(const Reply& reply);                // paho or scheduler thread
  // Retained QoS 1 status of every box; the tokens of those paho took.
  std::vector<mqtt::delivery_token_ptr> publish_status(bool online);  // paho or main thread
  void warn_rate_limited(const std::string& what); // any thread

  Shared shared_;
  std::size_t index_;
  std::string client_id_;
  std::vector<BoxId> boxes_;
  mqtt::connect_options connect_options_;
  ConnectListener connect_listener_{*this};
  SubscribeListener subscribe_listener_{*this};

  Rng rng_;                          // paho thread only (decide() in on_message)
  std::uint64_t round_ = 0;          // paho thread only: bumped on every connect
  std::size_t acked_ = 0;            // paho thread only: boxes acked in round_
  bool subscribed_once_ = false;     // paho thread only
  int retry_attempt_ = 0;  // paho thread only
  std::atomic<bool> stopping_{false};
  std::atomic<std::int64_t> last_warn_ms_{0};
  // Last, so it is destroyed first: its callbacks use every member above.
  mqtt::async_client client_;
};

}  // namespace boxgate::devsim
