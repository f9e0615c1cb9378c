#include "devsim/device_client.hpp"

#include <dirent.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstdlib>

#include "boxgate/backoff.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::devsim {

namespace {

constexpr int kMaxBuffered = 100000;  // paho's default of 100 in flight throws under load

// A device answers a command by sending a PUBACK and then its reply; with
// Nagle on, the reply waits for the broker's delayed ACK of the PUBACK
// (~40 ms on Linux), which would make every simulated device 40 ms slow.
// paho exposes no socket option, so set TCP_NODELAY on this process's TCP
// sockets (devsim owns nothing else).
void disable_nagle_on_tcp_sockets() {
  DIR* dir = opendir("/proc/self/fd");
  if (!dir) return;
  while (dirent* entry = readdir(dir)) {
    int fd = std::atoi(entry->d_name);
    int type = 0;
    socklen_t len = sizeof type;
    if (fd <= 2 || getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM) continue;
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
  }
  closedir(dir);
}

int paho_version(std::int64_t version) { return version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1; }

mqtt::create_options make_create_options(const MqttSettings& mqtt) {
  mqtt::create_options options(paho_version(mqtt.version), kMaxBuffered);
  // A device that is offline does not queue replies: a publish while
  // disconnected fails at once and is counted, like a reply lost on the wire.
  options.set_send_while_disconnected(false);
  return options;
}

// The TLS schemes of mqtt_uri (boxgate/mqtt/uri.hpp; config.cpp checked the rest).
bool is_tls_uri(const std::string& uri) { return uri.rfind("ssl://", 0) == 0 || uri.rfind("mqtts://", 0) == 0; }

// TLS as the daemons do it: the broker's chain checked against mqtt_ca_file
// (empty: OpenSSL's default store) and its name against the URI's host;
// optionally a client certificate, its key and the key's passphrase.
mqtt::ssl_options make_ssl_options(const MqttSettings& settings) {
  mqtt::ssl_options_builder ssl;
  ssl.enable_server_cert_auth(true).verify(true);
  if (!settings.ca_file.empty()) ssl.trust_store(settings.ca_file);
  if (!settings.cert_file.empty()) ssl.key_store(settings.cert_file);
  if (!settings.key_file.empty()) ssl.private_key(settings.key_file);
  if (!settings.key_password.empty()) ssl.private_keypassword(settings.key_password);
  return ssl.finalize();
}

// The will is set only for a one-box connection: it names one topic, and an
// `offline` for one of several boxes would say nothing about the others.
mqtt::connect_options make_connect_options(const MqttSettings& mqtt, const Fleet& fleet,
                                           const std::vector<BoxId>& boxes) {
  mqtt::connect_options_builder builder;
  if (fleet.presence() && boxes.size() == 1) {
    builder.will(mqtt::will_options(fleet.topics().status_topic(boxes.front()), std::string("offline"), 1, true));
  }
  if (mqtt.version == 5) {
    builder.mqtt_version(MQTTVERSION_5).clean_start(true);
  } else {
    builder.mqtt_version(MQTTVERSION_3_1_1).clean_session(true);
  }
  builder.keep_alive_interval(std::chrono::seconds(mqtt.keepalive_s))
      .connect_timeout(std::chrono::seconds(5));
  // No automatic reconnect: paho C counts its intervals in whole seconds, so a
  // restarted broker found the fleet back only after 1-5 s. We reconnect
  // ourselves with the daemons' backoff (first attempt at once).
  if (!mqtt.username.empty()) builder.user_name(mqtt.username);
  if (!mqtt.password.empty()) builder.password(mqtt.password);
  if (is_tls_uri(mqtt.uri)) builder.ssl(make_ssl_options(mqtt));
  return builder.finalize();
}

std::int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void* round_context(std::uint64_t round) { return reinterpret_cast<void*>(static_cast<std::uintptr_t>(round)); }

}  // namespace

DeviceClient::DeviceClient(Shared shared, std::size_t index, std::string client_id, std::vector<BoxId> boxes)
    : shared_(std::move(shared)),
      index_(index),
      client_id_(std::move(client_id)),
      boxes_(std::move(boxes)),
      connect_options_(make_connect_options(shared_.mqtt, shared_.fleet, boxes_)),
      rng_(std::random_device{}() ^ (static_cast<std::uint64_t>(index) << 32)),
      client_(shared_.mqtt.uri, client_id_, make_create_options(shared_.mqtt)) {
  // All three run on the paho callback thread.
  client_.set_connected_handler([this](const std::string&) { on_connected(); });
  client_.set_connection_lost_handler([this](const std::string& cause) {
    log::get("mqtt")->warn("{}: connection lost ({}); reconnecting", client_id_,
                         cause.empty() ? "no reason given" : cause);
    retry_attempt_ = 0;
    retry_connect();
  });
  client_.set_message_callback([this](mqtt::const_message_ptr msg) { on_message(std::move(msg)); });
}

DeviceClient::~DeviceClient() {
  stopping_ = true;  // callbacks that still arrive return at once
  try {
    client_.disable_callbacks();
  } catch (const mqtt::exception&) {
    // paho refuses while a (re)connect is in progress; stopping_ covers it.
  }
}

void DeviceClient::start() { connect(); }

void DeviceClient::connect() {
  if (stopping_) return;
  try {
    client_.connect(connect_options_, nullptr, connect_listener_);
  } catch (const mqtt::exception& e) {
    // e.g. a connect already in progress; the listener's retry covers the rest.
    log::get("mqtt")->warn("{}: connect to {} refused: {}", client_id_, shared_.mqtt.uri, e.what());
  }
}

std::vector<mqtt::delivery_token_ptr> DeviceClient::announce_offline() {
  if (!shared_.fleet.presence() || !client_.is_connected()) return {};
  return publish_status(false);
}

std::vector<mqtt::delivery_token_ptr> DeviceClient::publish_status(bool online) {
  std::vector<mqtt::delivery_token_ptr> tokens;
  tokens.reserve(boxes_.size());
  const std::string payload = online ? "online" : "offline";
  for (const BoxId& box : boxes_) {
    try {
      tokens.push_back(client_.publish(shared_.fleet.topics().status_topic(box), payload.data(), payload.size(), 1,
                                       true));
    } catch (const mqtt::exception& e) {
      // Disconnected meanwhile: the next connect announces online again, and
      // a one-box connection's will says offline.
      warn_rate_limited("status of " + box.str() + " not sent: " + e.what());
    }
  }
  return tokens;
}

mqtt::token_ptr DeviceClient::disconnect() {
  stopping_ = true;
  if (!client_.is_connected()) return nullptr;
  try {
    return client_.disconnect();
  } catch (const mqtt::exception& e) {
    log::get("mqtt")->warn("{}: disconnect failed: {}", client_id_, e.what());
    return nullptr;
  }
}

void DeviceClient::ConnectListener::on_success(const mqtt::token&) {
  // on_connected() (the connected handler) does the work.
  owner_.retry_attempt_ = 0;
}

void DeviceClient::ConnectListener::on_failure(const mqtt::token&) { owner_.retry_connect(); }

void DeviceClient::retry_connect() {
  if (stopping_) return;
  auto delay = jittered_backoff(retry_attempt_++, shared_.mqtt.backoff_max_ms);
  log::get("mqtt")->warn("{}: cannot connect to {}; retrying in {} ms", client_id_, shared_.mqtt.uri,
                       delay.count());
  shared_.scheduler.schedule_after(delay, [this] { connect(); });
}

void DeviceClient::on_connected() {
  if (stopping_) return;
  disable_nagle_on_tcp_sockets();
  ++round_;
  acked_ = 0;
  log::get("mqtt")->info("{}: connected to {}; subscribing {} boxes", client_id_, shared_.mqtt.uri,
                       boxes_.size());
  const int qos = static_cast<int>(shared_.mqtt.qos);
  for (std::size_t first = 0; first < boxes_.size(); first += kSubscribeBatch) {
    std::size_t last = std::min(first + kSubscribeBatch, boxes_.size());
    std::vector<std::string> batch;
    batch.reserve(last - first);
    for (std::size_t i = first; i < last; ++i) {
      batch.push_back(shared_.fleet.topics().device_request_filter(boxes_[i]));
    }
    auto filters = mqtt::string_collection::create(std::move(batch));
    mqtt::iasync_client::qos_collection qos_list(last - first, qos);
    try {
      client_.subscribe(filters, qos_list, round_context(round_), subscribe_listener_);
    } catch (const mqtt::exception& e) {
      // The connection dropped under us; the next connect subscribes again.
      log::get("mqtt")->warn("{}: subscribe failed: {}", client_id_, e.what());
      return;
    }
  }
}

void DeviceClient::SubscribeListener::on_success(const mqtt::token& token) {
  // The SUBACK's per-filter reason codes are not checked: paho-mqtt-cpp 1.2.0
  // hands out garbage for them here (measured: values like -221265918 for a
  // granted QoS 1), so a broker that refuses a filter (an ACL) goes unnoticed
  // beyond "commands never arrive".
  std::size_t boxes = token.get_topics() ? token.get_topics()->size() : 0;
  auto round = static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(token.get_user_context()));
  owner_.on_batch_acked(round, boxes);
}

void DeviceClient::SubscribeListener::on_failure(const mqtt::token& token) {
  std::size_t boxes = token.get_topics() ? token.get_topics()->size() : 0;
  log::get("mqtt")->error("{}: subscribing {} boxes failed (code {})", owner_.client_id_, boxes,
                        token.get_return_code());
}

void DeviceClient::on_batch_acked(std::uint64_t round, std::size_t boxes) {
  if (round != round_) return;  // an answer from a connection that is gone
  acked_ += boxes;
  if (acked_ < boxes_.size()) return;
  bool first = !subscribed_once_;
  subscribed_once_ = true;
  // Online only now that commands can reach every box of this connection.
  if (shared_.fleet.presence()) publish_status(true);
  if (shared_.on_subscribed) shared_.on_subscribed(index_, first);
}

void DeviceClient::on_message(mqtt::const_message_ptr msg) {
  if (stopping_) return;
  const auto& topic = msg->get_topic();
  auto address = shared_.fleet.topics().parse_request_topic(topic);
  if (!address) {
    // Cannot happen with our filters unless the broker misbehaves; never answer it.
    ++shared_.counters.rejected;
    log::get("devsim")->debug("{}: ignoring message on '{}'", client_id_, topic);
    return;
  }
  ++shared_.counters.received;
  const BoxId& box = address->box;
  const RequestId& request = *address->request;

  std::optional<std::string> response_topic;
  std::optional<std::string> correlation;
  const auto& props = msg->get_properties();
  try {
    if (props.contains(mqtt::property::RESPONSE_TOPIC)) {
      response_topic = mqtt::get<std::string>(props, mqtt::property::RESPONSE_TOPIC);
    }
    if (props.contains(mqtt::property::CORRELATION_DATA)) {
      correlation = mqtt::get<std::string>(props, mqtt::property::CORRELATION_DATA);
    }
  } catch (const std::exception&) {
    // A malformed property is ignored: the reply still goes to the normal topic.
  }

  Decision decision = shared_.fleet.decide(box, request, msg->get_payload_str(), response_topic, rng_);
  if (decision.silent) {
    ++shared_.counters.silent;
    log::get("devsim")->debug("box {} req {}: staying silent", box.str(), request.str());
    return;
  }
  log::get("devsim")->debug("box {} req {}: replying in {} ms on {}", box.str(), request.str(),
                          decision.delay.count(), decision.topic);
  Reply reply{std::move(decision.topic), std::move(decision.payload), std::move(correlation)};
  if (decision.delay.count() == 0) {
    publish(reply);  // paho's publish is asynchronous: safe on its callback thread
    return;
  }
  ++shared_.counters.delayed;
  bool accepted = shared_.scheduler.schedule_after(decision.delay, [this, reply = std::move(reply)] {
    --shared_.counters.delayed;
    publish(reply);
  });
  if (!accepted) {
    // Shutting down: the reply is dropped like those still waiting (see main()).
    --shared_.counters.delayed;
    ++shared_.counters.failed;
  }
}

void DeviceClient::publish(const Reply& reply) {
  mqtt::message_ptr_builder builder;
  builder.topic(reply.topic).payload(reply.payload).qos(static_cast<int>(shared_.mqtt.qos)).retained(false);
  if (shared_.mqtt.version == 5 && reply.correlation) {
    mqtt::properties props;
    props.add(mqtt::property(mqtt::property::CORRELATION_DATA, *reply.correlation));
    builder.properties(std::move(props));
  }
  try {
    client_.publish(builder.finalize());
    ++shared_.counters.replied;
  } catch (const mqtt::exception& e) {
    ++shared_.counters.failed;
    warn_rate_limited(std::string("reply on ") + reply.topic + " not sent: " + e.what());
  }
}

bool DeviceClient::publish_telemetry(const std::string& topic, std::string payload) {
  try {
    client_.publish(topic, payload.data(), payload.size(), static_cast<int>(shared_.mqtt.qos), false);
    return true;
  } catch (const mqtt::exception& e) {
    warn_rate_limited("telemetry on " + topic + " not sent: " + e.what());
    return false;
  }
}

void DeviceClient::warn_rate_limited(const std::string& what) {
  // One line a second at most: a broker outage fails every reply at once.
  std::int64_t now = now_ms();
  std::int64_t last = last_warn_ms_.load();
  if (now - last < 1000 || !last_warn_ms_.compare_exchange_strong(last, now)) return;
  log::get("mqtt")->warn("{}: {} (further failures this second are only counted)", client_id_, what);
}

}  // namespace boxgate::devsim
