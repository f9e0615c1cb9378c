// The Device: one connection serving its boxes (include/boxgate/device/device.hpp).
// Everything here runs on the loop thread; the mqtt::Client calls back into
// DeviceCore from inside libmosquitto's read and write calls.

#include "boxgate/device/device.hpp"

#include <mosquitto.h>

#include <algorithm>
#include <stdexcept>
#include <unordered_map>
#include <utility>

#include "boxgate/config.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/mqtt/client.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/ops/readiness.hpp"
#include "boxgate/topics.hpp"
#include "device/command_codec.hpp"
#include "device/outbox.hpp"
#include "device/reply_cache.hpp"

namespace boxgate::device {

namespace {

MqttSettings mqtt_settings(const Settings& s) {
  MqttSettings m;
  m.uri = s.uri;
  m.client_id = s.client_id.empty() ? s.boxes.front().str() : s.client_id;
  m.username = s.username;
  m.password = s.password;
  m.version = s.version == 5 ? 5 : 3;
  m.qos = 1;
  m.backoff_max_ms = s.backoff_max_ms;
  m.keepalive_s = s.keepalive_s;
  m.ca_file = s.ca_file;
  m.cert_file = s.cert_file;
  m.key_file = s.key_file;
  // What the broker has not acknowledged yet is bounded like the outbox.
  m.max_unacked = static_cast<std::int64_t>(s.max_outbox_messages);
  m.max_unacked_bytes = static_cast<std::int64_t>(s.max_outbox_bytes);
  return m;
}

void check(const Settings& s) {
  if (s.boxes.empty()) throw std::invalid_argument("device: no box to serve");
  if (!is_valid_prefix(s.prefix)) throw std::invalid_argument("device: invalid prefix '" + s.prefix + "'");
  if (s.max_outbox_messages == 0 || s.max_outbox_bytes == 0) throw std::invalid_argument("device: empty outbox");
}

}  // namespace

// What one served box keeps: the ids of its recent commands (with their
// replies) and of its recent one-way messages.
struct BoxState {
  ReplyCache commands;
  ReplyCache messages;
};

struct Reply::State {
  std::weak_ptr<DeviceCore> core;
  BoxId box;
  RequestId id;
  std::string topic;
  std::string correlation;
  bool answered = false;
};

// The Device's state, shared with its Replies through weak pointers so a
// Reply kept past its Device does nothing. Loop thread only.
struct DeviceCore : std::enable_shared_from_this<DeviceCore> {
  DeviceCore(EventLoop& loop, Settings s)
      : loop_(loop),
        settings(std::move(s)),
        topics(settings.prefix),
        readiness(metrics),
        dependency(readiness.dependency("mqtt")),
        outbox(settings.max_outbox_messages, settings.max_outbox_bytes),
        leave_timer(loop, [this] { disconnect(); }) {
    check(settings);
    for (const BoxId& box : settings.boxes) {
      auto [it, added] = boxes.try_emplace(box.str(), BoxState{ReplyCache(settings.reply_cache_per_box,
                                                                            settings.reply_cache_bytes_per_box),
                                                                ReplyCache(settings.reply_cache_per_box, 0)});
      if (!added) throw std::invalid_argument("device: box '" + box.str() + "' given twice");
    }
    MqttSettings mqtt = mqtt_settings(settings);
    client_id = mqtt.client_id;
    try {
      client = std::make_unique<mqtt::Client>(loop_, mqtt, "boxgate-device", dependency);
    } catch (const std::runtime_error& e) {
      throw std::invalid_argument(std::string("device: ") + e.what());
    }
  }

  void start();
  void on_mqtt_message(std::string_view topic, std::string_view payload);
  void on_command(const BoxId& box, const RequestId& id, std::string_view payload);
  void on_one_way(const BoxId& box, const RequestId& id, std::string_view payload);
  void on_box_topic(std::string_view topic, std::string_view payload);
  bool answer(Reply::State& state, std::string payload);
  bool send(Outgoing message);
  bool publish_now(Outgoing& message);
  void acknowledged(Outgoing message, bool ok);
  void flush();
  void on_ready();
  void announce(bool online);
  void leave(std::chrono::milliseconds timeout);
  void disconnect();

  EventLoop& loop_;
  Settings settings;
  Topics topics;
  ops::Metrics metrics;  // the mqtt::Client's dependency needs them; nobody scrapes
  ops::Readiness readiness;
  ops::Dependency& dependency;
  Outbox outbox;
  std::unordered_map<std::string, BoxState> boxes;
  Device::CommandHandler command_handler;
  Device::MessageHandler message_handler;
  Device::ConnectionHandler connection_handler;
  std::vector<std::pair<std::string, Device::TopicHandler>> box_topics;  // suffix -> handler
  std::string client_id;
  Stats stats;
  bool ready = false;
  bool stopping = false;
  log::RateLimit warnings;
  // Leaving (stop()): the `offline` statuses handed to the client whose
  // PUBACK has not come, and what ends the wait for them.
  std::size_t offline_unacked = 0;
  std::chrono::steady_clock::time_point leave_deadline;
  Timer leave_timer;
  std::unique_ptr<mqtt::Client> client;  // last: destroyed first, its callbacks use the above
};

void DeviceCore::start() {
  std::vector<std::string> filters;
  for (const BoxId& box : settings.boxes) {
    filters.push_back(topics.device_request_filter(box));
    filters.push_back(topics.device_message_filter(box));
    for (const auto& [suffix, handler] : box_topics) filters.push_back(settings.prefix + "/" + box.str() + "/" + suffix);
  }
  client->subscribe_on_connect(std::move(filters),
                               [this](std::string_view topic, std::string_view payload) { on_mqtt_message(topic, payload); });
  mqtt::Session session;
  session.clean = !settings.persistent;
  session.expiry_s = settings.persistent ? settings.session_expiry_s : 0;
  // A will names one topic: only a connection serving one box can leave one.
  if (settings.presence && settings.boxes.size() == 1) {
    session.will_topic = topics.status_topic(settings.boxes.front());
    session.will_payload = "offline";
  }
  client->set_session(std::move(session));
  client->on_ready([this](bool) { on_ready(); });
  dependency.set_down("connecting");
  readiness.on_change([this] {
    if (ready && !dependency.up()) {
      ready = false;
      if (connection_handler) connection_handler(false);
    }
  });
  client->start();
}

void DeviceCore::on_ready() {
  ++stats.connects;
  ready = true;
  if (settings.presence) announce(true);
  flush();
  if (connection_handler) connection_handler(true);
}

void DeviceCore::announce(bool online) {
  for (const BoxId& box : settings.boxes) {
    send(Outgoing{Outgoing::Kind::status, topics.status_topic(box), online ? "online" : "offline", {}, {}, true});
  }
}

void DeviceCore::leave(std::chrono::milliseconds timeout) {
  stopping = true;
  leave_deadline = std::chrono::steady_clock::now() + timeout;
  offline_unacked = 0;
  // Offline first: a clean DISCONNECT discards the will, so for a device
  // gateway these messages are the only offline its boxes ever send.
  if (settings.presence && ready) announce(false);
  ready = false;
  if (offline_unacked == 0) return disconnect();
  // The PUBACKs: beyond the broker's Receive Maximum libmosquitto holds
  // statuses back, and a DISCONNECT written now would lose them.
  leave_timer.start(timeout / 2);
}

void DeviceCore::disconnect() {
  leave_timer.cancel();
  // Statuses still unacknowledged fail with the connection: they must not
  // call this again (after a resume() it would stop the new connection).
  offline_unacked = 0;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(leave_deadline - std::chrono::steady_clock::now());
  client->stop(std::max(left, std::chrono::milliseconds(1)));
}

void DeviceCore::on_mqtt_message(std::string_view topic, std::string_view payload) {
  auto command = topics.parse_request_topic(topic);
  auto message = command ? std::nullopt : topics.parse_message_topic(topic);
  if ((command || message) && client->message_retained()) {
    // A retained command would run again at every subscribe: the gateway
    // never retains one, so whoever did is mistaken (docs/devices.md).
    ++stats.rejected;
    return;
  }
  if (command) return on_command(command->box, *command->request, payload);
  if (message) return on_one_way(message->box, *message->request, payload);
  on_box_topic(topic, payload);
}

void DeviceCore::on_command(const BoxId& box, const RequestId& id, std::string_view payload) {
  auto served = boxes.find(box.str());
  if (served == boxes.end()) {
    ++stats.rejected;
    return;
  }
  if (auto expiry = client->message_expiry(); expiry && *expiry == 0) {
    ++stats.expired;  // its caller has given up: running it now would surprise everyone
    return;
  }
  ReplyCache& cache = served->second.commands;
  switch (cache.admit(id.str())) {
    case ReplyCache::Seen::new_command: break;
    case ReplyCache::Seen::answered: {
      ++stats.duplicates;
      const ReplyCache::Stored* stored = cache.reply(id.str());
      send(Outgoing{Outgoing::Kind::reply, stored->topic, stored->payload, stored->correlation, {}, false});
      return;
    }
    case ReplyCache::Seen::running:
    case ReplyCache::Seen::answered_not_kept: ++stats.duplicates; return;
  }
  std::string topic = settings.id_in_topic ? reply_topic(topics, box, id, client->response_topic())
                                           : topics.response_topic_without_id(box);
  auto state = std::make_shared<Reply::State>(
      Reply::State{weak_from_this(), box, id, std::move(topic), client->correlation_data().value_or(""), false});
  Reply reply(state);
  ParsedCommand parsed = parse_command(payload);
  if (!parsed.problem.empty()) {
    ++stats.rejected;
    reply.error("bad_json", parsed.problem);
    return;
  }
  ++stats.commands;
  if (!command_handler) {
    reply.error("unknown_method", "this device takes no commands");
    return;
  }
  Command command{box, id, std::move(parsed.method), std::move(parsed.params), payload,
                  client->user_property("traceparent").value_or("")};
  try {
    command_handler(command, reply);
  } catch (const std::exception& e) {
    // A handler that throws still answers, so the caller is not left to time out.
    reply.error("device_error", e.what());
  }
}

void DeviceCore::on_one_way(const BoxId& box, const RequestId& id, std::string_view payload) {
  auto served = boxes.find(box.str());
  if (served == boxes.end()) {
    ++stats.rejected;
    return;
  }
  if (served->second.messages.admit(id.str()) != ReplyCache::Seen::new_command) {
    ++stats.duplicates;  // a retry of the sender, or a QoS 1 redelivery
    return;
  }
  served->second.messages.answered(id.str(), {});
  ++stats.messages;
  if (!message_handler) return;
  try {
    message_handler(Message{box, id, payload});
  } catch (const std::exception& e) {
    log::get("device")->warn("box {} message {}: the handler failed: {}", box.str(), id.str(), e.what());
  }
}

void DeviceCore::on_box_topic(std::string_view topic, std::string_view payload) {
  // {prefix}/{box}/{suffix}: the box must be served and the suffix one of
  // the subscribed patterns (the broker matched it; the box decides).
  std::string_view rest = topic.substr(std::min(topic.size(), settings.prefix.size() + 1));
  auto slash = rest.find('/');
  auto box = BoxId::parse(rest.substr(0, slash));
  if (!box || slash == std::string_view::npos || !boxes.count(box->str()) || box_topics.empty()) {
    ++stats.rejected;
    return;
  }
  std::string_view suffix = rest.substr(slash + 1);
  for (const auto& [pattern, handler] : box_topics) {
    bool match = false;
    std::string relative(suffix);
    if (mosquitto_topic_matches_sub(pattern.c_str(), relative.c_str(), &match) != MOSQ_ERR_SUCCESS || !match) continue;
    try {
      handler(*box, suffix, payload);
    } catch (const std::exception& e) {
      log::get("device")->warn("box {} topic {}: the handler failed: {}", box->str(), suffix, e.what());
    }
    return;
  }
  ++stats.rejected;
}

bool DeviceCore::answer(Reply::State& state, std::string payload) {
  auto served = boxes.find(state.box.str());
  if (served != boxes.end()) {
    served->second.commands.answered(state.id.str(), {state.topic, payload, state.correlation});
  }
  Outgoing reply{Outgoing::Kind::reply, state.topic, std::move(payload), state.correlation, {}, false};
  if (send(std::move(reply))) return true;
  ++stats.replies_dropped;
  if (warnings.allow()) {
    log::get("device")->warn("box {} command {}: the outbox is full ({} messages, {} bytes); reply dropped",
                             state.box.str(), state.id.str(), outbox.size(), outbox.bytes());
  }
  return false;
}

bool DeviceCore::send(Outgoing message) {
  // In order: nothing overtakes what already waits in the outbox.
  if (outbox.empty() && ready && publish_now(message)) return true;
  const bool telemetry = message.kind == Outgoing::Kind::telemetry;
  if (outbox.push(std::move(message))) return true;
  if (telemetry) ++stats.refused;
  return false;
}

bool DeviceCore::publish_now(Outgoing& message) {
  mqtt::ResponseProperties v5;
  v5.correlation_data = message.correlation;
  if (!message.traceparent.empty()) v5.user_properties.emplace_back("traceparent", message.traceparent);
  // The handler keeps a copy: the message goes back to the outbox if the
  // connection breaks before the PUBACK.
  auto weak = weak_from_this();
  Outgoing copy = message;
  bool sent = client->publish(message.topic, message.payload, 1, &v5,
                              [weak, copy = std::move(copy)](bool ok) mutable {
                                if (auto core = weak.lock()) core->acknowledged(std::move(copy), ok);
                              },
                              message.retain);
  if (sent && stopping && message.kind == Outgoing::Kind::status) ++offline_unacked;
  return sent;
}

void DeviceCore::acknowledged(Outgoing message, bool ok) {
  if (stopping && message.kind == Outgoing::Kind::status && offline_unacked > 0 && --offline_unacked == 0) {
    // The last offline is in (or lost with the connection): DISCONNECT from
    // the loop, not from inside libmosquitto's read call that brought this.
    leave_timer.start(std::chrono::milliseconds(0));
  }
  if (ok) {
    if (message.kind == Outgoing::Kind::reply) ++stats.replies;
    if (message.kind == Outgoing::Kind::telemetry) ++stats.published;
    if (!outbox.empty()) flush();
    return;
  }
  if (stopping) return;  // the DISCONNECT overtook its PUBACK: the broker has it
  if (!client->connected()) {
    // The connection broke before the PUBACK: send it again on the next one
    // (the persistent session does not carry our own unacknowledged
    // messages: each connection has a fresh libmosquitto handle).
    ++stats.resent;
    if (!outbox.push(std::move(message), /*front=*/true) && message.kind == Outgoing::Kind::reply) {
      ++stats.replies_dropped;
    }
    return;
  }
  // The broker refused it (e.g. outside the ACL: v5 reason 0x87).
  if (message.kind == Outgoing::Kind::telemetry) ++stats.refused;
  if (message.kind == Outgoing::Kind::reply) ++stats.replies_dropped;
  if (warnings.allow()) log::get("device")->warn("the broker refused a publish on {}", message.topic);
}

void DeviceCore::flush() {
  while (ready && !outbox.empty()) {
    Outgoing message = outbox.pop();
    if (!publish_now(message)) {
      outbox.push(std::move(message), /*front=*/true);
      return;  // flow-controlled or down: the next PUBACK or connect resumes
    }
  }
}

// ---- Reply ----

bool Reply::result(const nlohmann::json& result) { return state_ ? raw(result_reply(state_->id, result)) : false; }

bool Reply::error(std::string_view code, std::string_view message) {
  return state_ ? raw(error_reply(state_->id, code, message)) : false;
}

bool Reply::raw(std::string payload) {
  if (!state_ || state_->answered) return false;
  state_->answered = true;
  auto core = state_->core.lock();
  return core && core->answer(*state_, std::move(payload));
}

bool Reply::answered() const noexcept { return state_ && state_->answered; }

// ---- Device ----

Device::Device(EventLoop& loop, Settings settings) : core_(std::make_shared<DeviceCore>(loop, std::move(settings))) {}

Device::~Device() {
  if (!core_->stopping) core_->client->stop(std::chrono::milliseconds(500));
}

void Device::on_command(CommandHandler handler) { core_->command_handler = std::move(handler); }
void Device::on_message(MessageHandler handler) { core_->message_handler = std::move(handler); }
void Device::on_connection(ConnectionHandler handler) { core_->connection_handler = std::move(handler); }
void Device::subscribe_box_topic(std::string suffix, TopicHandler handler) {
  core_->box_topics.emplace_back(std::move(suffix), std::move(handler));
}

void Device::start() { core_->start(); }

void Device::stop(std::chrono::milliseconds timeout) {
  if (!core_->stopping) core_->leave(timeout);
}

bool Device::resume() {
  DeviceCore& core = *core_;
  if (!core.stopping || !core.client->stopped()) return false;
  core.stopping = false;
  core.offline_unacked = 0;
  core.leave_timer.cancel();
  core.dependency.set_down("connecting");
  core.client->start();  // a fresh connection; on_ready announces the boxes online
  return true;
}

void Device::interrupt(std::chrono::milliseconds delay) {
  // While stop() waits for its PUBACKs the client is not stopping yet: an
  // outage then would reconnect a device that is leaving.
  if (core_->stopping) return;
  core_->client->interrupt(delay);  // the dependency goes down: the readiness listener says so
}

bool Device::publish_event(const BoxId& box, std::string_view name, std::string payload, std::string traceparent) {
  auto event = EventName::parse(name);
  if (!event || !core_->boxes.count(box.str())) return false;
  return core_->send(Outgoing{Outgoing::Kind::telemetry, core_->topics.event_channel(box, *event), std::move(payload),
                              {}, std::move(traceparent), false});
}

bool Device::publish_state(const BoxId& box, std::string payload) {
  if (!core_->boxes.count(box.str())) return false;
  return core_->send(
      Outgoing{Outgoing::Kind::telemetry, core_->topics.state_key(box), std::move(payload), {}, {}, false});
}

bool Device::connected() const noexcept { return core_->ready; }
bool Device::stopped() const noexcept { return core_->stopping && core_->client->stopped(); }
const Stats& Device::stats() const noexcept { return core_->stats; }
const std::vector<BoxId>& Device::boxes() const noexcept { return core_->settings.boxes; }
const std::string& Device::client_id() const noexcept { return core_->client_id; }

}  // namespace boxgate::device
