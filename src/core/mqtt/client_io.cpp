// The socket's events, publishing and the flow-control count. Loop thread
// only (see client.hpp). What libmosquitto 2.0.11 does underneath, read in its
// sources, decides the shape here:
// - a packet queued outside a callback is written at once (one write(2) per
//   packet, plus a 1-byte write to an internal socket pair meant to wake its
//   own select loop); a packet queued inside a callback waits for loop_write;
// - loop_read reads one packet per call unless QoS > 0 messages are pending,
//   so the read handler calls it until the socket would block;
// - during a TLS handshake only loop_read advances it, want_write() can stay
//   true while OpenSSL waits for the broker (upstream issue #3745), and a
//   refused or closed socket looks like "try again" (SSL_ERROR_SYSCALL); a
//   failed handshake closes the socket without calling on_disconnect.

#include <event2/event.h>
#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "boxgate/logging.hpp"
#include "boxgate/mqtt/client.hpp"
#include "client_callbacks.hpp"
#include "connect_worker.hpp"

namespace boxgate::mqtt {

namespace {
// Packets handled per read event at most, so one busy connection cannot
// starve the HTTP connections sharing the loop.
constexpr int kReadsPerEvent = 64;

// The result of a non-blocking connect, once the socket is writable.
int pending_socket_error(int fd) {
  int error = 0;
  socklen_t size = sizeof error;
  if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) return errno;
  return error;
}

// -1 while the socket is open; 0 when the peer closed it; else the socket's
// error (a refused TCP connect: ECONNREFUSED). Nothing is consumed.
int peer_closed(int fd) {
  char byte;
  ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  if (n == 0) return 0;
  if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return errno;
  return -1;
}

mosquitto_property* v5_properties(const ResponseProperties& p) {
  mosquitto_property* list = nullptr;
  if (!p.response_topic.empty()) mosquitto_property_add_string(&list, MQTT_PROP_RESPONSE_TOPIC, p.response_topic.c_str());
  if (!p.correlation_data.empty()) {
    auto size = static_cast<std::uint16_t>(std::min<std::size_t>(p.correlation_data.size(), 65535));
    mosquitto_property_add_binary(&list, MQTT_PROP_CORRELATION_DATA, p.correlation_data.data(), size);
  }
  if (p.expiry_s > 0) mosquitto_property_add_int32(&list, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, p.expiry_s);
  for (const auto& [name, value] : p.user_properties) {
    mosquitto_property_add_string_pair(&list, MQTT_PROP_USER_PROPERTY, name.c_str(), value.c_str());
  }
  return list;  // libmosquitto copies what it keeps
}
}  // namespace

void Client::Callbacks::library_log(mosquitto*, void* client, int level, const char* line) {
  // At debug level: the attempt's failure is logged once, with its reason,
  // by connection_down; these lines would repeat on every retry.
  log::get("mqtt")->debug("libmosquitto: {}", line);
  if ((level & MOSQ_LOG_ERR) && line) self(client).on_library_error(line);
}

int Client::Callbacks::key_password(char* buf, int size, int, void* handle) {
  auto* client = static_cast<Client*>(mosquitto_userdata(static_cast<mosquitto*>(handle)));
  return client ? copy_key_password(client->settings_.key_password, buf, size) : 0;
}

void Client::on_library_error(const char* line) {
  // The first error of an attempt is its cause; later ones follow from it.
  if (!library_error_.empty()) return;
  std::string text(line);
  // "OpenSSL Error[0]: error:0A000086:SSL routines::certificate verify failed"
  // -> "certificate verify failed"; "Error: Unable to load ..." -> "unable to load ...".
  if (text.rfind("OpenSSL Error", 0) == 0) {
    text = text.substr(text.rfind(':') + 1);
  } else if (text.rfind("Error: ", 0) == 0) {
    text = text.substr(7);
  }
  auto first = text.find_first_not_of(' ');
  auto last = text.find_last_not_of(" .");
  text = first == std::string::npos ? std::string() : text.substr(first, last - first + 1);
  if (!text.empty()) text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  library_error_ = text.empty() ? std::string(line) : text;
}

std::string Client::Callbacks::describe(int rc, int saved_errno) {
  if (rc == MOSQ_ERR_ERRNO) return std::strerror(saved_errno);
  if (rc == MOSQ_ERR_EAI) return std::string("cannot resolve the host: ") + gai_strerror(saved_errno);
  // A DISCONNECT from the broker passes its MQTT v5 reason code instead.
  if (rc >= 0x80) return std::string("the broker disconnected us: ") + mosquitto_reason_string(rc);
  return mosquitto_strerror(rc);
}

void Client::register_socket(int fd) {
  fd_ = fd;
  event_assign(read_event_, loop_.base(), fd, EV_READ | EV_PERSIST, &Callbacks::readable, this);
  event_assign(write_event_, loop_.base(), fd, EV_WRITE, &Callbacks::writable, this);
  event_add(read_event_, nullptr);
}

void Client::unregister_socket() {
  if (fd_ < 0) return;
  event_del(read_event_);
  event_del(write_event_);
  fd_ = -1;
}

void Client::destroy_handle() {
  abandon_connect();  // a worker's handle is its own until it hands it back
  unregister_socket();
  if (handle_) mosquitto_destroy(handle_);  // closes the socket; calls nothing back
  handle_ = nullptr;
  awaiting_connack_ = false;
}

void Client::update_write_interest() {
  if (handle_ && fd_ >= 0 && mosquitto_want_write(handle_)) event_add(write_event_, nullptr);
}

bool Client::socket_gone_quietly() {
  if (fd_ < 0 || !handle_ || mosquitto_socket(handle_) == fd_) return false;
  // libmosquitto closed the socket without on_disconnect: a failed TLS
  // handshake (its reason is in the libmosquitto error line, if any).
  drop("tls: handshake failed");
  return true;
}

void Client::on_readable() {
  if (awaiting_connack_ && tls_) {
    int closed = peer_closed(fd_);
    if (closed > 0) return drop(std::strerror(closed));  // e.g. a refused TCP connect
    if (closed == 0) return drop(kClosedDuringHandshake);
  }
  for (int i = 0; i < kReadsPerEvent; ++i) {
    errno = 0;
    int rc = mosquitto_loop_read(handle_, 1);
    if (socket_gone_quietly() || fd_ < 0 || rc != MOSQ_ERR_SUCCESS) return;  // on_disconnected ran
    // The last read would block: everything that arrived is handled.
    if (errno == EAGAIN || errno == EWOULDBLOCK) break;
    // A handshake step per event; the next step needs the broker's answer.
    if (awaiting_connack_ && tls_) break;
  }
  update_write_interest();
}

void Client::on_writable() {
  if (awaiting_connack_) {
    if (int error = pending_socket_error(fd_)) return drop(std::strerror(error));
    if (tls_) {
      mosquitto_loop_read(handle_, 1);  // advances the TLS handshake
      if (socket_gone_quietly() || fd_ < 0) return;
    }
  }
  mosquitto_loop_write(handle_, 1);
  if (socket_gone_quietly() || fd_ < 0) return;
  // During a TLS handshake the read handler re-arms the write event once the
  // broker has answered; re-arming here would spin while OpenSSL waits.
  if (!(awaiting_connack_ && tls_)) update_write_interest();
}

void Client::on_misc() {
  if (!handle_ || fd_ < 0) return;
  mosquitto_loop_misc(handle_);  // keep-alive; may give the broker up (on_disconnected)
  if (socket_gone_quietly() || fd_ < 0) return;
  update_write_interest();
}

void Client::on_message(const mosquitto_message& message, const mosquitto_property* properties) {
  if (!handler_ || !message.topic) return;
  message_properties_ = properties;
  message_retained_ = message.retain;
  handler_(std::string_view(message.topic),
           std::string_view(static_cast<const char*>(message.payload), static_cast<std::size_t>(message.payloadlen)));
  message_properties_ = nullptr;
}

std::optional<std::string> Client::user_property(const char* name) const {
  for (const mosquitto_property* p = message_properties_; p; p = mosquitto_property_next(p)) {
    if (mosquitto_property_identifier(p) != MQTT_PROP_USER_PROPERTY) continue;
    char* key = nullptr;
    char* value = nullptr;
    if (!mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &key, &value, false)) continue;
    bool match = key && std::string_view(key) == name;
    std::optional<std::string> found;
    if (match && value) found = std::string(value);
    std::free(key);
    std::free(value);
    if (match) return found;
  }
  return std::nullopt;
}

bool Client::over_limit(std::size_t bytes) const noexcept {
  if (unacked_.size() >= static_cast<std::size_t>(settings_.max_unacked)) return true;
  // A message larger than the byte bound still goes, alone.
  return unacked_bytes_ > 0 && unacked_bytes_ + bytes > static_cast<std::size_t>(settings_.max_unacked_bytes);
}

void Client::warn_limited(const std::string& line) {
  // A stalled or refusing broker must not flood the log.
  if (!warnings_.allow()) return;
  log::get("mqtt")->warn("{} (more this second not logged)", line);
}

std::optional<std::string> Client::response_topic() const {
  char* value = nullptr;
  if (!mosquitto_property_read_string(message_properties_, MQTT_PROP_RESPONSE_TOPIC, &value, false)) {
    return std::nullopt;
  }
  std::string topic = value ? value : "";
  std::free(value);
  return topic;
}

std::optional<std::string> Client::correlation_data() const {
  void* value = nullptr;
  std::uint16_t size = 0;
  if (!mosquitto_property_read_binary(message_properties_, MQTT_PROP_CORRELATION_DATA, &value, &size, false)) {
    return std::nullopt;
  }
  std::string data(static_cast<const char*>(value), size);
  std::free(value);
  return data;
}

std::optional<std::uint32_t> Client::message_expiry() const {
  std::uint32_t seconds = 0;
  if (!mosquitto_property_read_int32(message_properties_, MQTT_PROP_MESSAGE_EXPIRY_INTERVAL, &seconds, false)) {
    return std::nullopt;
  }
  return seconds;
}

bool Client::publish(const std::string& topic, std::string_view payload, int qos, const ResponseProperties* v5,
                     AckHandler on_ack, bool retain) {
  if (!connected() || !handle_ || fd_ < 0) return false;
  std::size_t bytes = topic.size() + payload.size();
  if (over_limit(bytes)) {
    warn_limited(fmt::format("{} messages ({} bytes) not yet acknowledged by {}: publish on {} refused",
                             unacked_.size(), unacked_bytes_, settings_.uri, topic));
    return false;
  }
  mosquitto_property* properties = (v5 && settings_.version == 5) ? v5_properties(*v5) : nullptr;
  publishing_mid_ = 0;
  publish_done_ = false;
  in_publish_ = true;
  int rc = mosquitto_publish_v5(handle_, &publishing_mid_, topic.c_str(), static_cast<int>(payload.size()),
                                payload.data(), qos, retain, properties);
  in_publish_ = false;
  mosquitto_property_free_all(&properties);
  if (rc != MOSQ_ERR_SUCCESS) {
    warn_limited(fmt::format("publish on {} failed: {}", topic, mosquitto_strerror(rc)));
    if (rc == MOSQ_ERR_CONN_LOST || rc == MOSQ_ERR_ERRNO || rc == MOSQ_ERR_NO_CONN) {
      // The socket broke under this write (the broker died): the connection
      // is lost now, not when the read event notices, so a caller holds its
      // work for the reconnect (grace) instead of refusing it.
      if (write_failed_.empty()) write_failed_timer_.start(std::chrono::milliseconds(0));
      write_failed_ = std::string("publish failed: ") + mosquitto_strerror(rc);
    }
    return false;
  }
  if (publish_done_) {
    if (on_ack) on_ack(true);  // QoS 0: written already
  } else if (unacked_.emplace(publishing_mid_, Unacked{bytes, std::move(on_ack)}).second) {
    unacked_bytes_ += bytes;
  }
  update_write_interest();
  return true;
}

void Client::fail_unacked() {
  // Moved out first: a handler may publish again (on a later connection).
  auto failed = std::move(unacked_);
  unacked_.clear();
  unacked_bytes_ = 0;
  for (auto& [mid, entry] : failed) {
    if (entry.on_ack) entry.on_ack(false);
  }
}

void Client::on_published(int mid, int reason) {
  if (in_publish_ && mid == publishing_mid_) {
    publish_done_ = true;  // QoS 0, written before publish() returned
    return;
  }
  AckHandler on_ack;
  if (auto it = unacked_.find(mid); it != unacked_.end()) {
    unacked_bytes_ -= it->second.bytes;
    on_ack = std::move(it->second.on_ack);
    unacked_.erase(it);
  }
  if (reason >= 0x80) {
    warn_limited(fmt::format("{} refused a publish (reason code 0x{:02x}: {})", settings_.uri, reason,
                             mosquitto_reason_string(reason)));
  }
  if (on_ack) on_ack(reason < 0x80);
}

}  // namespace boxgate::mqtt
