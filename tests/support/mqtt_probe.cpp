#include "support/mqtt_probe.hpp"

#include <unistd.h>

#include <atomic>
#include <mqtt/async_client.h>
#include <stdexcept>
#include <utility>

namespace boxgate::test {

namespace {

std::string unique_client_id() {
  static std::atomic<int> counter{0};
  return "probe-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

MqttMessage convert(const mqtt::const_message_ptr& msg) {
  MqttMessage out;
  out.topic = msg->get_topic();
  out.payload = msg->get_payload_str();
  out.qos = msg->get_qos();
  out.retained = msg->is_retained();
  const mqtt::properties& props = msg->get_properties();
  if (props.contains(mqtt::property::RESPONSE_TOPIC)) {
    out.response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
  }
  if (props.contains(mqtt::property::CORRELATION_DATA)) {
    out.correlation_data = mqtt::get<std::string>(props, mqtt::property::CORRELATION_DATA);
  }
  if (props.contains(mqtt::property::MESSAGE_EXPIRY_INTERVAL)) {
    out.message_expiry_interval = mqtt::get<std::uint32_t>(props, mqtt::property::MESSAGE_EXPIRY_INTERVAL);
  }
  for (std::size_t i = 0; i < props.count(mqtt::property::USER_PROPERTY); ++i) {
    auto pair = mqtt::get<mqtt::string_pair>(props, mqtt::property::USER_PROPERTY, i);
    out.user_properties.emplace_back(std::get<0>(pair), std::get<1>(pair));
  }
  return out;
}

}  // namespace

namespace {
MqttProbeOptions plain(int port, std::string client_id, int mqtt_version, bool wait) {
  MqttProbeOptions o;
  o.uri = "tcp://127.0.0.1:" + std::to_string(port);
  o.client_id = std::move(client_id);
  o.mqtt_version = mqtt_version;
  o.wait = wait;
  return o;
}
}  // namespace

MqttProbe::MqttProbe(int port, std::string client_id, int mqtt_version, bool wait)
    : MqttProbe(plain(port, std::move(client_id), mqtt_version, wait)) {}

MqttProbe::MqttProbe(MqttProbeOptions options)
    : client_id_(options.client_id.empty() ? unique_client_id() : std::move(options.client_id)),
      version_(options.mqtt_version),
      uri_(std::move(options.uri)) {
  const int version = version_ == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  client_ = std::make_unique<mqtt::async_client>(uri_, client_id_, mqtt::create_options(version, 100000));

  // Runs on paho's thread: only record, never block.
  client_->set_message_callback([this](mqtt::const_message_ptr msg) {
    MqttMessage m = convert(msg);
    std::lock_guard<std::mutex> lock(mu_);
    messages_.push_back(std::move(m));
    cv_.notify_all();
  });
  client_->set_connected_handler([this](const std::string& cause) {
    // paho also calls this for the first connect, possibly after connect()
    // returned and subscribe() ran: subscribing again then makes the broker
    // resend retained messages. Only a reconnect needs the filters renewed.
    if (cause != "automatic reconnect") return;
    std::vector<Filter> filters;
    {
      std::lock_guard<std::mutex> lock(mu_);
      filters = filters_;
    }
    for (const auto& f : filters) {
      try {
        client_->subscribe(f.filter, f.qos);  // not waited for: we are on paho's thread
      } catch (const std::exception&) {
      }
    }
  });

  auto builder = mqtt::connect_options_builder().mqtt_version(version).keep_alive_interval(std::chrono::seconds(10));
  if (options.automatic_reconnect) {
    builder.automatic_reconnect(std::chrono::milliseconds(100), std::chrono::seconds(1));
  }
  if (!options.username.empty()) builder.user_name(options.username);
  if (!options.password.empty()) builder.password(options.password);
  if (uri_.rfind("ssl://", 0) == 0) {
    auto ssl = mqtt::ssl_options_builder()
                   .trust_store(options.ca_file)
                   .enable_server_cert_auth(true)
                   .verify(options.verify_host);
    if (!options.cert_file.empty()) ssl.key_store(options.cert_file);
    if (!options.key_file.empty()) ssl.private_key(options.key_file);
    builder.ssl(ssl.finalize());
  }
  if (version == MQTTVERSION_5) {
    builder.clean_start(true);
  } else {
    builder.clean_session(true);
  }
  try {
    connect_token_ = client_->connect(builder.finalize());
  } catch (const std::exception& e) {
    throw std::runtime_error("MqttProbe " + client_id_ + ": connect to " + uri_ + " failed: " + e.what());
  }
  if (options.wait) wait_connected();
}

void MqttProbe::wait_connected(std::chrono::milliseconds timeout) {
  try {
    if (!connect_token_->wait_for(timeout)) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    throw std::runtime_error("MqttProbe " + client_id_ + ": connect to " + uri_ + " failed: " + e.what());
  }
}

MqttProbe::~MqttProbe() {
  try {
    if (client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(1));
  } catch (const std::exception&) {
  }
  try {
    client_->disable_callbacks();
  } catch (const std::exception&) {
  }
}

void MqttProbe::subscribe(const std::string& filter, int qos) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    filters_.push_back({filter, qos});
  }
  try {
    if (!client_->subscribe(filter, qos)->wait_for(std::chrono::seconds(5))) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    throw std::runtime_error("MqttProbe " + client_id_ + ": subscribe " + filter + " failed: " + e.what());
  }
}

void MqttProbe::publish(const std::string& topic, const std::string& payload, int qos,
                        const MqttPublishOptions& options) {
  auto msg = mqtt::make_message(topic, payload, qos, options.retained);
  if (version_ == 5) {
    mqtt::properties props;
    if (!options.response_topic.empty()) {
      props.add(mqtt::property(mqtt::property::RESPONSE_TOPIC, options.response_topic));
    }
    if (!options.correlation_data.empty()) {
      props.add(mqtt::property(mqtt::property::CORRELATION_DATA, options.correlation_data));
    }
    if (options.message_expiry_interval) {
      props.add(mqtt::property(mqtt::property::MESSAGE_EXPIRY_INTERVAL,
                               static_cast<int>(*options.message_expiry_interval)));
    }
    for (const auto& [name, value] : options.user_properties) {
      props.add(mqtt::property(mqtt::property::USER_PROPERTY, name, value));
    }
    msg->set_properties(props);
  }
  try {
    if (!client_->publish(msg)->wait_for(std::chrono::seconds(5))) throw std::runtime_error("timed out");
  } catch (const std::exception& e) {
    throw std::runtime_error("MqttProbe " + client_id_ + ": publish " + topic + " failed: " + e.what());
  }
}

int MqttProbe::publish_reason(const std::string& topic, const std::string& payload) {
  try {
    auto token = client_->publish(mqtt::make_message(topic, payload, 1, false));
    if (!token->wait_for(std::chrono::seconds(5))) return -1;
    return 0;
  } catch (const mqtt::exception& e) {
    return e.get_reason_code() >= 0x80 ? e.get_reason_code() : -1;
  } catch (const std::exception&) {
    return -1;
  }
}

bool MqttProbe::wait_for(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return messages_.size() >= count; });
}

std::vector<MqttMessage> MqttProbe::messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

std::size_t MqttProbe::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_.size();
}

void MqttProbe::clear() {
  std::lock_guard<std::mutex> lock(mu_);
  messages_.clear();
}

std::vector<MqttMessage> MqttProbe::take() {
  std::lock_guard<std::mutex> lock(mu_);
  return std::exchange(messages_, {});
}

bool MqttProbe::connected() const { return client_->is_connected(); }

std::string response_topic_for(const std::string& request_topic) {
  static const std::string kRequest = "/request/";
  auto at = request_topic.find(kRequest);
  if (at == std::string::npos) return "";
  return request_topic.substr(0, at) + "/response/" + request_topic.substr(at + kRequest.size());
}

}  // namespace boxgate::test
