#include "boxgate/mqtt/client.hpp"

#include <MQTTAsync.h>
#include <unistd.h>

#include <cstring>
#include <thread>

#include "boxgate/backoff.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::mqtt {

namespace {
std::string default_client_id(const std::string& program) {
  char host[64] = "host";
  gethostname(host, sizeof host - 1);
  return program + "-" + host + "-" + std::to_string(getpid());
}

// A large buffer: paho's default of 100 messages in flight would refuse
// publishes under load long before the broker is the limit.
constexpr int kMaxBuffered = 1 << 20;

void add_binary(MQTTProperties& props, MQTTPropertyCodes code, const std::string& value) {
  MQTTProperty property{};
  property.identifier = code;
  property.value.data.data = const_cast<char*>(value.data());
  property.value.data.len = static_cast<int>(value.size());
  MQTTProperties_add(&props, &property);  // copies the bytes
}
}  // namespace

// paho's C callbacks; all run on paho's callback thread.
struct Client::Paho {
  static void connected(void* self, char*) { static_cast<Client*>(self)->on_connected(); }
  static void lost(void* self, char* cause) {
    static_cast<Client*>(self)->on_lost(cause && *cause ? cause : "connection lost");
  }
  static int arrived(void* self, char* topic, int topic_len, MQTTAsync_message* message) {
    auto* client = static_cast<Client*>(self);
    std::size_t length = topic_len > 0 ? static_cast<std::size_t>(topic_len) : std::strlen(topic);
    if (client->handler_) {
      client->handler_(std::string_view(topic, length),
                       std::string_view(static_cast<const char*>(message->payload),
                                        static_cast<std::size_t>(message->payloadlen)));
    }
    MQTTAsync_freeMessage(&message);
    MQTTAsync_free(topic);
    return 1;  // handled: paho acknowledges it
  }
  static void connect_failed(void* self, int code) {
    static_cast<Client*>(self)->on_lost("connect failed (code " + std::to_string(code) + ")");
  }
  static void connect_failed5(void* self, MQTTAsync_failureData5* data) { connect_failed(self, data ? data->code : -1); }
  static void connect_failed3(void* self, MQTTAsync_failureData* data) { connect_failed(self, data ? data->code : -1); }
  static void subscribed5(void* self, MQTTAsync_successData5* data) {
    // A v5 SUBACK may carry a refusal (reason code >= 0x80) on the success path.
    if (data && data->reasonCode >= MQTTREASONCODE_UNSPECIFIED_ERROR) {
      log::get("mqtt")->error("subscribe refused by the broker (reason code {})", static_cast<int>(data->reasonCode));
      return;
    }
    static_cast<Client*>(self)->on_subscribed();
  }
  static void subscribed3(void* self, MQTTAsync_successData*) { static_cast<Client*>(self)->on_subscribed(); }
  static void subscribe_failed5(void*, MQTTAsync_failureData5* data) {
    log::get("mqtt")->error("subscribe refused by the broker (code {})", data ? data->code : -1);
  }
  static void subscribe_failed3(void*, MQTTAsync_failureData* data) {
    log::get("mqtt")->error("subscribe refused by the broker (code {})", data ? data->code : -1);
  }
};

Client::Client(EventLoop& loop, const MqttSettings& settings, const std::string& program,
               ops::Dependency& dependency)
    : loop_(loop), settings_(settings), dependency_(dependency), retry_timer_(loop, [this] { connect(); }) {
  if (settings_.client_id.empty()) settings_.client_id = default_client_id(program);
  MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer;
  create.MQTTVersion = settings.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  create.maxBufferedMessages = kMaxBuffered;
  MQTTAsync handle = nullptr;
  int rc = MQTTAsync_createWithOptions(&handle, settings_.uri.c_str(), settings_.client_id.c_str(),
                                       MQTTCLIENT_PERSISTENCE_NONE, nullptr, &create);
  if (rc != MQTTASYNC_SUCCESS) {
    throw std::runtime_error("mqtt_uri: cannot create a client for '" + settings_.uri + "' (code " +
                             std::to_string(rc) + ")");
  }
  handle_ = handle;
  MQTTAsync_setCallbacks(handle, this, &Paho::lost, &Paho::arrived, nullptr);
  MQTTAsync_setConnected(handle, this, &Paho::connected);
}

Client::~Client() {
  stop();
  MQTTAsync handle = handle_;
  MQTTAsync_destroy(&handle);
}

void Client::subscribe_on_connect(std::vector<std::string> filters, MessageHandler handler) {
  filters_ = std::move(filters);
  handler_ = std::move(handler);
}

void Client::start() {
  stopping_ = false;
  connect();
}

void Client::connect() {
  if (stopping_) return;
  bool v5 = settings_.version == 5;
  MQTTAsync_connectOptions options = MQTTAsync_connectOptions_initializer;
  MQTTAsync_connectOptions options5 = MQTTAsync_connectOptions_initializer5;
  MQTTAsync_connectOptions& o = v5 ? options5 : options;
  MQTTAsync_SSLOptions ssl = MQTTAsync_SSLOptions_initializer;
  o.keepAliveInterval = static_cast<int>(settings_.keepalive_s);
  o.connectTimeout = 5;
  o.automaticReconnect = 0;  // ours, with jitter
  o.context = this;
  // Clean sessions: subscriptions are made again on every connect.
  if (v5) {
    o.cleanstart = 1;
    o.onFailure5 = &Paho::connect_failed5;
  } else {
    o.cleansession = 1;
    o.MQTTVersion = MQTTVERSION_3_1_1;
    o.onFailure = &Paho::connect_failed3;
  }
  if (!settings_.username.empty()) o.username = settings_.username.c_str();
  if (!settings_.password.empty()) o.password = settings_.password.c_str();
  if (settings_.uri.rfind("ssl://", 0) == 0) o.ssl = &ssl;
  int rc = MQTTAsync_connect(handle_, &o);
  if (rc != MQTTASYNC_SUCCESS) {
    log::get("mqtt")->warn("connect to {} refused (code {})", settings_.uri, rc);
    schedule_reconnect();
  }
}

void Client::on_connected() {
  // paho callback thread.
  connected_ = true;
  if (ever_connected_) dependency_.count_reconnect();
  ever_connected_ = true;
  log::get("mqtt")->info("connected to {}", settings_.uri);
  // A client that subscribes is ready only once the broker granted every
  // subscription: a refused one keeps readiness down (and is logged).
  subacks_left_ = static_cast<int>(filters_.size());
  if (filters_.empty()) dependency_.set_up(true);
  for (const auto& filter : filters_) {
    MQTTAsync_responseOptions response = MQTTAsync_responseOptions_initializer;
    response.context = this;
    if (settings_.version == 5) {
      response.onSuccess5 = &Paho::subscribed5;
      response.onFailure5 = &Paho::subscribe_failed5;
    } else {
      response.onSuccess = &Paho::subscribed3;
      response.onFailure = &Paho::subscribe_failed3;
    }
    int rc = MQTTAsync_subscribe(handle_, filter.c_str(), static_cast<int>(settings_.qos), &response);
    if (rc != MQTTASYNC_SUCCESS) log::get("mqtt")->error("subscribe {} failed (code {})", filter, rc);
  }
  loop_.post([this] { attempt_ = 0; });
}

void Client::on_subscribed() {
  // paho callback thread.
  if (subacks_left_.fetch_sub(1) == 1 && connected_) dependency_.set_up(true);
}

void Client::on_lost(const std::string& why) {
  // paho callback thread.
  bool was = connected_.exchange(false);
  dependency_.set_up(false);
  if (stopping_) return;
  if (was) log::get("mqtt")->warn("connection to {} lost: {}", settings_.uri, why);
  loop_.post([this] { schedule_reconnect(); });
}

void Client::schedule_reconnect() {
  if (stopping_ || retry_timer_.pending()) return;
  auto delay = jittered_backoff(attempt_++, settings_.backoff_max_ms);
  log::get("mqtt")->debug("reconnecting to {} in {} ms", settings_.uri, delay.count());
  retry_timer_.start(delay);
}

void Client::stop(std::chrono::milliseconds timeout) {
  if (stopping_.exchange(true)) return;
  if (MQTTAsync_isConnected(handle_)) {
    MQTTAsync_disconnectOptions options = MQTTAsync_disconnectOptions_initializer;
    MQTTAsync_disconnectOptions options5 = MQTTAsync_disconnectOptions_initializer5;
    MQTTAsync_disconnectOptions& o = settings_.version == 5 ? options5 : options;
    o.timeout = static_cast<int>(timeout.count());  // paho finishes in-flight work up to this long
    if (MQTTAsync_disconnect(handle_, &o) == MQTTASYNC_SUCCESS) {
      // Not a paho callback, so waiting here is allowed (main thread, at exit).
      auto deadline = std::chrono::steady_clock::now() + timeout + std::chrono::milliseconds(100);
      while (MQTTAsync_isConnected(handle_) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
      }
    }
  }
  connected_ = false;
  dependency_.set_up(false);
}

bool Client::publish(const std::string& topic, std::string_view payload, int qos, const ResponseProperties* v5) {
  if (!connected_) return false;
  MQTTAsync_message message = MQTTAsync_message_initializer;
  message.payload = const_cast<char*>(payload.data());
  message.payloadlen = static_cast<int>(payload.size());
  message.qos = qos;
  message.retained = 0;
  // paho C takes a publish's v5 properties from its response options (a
  // NULL response drops them); no callbacks are set, so nothing is tracked.
  MQTTAsync_responseOptions response = MQTTAsync_responseOptions_initializer;
  MQTTProperties props = MQTTProperties_initializer;
  if (v5 && settings_.version == 5) {
    add_binary(props, MQTTPROPERTY_CODE_RESPONSE_TOPIC, v5->response_topic);
    add_binary(props, MQTTPROPERTY_CODE_CORRELATION_DATA, v5->correlation_data);
    MQTTProperty expiry{};
    expiry.identifier = MQTTPROPERTY_CODE_MESSAGE_EXPIRY_INTERVAL;
    expiry.value.integer4 = v5->expiry_s;
    MQTTProperties_add(&props, &expiry);
    message.properties = props;
    response.properties = props;
  }
  int rc = MQTTAsync_sendMessage(handle_, topic.c_str(), &message, &response);  // copies what it keeps
  MQTTProperties_free(&props);
  if (rc != MQTTASYNC_SUCCESS) {
    log::get("mqtt")->warn("publish on {} refused (code {})", topic, rc);
    return false;
  }
  return true;
}

}  // namespace boxgate::mqtt
