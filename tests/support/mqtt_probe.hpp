#pragma once
// An MQTT client for tests (paho-mqtt-cpp): plays a device or watches topics.
//
// Callers: any test thread. paho delivers messages on its own thread; the probe
// only appends them to a mutex-guarded list, so messages(), wait_for() and
// count() may be called from any thread. Connects with a clean start and
// automatic reconnect; after a reconnect it subscribes its filters again (from
// the connected handler, without waiting there). The destructor disconnects
// (1 s) and releases the paho client; no thread outlives the probe.
// Errors (connect/subscribe/publish failures, timeouts) throw std::runtime_error.
//
// @warning paho.mqtt.c 1.3.12 (Debian 12) needs ~2 s to connect every client
// after the first one in a process (upstream issue eclipse-paho/paho.mqtt.c#1430,
// fixed in 1.3.14). When a test needs several probes, construct them with
// wait=false and then call wait_connected() on each: they connect in parallel.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mqtt {
class async_client;
class token;
}

namespace boxgate::test {

using namespace std::chrono_literals;

struct MqttMessage {
  std::string topic;
  std::string payload;
  int qos = 0;
  bool retained = false;
  // MQTT v5 properties ("" / nullopt when absent or on a 3.1.1 connection).
  std::string response_topic;
  std::string correlation_data;
  std::optional<std::uint32_t> message_expiry_interval;
  std::vector<std::pair<std::string, std::string>> user_properties;
};

struct MqttPublishOptions {
  bool retained = false;
  // v5 only; ignored when empty/nullopt.
  std::string response_topic;
  std::string correlation_data;
  std::optional<std::uint32_t> message_expiry_interval;
  std::vector<std::pair<std::string, std::string>> user_properties;
};

// How a probe connects: the broker, who it is, and TLS.
struct MqttProbeOptions {
  std::string uri;        // "tcp://127.0.0.1:<port>" or "ssl://127.0.0.1:<port>"
  std::string client_id;  // empty: a unique one
  int mqtt_version = 5;   // 5 or 3 (3.1.1)
  bool wait = true;       // wait for CONNACK (5 s) in the constructor
  std::string username;   // empty: none
  std::string password;
  // TLS (ssl:// URIs): the CA to trust, and optionally a client certificate.
  std::string ca_file;
  std::string cert_file;
  std::string key_file;
  bool verify_host = true;  // the server certificate must name the host of `uri`
  // Off for a probe that is expected to be refused (bad credentials, wrong
  // CA): paho would otherwise keep retrying in the background.
  bool automatic_reconnect = true;
};

class MqttProbe {
 public:
  // Connects to tcp://127.0.0.1:<port> and, when `wait`, waits for CONNACK (5 s).
  // `mqtt_version` is 5 (default) or 3 (3.1.1). Empty client_id: a unique one.
  explicit MqttProbe(int port, std::string client_id = "", int mqtt_version = 5, bool wait = true);
  // Any broker, user or TLS setup; throws when the connection is refused
  // (the message names paho's reason) if options.wait.
  explicit MqttProbe(MqttProbeOptions options);
  ~MqttProbe();
  MqttProbe(const MqttProbe&) = delete;
  MqttProbe& operator=(const MqttProbe&) = delete;

  // Waits for the first CONNACK (after a constructor with wait=false); throws on failure.
  void wait_connected(std::chrono::milliseconds timeout = 5s);
  // Subscribes and waits for SUBACK (5 s); the filter is renewed on reconnect.
  void subscribe(const std::string& filter, int qos = 1);
  // Publishes and waits until the broker acknowledged it (QoS 1/2) or it was
  // written (QoS 0), 5 s at most.
  void publish(const std::string& topic, const std::string& payload, int qos = 1,
               const MqttPublishOptions& options = {});
  // Publishes (QoS 1) and returns the broker's verdict instead of throwing:
  // 0 when acknowledged, else the MQTT v5 reason code of the PUBACK (0x87
  // "not authorized" for an ACL refusal), -1 on any other failure.
  int publish_reason(const std::string& topic, const std::string& payload);

  // True once at least `count` messages have arrived in total.
  bool wait_for(std::size_t count, std::chrono::milliseconds timeout);
  std::vector<MqttMessage> messages() const;
  std::size_t count() const;
  void clear();
  // The messages received since the last take()/clear(), moved out: a
  // long-running observer drains them without copying the whole history
  // (count() and wait_for() then count from the take).
  std::vector<MqttMessage> take();
  bool connected() const;
  const std::string& client_id() const { return client_id_; }

 private:
  struct Filter {
    std::string filter;
    int qos;
  };

  std::string client_id_;
  int version_;
  std::string uri_;
  std::unique_ptr<mqtt::async_client> client_;
  std::shared_ptr<mqtt::token> connect_token_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<MqttMessage> messages_;
  std::vector<Filter> filters_;
};

// The topic a device answers the command on `request_topic` on
// ("<prefix>/<box>/request/<id>" -> "<prefix>/<box>/response/<id>"); "" when
// the topic has no request level.
std::string response_topic_for(const std::string& request_topic);

}  // namespace boxgate::test
