// The connection's life: connect, CONNACK, subscriptions, loss, reconnect and
// stop. The socket's events and publishing are in client_io.cpp. Everything
// here runs on the loop thread (see client.hpp).

#include "boxgate/mqtt/client.hpp"

#include <arpa/inet.h>
#include <event2/event.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <openssl/x509.h>
#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <thread>

#include "boxgate/backoff.hpp"
#include "boxgate/ids.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/mqtt/uri.hpp"
#include "client_callbacks.hpp"
#include "connect_worker.hpp"

namespace boxgate::mqtt {

namespace {
constexpr auto kMiscPeriod = std::chrono::milliseconds(500);
const std::string kNoConnack = "no CONNACK within 5 s";
// A connection that lasted this long was a good one: the backoff starts over.
constexpr auto kStableConnection = std::chrono::seconds(10);
// A lookup still running at the deadline, or an earlier one that has not
// ended yet (one reason for both: the log says it once).
const std::string kNoLookupAnswer = "cannot resolve the host: no answer within 5 s";

// mosquitto_lib_init() once per process (it is not thread-safe, but the
// daemons create their clients on one thread); cleanup at exit, unless a
// connect worker still runs and may destroy its handle after it. A worker
// in a slow lookup usually ends within moments: it is given up to 1 s, so
// its handle and OpenSSL state are freed before the process ends (else
// LeakSanitizer reports them); one in a hung lookup is left behind, and the
// stop stays quick (mqtt_resolve_itest holds it under 3 s).
void init_library_once() {
  struct Library {
    Library() { mosquitto_lib_init(); }
    ~Library() {
      for (int i = 0; i < 100 && ConnectJob::running() != 0; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
      }
      if (ConnectJob::running() == 0) mosquitto_lib_cleanup();
    }
  };
  static Library library;
}

// An IPv4 or IPv6 literal needs no lookup: connected on the loop.
bool is_address_literal(const std::string& host) {
  unsigned char address[sizeof(in6_addr)];
  return inet_pton(AF_INET, host.c_str(), address) == 1 || inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// A CONNACK refusal in words, the same for both protocol versions: 3.1.1's
// return codes 1..5 mean what v5's 0x84..0x87 and 0x88 mean.
std::string refusal_text(int version, int reason) {
  if (version != 5) {
    static const int v5_of[] = {0, MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION, MQTT_RC_CLIENTID_NOT_VALID,
                                MQTT_RC_SERVER_UNAVAILABLE, MQTT_RC_BAD_USERNAME_OR_PASSWORD, MQTT_RC_NOT_AUTHORIZED};
    if (reason < 1 || reason > 5) return "refused: " + std::string(mosquitto_connack_string(reason));
    reason = v5_of[reason];
  }
  std::string text = mosquitto_reason_string(reason);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  return "refused: " + text;
}

// How libmosquitto words a connection the peer ended (or an OpenSSL failure
// with an empty error queue, SSL_ERROR_SYSCALL, which it turns into EPROTO),
// as opposed to a TCP connect that failed (ECONNREFUSED, EHOSTUNREACH, ...)
// or a CONNACK that never came.
bool closed_by_peer(const std::string& why) {
  for (const std::string& vague : {std::string(std::strerror(EPROTO)), std::string(std::strerror(ECONNRESET)),
                                   std::string(std::strerror(EPIPE)), std::string(mosquitto_strerror(MOSQ_ERR_CONN_LOST)),
                                   std::string(mosquitto_strerror(MOSQ_ERR_TLS)), std::string("tls: handshake failed"),
                                   std::string(Client::kClosedDuringHandshake)}) {
    if (why == vague) return true;
  }
  return false;
}

// <program>-<UUIDv4>: 122 bits from the kernel's RNG. A broker drops the
// older of two connections with one client id, so an id another client can
// guess (host and pid) lets it disconnect this daemon; this one is never
// written anywhere but the broker's own log.
std::string default_client_id(const std::string& program) { return program + "-" + new_request_id().str(); }
}  // namespace

Client::Client(EventLoop& loop, const MqttSettings& settings, const std::string& program,
               ops::Dependency& dependency)
    : loop_(loop),
      settings_(settings),
      dependency_(dependency),
      misc_timer_(loop, [this] { on_misc(); }),
      retry_timer_(loop, [this] { connect(); }),
      connect_deadline_(loop, [this] { drop(connecting_ ? kNoLookupAnswer : kNoConnack); }),
      stop_deadline_(loop, [this] {
        log::get("mqtt")->warn("DISCONNECT to {} did not leave in time; closing", settings_.uri);
        destroy_handle();
        misc_timer_.cancel();
      }),
      write_failed_timer_(loop, [this] { drop(write_failed_); }) {
  std::string why;
  auto address = parse_broker_uri(settings_.uri, &why);
  if (!address) throw std::runtime_error("mqtt_uri: '" + settings_.uri + "' " + why);
  host_ = address->host;
  port_ = address->port;
  tls_ = address->tls;
  resolve_off_loop_ = !is_address_literal(host_);
  if (settings_.client_id.empty()) settings_.client_id = default_client_id(program);
  init_library_once();
  read_event_ = event_new(loop.base(), -1, 0, &Callbacks::readable, this);
  write_event_ = event_new(loop.base(), -1, 0, &Callbacks::writable, this);
  connected_event_ = event_new(loop.base(), -1, 0, &Callbacks::connect_done, this);
}

Client::~Client() {
  stop(std::chrono::milliseconds(500));
  destroy_handle();  // gives a running worker up, without waiting for it
  event_free(read_event_);
  event_free(write_event_);
  event_free(connected_event_);
}

void Client::subscribe_on_connect(std::vector<std::string> filters, MessageHandler handler) {
  filters_ = std::move(filters);
  handler_ = std::move(handler);
}

void Client::start() {
  stopping_ = false;
  misc_timer_.start(kMiscPeriod, /*repeat=*/true);
  connect();
}

std::string Client::configure(mosquitto* handle, KeyPasswordCallback key_password) {
  mosquitto_threaded_set(handle, false);  // no thread of its own: this loop drives it
  mosquitto_int_option(handle, MOSQ_OPT_PROTOCOL_VERSION, settings_.version == 5 ? MQTT_PROTOCOL_V5 : MQTT_PROTOCOL_V311);
  mosquitto_int_option(handle, MOSQ_OPT_TCP_NODELAY, 1);
  // In flight at once: our own bound (the broker's Receive Maximum may lower it).
  mosquitto_int_option(handle, MOSQ_OPT_SEND_MAXIMUM, static_cast<int>(std::min<std::int64_t>(settings_.max_unacked, 65535)));
  // The library acknowledges a QoS 1 message as it reads it, so letting the
  // broker send more before that costs nothing here; 20 (the default) would
  // throttle the bridge to 20 replies per round trip.
  mosquitto_int_option(handle, MOSQ_OPT_RECEIVE_MAXIMUM, 65535);
  if (!settings_.username.empty()) {
    mosquitto_username_pw_set(handle, settings_.username.c_str(),
                              settings_.password.empty() ? nullptr : settings_.password.c_str());
  }
  if (tls_) {
    // Peer verification (chain and host name) is libmosquitto's default;
    // nothing here turns it off (no tls_insecure, no SSL_VERIFY_NONE).
    const bool own_ca = !settings_.ca_file.empty();
    const bool client_cert = !settings_.cert_file.empty();
    int rc = MOSQ_ERR_SUCCESS;
    if (!own_ca) rc = mosquitto_int_option(handle, MOSQ_OPT_TLS_USE_OS_CERTS, 1);
    if (rc == MOSQ_ERR_SUCCESS && (own_ca || client_cert)) {
      // mosquitto_tls_set wants a CA file or directory even when only a client
      // certificate is added: then the system's directory (besides its store).
      rc = mosquitto_tls_set(handle, own_ca ? settings_.ca_file.c_str() : nullptr,
                             own_ca ? nullptr : X509_get_default_cert_dir(),
                             client_cert ? settings_.cert_file.c_str() : nullptr,
                             client_cert ? settings_.key_file.c_str() : nullptr,
                             client_cert ? key_password : nullptr);
    }
    if (rc != MOSQ_ERR_SUCCESS) {
      // The files were readable at start-up (config.cpp); not now.
      return std::string("tls: cannot use the CA, certificate or key file: ") + mosquitto_strerror(rc);
    }
  }
  mosquitto_connect_v5_callback_set(handle, &Callbacks::connack);
  mosquitto_subscribe_v5_callback_set(handle, &Callbacks::suback);
  mosquitto_publish_v5_callback_set(handle, &Callbacks::published);
  mosquitto_message_v5_callback_set(handle, &Callbacks::message);
  mosquitto_disconnect_v5_callback_set(handle, &Callbacks::disconnected);
  // Only while connecting: its lines explain TLS and connect failures, but
  // with a log callback set libmosquitto formats a line for every packet.
  mosquitto_log_callback_set(handle, &Callbacks::library_log);
  return {};
}

void Client::connect() {
  if (stopping_) return;
  destroy_handle();  // the last connection's, with whatever it still held
  write_failed_.clear();
  write_failed_timer_.cancel();
  refusal_.clear();
  library_error_.clear();
  // One worker at a time: a lookup given up that still hangs holds this off.
  if (resolve_off_loop_ && !abandoned_.expired()) return drop(kNoLookupAnswer);
  handle_ = mosquitto_new(settings_.client_id.c_str(), session_.clean, this);
  if (!handle_) return drop("cannot create a libmosquitto client");
  // On the worker, OpenSSL's passphrase callback must not reach the Client.
  auto key_password = resolve_off_loop_ ? &ConnectJob::key_password : &Callbacks::key_password;
  if (std::string failed = configure(handle_, key_password); !failed.empty()) return drop(failed);
  // Stores the CONNECT properties only (no lookup): stays on the loop.
  if (std::string failed = set_connect_properties(handle_); !failed.empty()) return drop(failed);
  // A host name: its getaddrinfo() blocks, so the call runs on a worker.
  if (resolve_off_loop_) return connect_off_loop();
  // Non-blocking connect to an address literal.
  int rc = mosquitto_connect_async(handle_, host_.c_str(), port_, static_cast<int>(settings_.keepalive_s));
  connect_started(rc, errno);
}

void Client::connect_started(int rc, int saved_errno) {
  int fd = mosquitto_socket(handle_);
  if (rc != MOSQ_ERR_SUCCESS || fd < 0) return drop(Callbacks::describe(rc, saved_errno));
  register_socket(fd);
  awaiting_connack_ = true;
  // Writability says when the TCP connect completed; with TLS, want_write()
  // may not say so yet.
  event_add(write_event_, nullptr);
  connect_deadline_.start(kConnectTimeout);
}

std::string Client::set_connect_properties(mosquitto* handle) {
  if (!session_.will_topic.empty()) {
    int rc = mosquitto_will_set(handle, session_.will_topic.c_str(), static_cast<int>(session_.will_payload.size()),
                                session_.will_payload.data(), session_.will_qos, session_.will_retain);
    if (rc != MOSQ_ERR_SUCCESS) return std::string("will: ") + mosquitto_strerror(rc);
  }
  if (session_.clean || settings_.version != 5) return {};
  // A persistent v5 session needs a Session Expiry Interval in CONNECT (0
  // ends the session with the connection). libmosquitto 2.0.11's
  // mosquitto_connect_async takes no properties: it sends those that
  // mosquitto_connect_bind_v5 stored. That call stores them before it checks
  // its arguments, so with port -1 it stores them and returns MOSQ_ERR_INVAL
  // without connecting (lib/connect.c); the asynchronous connect sends them.
  mosquitto_property* properties = nullptr;
  mosquitto_property_add_int32(&properties, MQTT_PROP_SESSION_EXPIRY_INTERVAL, session_.expiry_s);
  int rc = mosquitto_connect_bind_v5(handle, host_.c_str(), -1, static_cast<int>(settings_.keepalive_s), nullptr,
                                     properties);
  mosquitto_property_free_all(&properties);
  if (rc != MOSQ_ERR_INVAL) return std::string("session expiry: ") + mosquitto_strerror(rc);
  return {};
}

void Client::on_connack(int reason, int flags) {
  if (reason != 0) {
    // libmosquitto closes the connection next; on_disconnected logs it (once
    // per new reason) and retries.
    refusal_ = refusal_text(static_cast<int>(settings_.version), reason);
    return;
  }
  awaiting_connack_ = false;
  connect_deadline_.cancel();
  mosquitto_log_callback_set(handle_, nullptr);
  session_up_ = true;
  up_since_ = std::chrono::steady_clock::now();
  last_failure_.clear();
  library_error_.clear();
  if (ever_connected_) dependency_.count_reconnect();
  ever_connected_ = true;
  if (auto was = problems_.resolve(); was && was->second > 0) {
    log::get("mqtt")->info("connected to {} (MQTT {}) after '{}', repeated {} more times", settings_.uri,
                           settings_.version == 5 ? "5" : "3.1.1", was->first, was->second);
  } else {
    log::get("mqtt")->info("connected to {} (MQTT {})", settings_.uri, settings_.version == 5 ? "5" : "3.1.1");
  }
  session_present_ = (flags & 1) != 0;
  subscribe_all();
}

void Client::subscribe_all() {
  // Ready only once the broker granted every subscription. Filters go in
  // SUBSCRIBE packets of up to kFiltersPerSubscribe (a device gateway may
  // serve thousands of boxes, two filters each).
  constexpr std::size_t kFiltersPerSubscribe = 256;
  pending_subacks_.clear();
  subscription_refused_ = false;
  for (std::size_t first = 0; first < filters_.size(); first += kFiltersPerSubscribe) {
    std::size_t count = std::min(kFiltersPerSubscribe, filters_.size() - first);
    std::vector<char*> batch;
    for (std::size_t i = first; i < first + count; ++i) batch.push_back(filters_[i].data());
    int mid = 0;
    int rc = mosquitto_subscribe_multiple(handle_, &mid, static_cast<int>(count), batch.data(),
                                          static_cast<int>(settings_.qos), 0, nullptr);
    std::string what = count == 1 ? filters_[first] : fmt::format("{} (and {} more)", filters_[first], count - 1);
    if (rc == MOSQ_ERR_SUCCESS) {
      pending_subacks_.emplace(mid, what);
    } else {
      subscription_refused_ = true;
      log::get("mqtt")->error("cannot subscribe to {}: {}", what, mosquitto_strerror(rc));
      dependency_.set_down("subscribe: " + what + ": " + mosquitto_strerror(rc));
    }
  }
  if (pending_subacks_.empty() && !subscription_refused_) became_ready();
}

void Client::became_ready() {
  dependency_.set_up(true);
  if (on_ready_) on_ready_(session_present_);
}

void Client::on_suback(int mid, int count, const int* granted) {
  auto it = pending_subacks_.find(mid);
  if (it == pending_subacks_.end()) return;
  for (int i = 0; i < count; ++i) {
    // v5: a reason code >= 0x80 is a refusal; 3.1.1 has only 0x80.
    if (granted[i] >= 0x80) {
      subscription_refused_ = true;
      const char* text = settings_.version == 5 ? mosquitto_reason_string(granted[i]) : "Failure";
      log::get("mqtt")->error("{} refused the subscription to {} (reason code 0x{:02x}: {}); not ready", settings_.uri,
                              it->second, granted[i], text);
      dependency_.set_down(fmt::format("subscribe: {} refused (0x{:02x} {})", it->second, granted[i], text));
    }
  }
  pending_subacks_.erase(it);
  if (pending_subacks_.empty() && !subscription_refused_ && session_up_) became_ready();
}

void Client::on_disconnected(int rc, int saved_errno) {
  // libmosquitto has closed the socket already: forget its events now, before
  // anything on this loop can get the same fd number.
  unregister_socket();
  std::string why = Callbacks::describe(rc, saved_errno);
  if (stopping_) {
    session_up_ = false;
    fail_unacked();
    stop_deadline_.cancel();
    misc_timer_.cancel();
    log::get("mqtt")->info("disconnected from {}", settings_.uri);
    return;
  }
  connection_down(why);
}

void Client::drop(const std::string& why) {
  // Never from inside a libmosquitto callback: it destroys the handle.
  destroy_handle();
  connection_down(why);
}

std::string Client::failure_reason(const std::string& why) const {
  // A refused CONNACK is followed by a plain "connection refused" close, and a
  // failed handshake by a vague one: the specific cause wins.
  if (!refusal_.empty()) return refusal_;
  if (!library_error_.empty()) return (tls_ ? "tls: " : "") + library_error_;
  if (tls_ && !session_up_ && closed_by_peer(why)) {
    // Closed by the broker before CONNACK with no word from OpenSSL: keep the
    // specific TLS reason of an earlier attempt (see client.hpp).
    bool specific = last_failure_.rfind("tls: ", 0) == 0 && last_failure_ != kClosedDuringHandshake;
    return specific ? last_failure_ : kClosedDuringHandshake;
  }
  return why;
}

void Client::connection_down(const std::string& why) {
  write_failed_timer_.cancel();  // this is the drop it was waiting for
  write_failed_.clear();
  bool was_up = session_up_;
  if (was_up && std::chrono::steady_clock::now() - up_since_ >= kStableConnection) attempt_ = 0;
  std::string reason = failure_reason(why);
  refusal_.clear();
  library_error_.clear();
  session_up_ = false;
  awaiting_connack_ = false;
  connect_deadline_.cancel();
  dependency_.set_down(reason);
  pending_subacks_.clear();
  fail_unacked();  // the handle that held them is not used again
  // A warning per change of state or reason, not per retry: a broker that
  // refuses us for hours logs one line, and another when the reason changes.
  if (was_up) {
    log::get("mqtt")->warn("connection to {} lost: {}", settings_.uri, reason);
  } else if (problems_.report(reason)) {
    log::get("mqtt")->warn("cannot connect to {}: {} (retrying; logged again when the reason changes)",
                           settings_.uri, reason);
  } else {
    log::get("mqtt")->debug("cannot connect to {}: {}", settings_.uri, reason);
  }
  last_failure_ = reason;
  schedule_reconnect();
}

void Client::interrupt(std::chrono::milliseconds delay) {
  if (stopping_) return;
  // No DISCONNECT: closing the socket is what a power cut looks like to the
  // broker, which then publishes the will.
  bool was_up = session_up_;
  destroy_handle();
  session_up_ = false;
  connect_deadline_.cancel();
  dependency_.set_down("interrupted");
  pending_subacks_.clear();
  fail_unacked();
  if (was_up) log::get("mqtt")->info("connection to {} interrupted for {} ms", settings_.uri, delay.count());
  retry_timer_.cancel();
  retry_timer_.start(delay);
}

void Client::schedule_reconnect() {
  if (stopping_ || retry_timer_.pending()) return;
  auto delay = jittered_backoff(attempt_++, settings_.backoff_max_ms);
  log::get("mqtt")->debug("reconnecting to {} in {} ms", settings_.uri, delay.count());
  retry_timer_.start(delay);
}

void Client::stop(std::chrono::milliseconds timeout) {
  if (!stopping_) {
    stopping_ = true;
    retry_timer_.cancel();
    connect_deadline_.cancel();
    bool established = session_up_ && handle_ && fd_ >= 0;
    session_up_ = false;
    dependency_.set_up(false);
    if (!established) {
      destroy_handle();
      misc_timer_.cancel();
      return;
    }
    // Queued packets leave first, then DISCONNECT; when the socket has room
    // this writes them all now and on_disconnected runs before it returns.
    if (mosquitto_disconnect(handle_) != MOSQ_ERR_SUCCESS) {
      destroy_handle();
      misc_timer_.cancel();
      return;
    }
    if (fd_ >= 0) {
      update_write_interest();
      stop_deadline_.start(timeout);
    }
  }
  // After the loop has ended nothing else drives the socket.
  if (!loop_.running() && handle_) finish_stop_now(timeout);
}

void Client::finish_stop_now(std::chrono::milliseconds timeout) {
  // Not on a running loop, so waiting here blocks nobody else.
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (fd_ >= 0 && mosquitto_want_write(handle_)) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) break;
    pollfd wanted{fd_, POLLOUT, 0};
    int ready = ::poll(&wanted, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno == EINTR) continue;
    if (ready <= 0) break;
    mosquitto_loop_write(handle_, 1);
    if (handle_ && mosquitto_socket(handle_) != fd_) unregister_socket();
  }
  if (fd_ >= 0) log::get("mqtt")->warn("closing the connection to {} before DISCONNECT could leave", settings_.uri);
  destroy_handle();
  stop_deadline_.cancel();
  misc_timer_.cancel();
}

}  // namespace boxgate::mqtt
