#include "boxgate/mqtt/client.hpp"

#include <unistd.h>

#include <random>

#include "boxgate/logging.hpp"

namespace boxgate::mqtt {

namespace {
std::string default_client_id(const std::string& program) {
  char host[64] = "host";
  gethostname(host, sizeof host - 1);
  return program + "-" + host + "-" + std::to_string(getpid());
}

std::chrono::milliseconds jittered(int attempt, std::int64_t cap_ms) {
  static thread_local std::mt19937 rng{std::random_device{}()};
  std::int64_t full = std::min<std::int64_t>(cap_ms, 100LL << std::min(attempt, 16));
  return std::chrono::milliseconds(std::uniform_int_distribution<std::int64_t>(full / 2, full)(rng));
}
}  // namespace

// Result of each connect attempt; runs on paho's callback thread.
class Client::ConnectListener : public ::mqtt::iaction_listener {
 public:
  explicit ConnectListener(Client& client) : client_(client) {}
  void on_success(const ::mqtt::token&) override {}  // the connected handler does the work
  void on_failure(const ::mqtt::token& token) override {
    client_.on_lost("connect failed (code " + std::to_string(token.get_return_code()) + ")");
  }

 private:
  Client& client_;
};

Client::Client(EventLoop& loop, const MqttSettings& settings, const std::string& program,
               ops::Dependency& dependency)
    : loop_(loop),
      settings_(settings),
      dependency_(dependency),
      connect_listener_(std::make_unique<ConnectListener>(*this)),
      retry_timer_(loop, [this] { connect(); }) {
  int version = settings.version == 5 ? MQTTVERSION_5 : MQTTVERSION_3_1_1;
  std::string id = settings.client_id.empty() ? default_client_id(program) : settings.client_id;
  // A large buffer: paho's default of 100 messages in flight would refuse
  // publishes under load long before the broker is the limit.
  ::mqtt::create_options create(version, 1 << 20);
  client_ = std::make_unique<::mqtt::async_client>(settings.uri, id, create);

  auto builder = ::mqtt::connect_options_builder()
                     .mqtt_version(version)
                     .keep_alive_interval(std::chrono::seconds(settings.keepalive_s))
                     .connect_timeout(std::chrono::seconds(5))
                     .automatic_reconnect(false);
  // Clean sessions: subscriptions are made again on every connect.
  if (version == MQTTVERSION_5) {
    builder.clean_start(true);
  } else {
    builder.clean_session(true);
  }
  if (!settings.username.empty()) builder.user_name(settings.username);
  if (!settings.password.empty()) builder.password(settings.password);
  if (settings.uri.rfind("ssl://", 0) == 0) builder.ssl(::mqtt::ssl_options());
  options_ = builder.finalize();

  client_->set_connected_handler([this](const std::string&) { on_connected(); });
  client_->set_connection_lost_handler([this](const std::string& why) { on_lost(why.empty() ? "lost" : why); });
}

Client::~Client() { stop(); }

void Client::subscribe_on_connect(std::vector<std::string> filters, MessageHandler handler) {
  filters_ = std::move(filters);
  handler_ = std::move(handler);
  if (handler_) {
    client_->set_message_callback([this](::mqtt::const_message_ptr msg) { handler_(msg); });
  }
}

void Client::start() {
  stopping_ = false;
  connect();
}

void Client::connect() {
  if (stopping_) return;
  try {
    client_->connect(options_, nullptr, *connect_listener_);
  } catch (const ::mqtt::exception& e) {
    log::get("mqtt")->warn("connect to {} refused: {}", settings_.uri, e.what());
    schedule_reconnect();
  }
}

void Client::on_connected() {
  // paho callback thread.
  connected_ = true;
  dependency_.set_up(true);
  if (ever_connected_) dependency_.count_reconnect();
  ever_connected_ = true;
  log::get("mqtt")->info("connected to {}", settings_.uri);
  for (const auto& filter : filters_) {
    try {
      client_->subscribe(filter, static_cast<int>(settings_.qos));
    } catch (const ::mqtt::exception& e) {
      log::get("mqtt")->error("subscribe {} failed: {}", filter, e.what());
    }
  }
  loop_.post([this] { attempt_ = 0; });
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
  auto delay = jittered(attempt_++, settings_.backoff_max_ms);
  log::get("mqtt")->debug("reconnecting to {} in {} ms", settings_.uri, delay.count());
  retry_timer_.start(delay);
}

void Client::stop(std::chrono::milliseconds timeout) {
  if (stopping_.exchange(true)) return;
  try {
    if (client_->is_connected()) client_->disconnect()->wait_for(timeout);
  } catch (const ::mqtt::exception& e) {
    log::get("mqtt")->debug("disconnect: {}", e.what());
  }
  connected_ = false;
  dependency_.set_up(false);
}

bool Client::publish(const std::string& topic, std::string_view payload, int qos, const ResponseProperties* v5) {
  if (!connected_) return false;
  auto msg = ::mqtt::make_message(topic, payload.data(), payload.size(), qos, false);
  if (v5 && settings_.version == 5) {
    ::mqtt::properties props;
    props.add(::mqtt::property(::mqtt::property::RESPONSE_TOPIC, v5->response_topic));
    props.add(::mqtt::property(::mqtt::property::CORRELATION_DATA, v5->correlation_data));
    props.add(::mqtt::property(::mqtt::property::MESSAGE_EXPIRY_INTERVAL, static_cast<int32_t>(v5->expiry_s)));
    msg->set_properties(std::move(props));
  }
  try {
    client_->publish(msg);
    return true;
  } catch (const ::mqtt::exception& e) {
    log::get("mqtt")->warn("publish on {} refused: {}", topic, e.what());
    return false;
  }
}

}  // namespace boxgate::mqtt
