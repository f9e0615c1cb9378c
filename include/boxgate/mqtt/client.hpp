#pragma once
// Client: one MQTT connection (libmosquitto 2.0, MQTT 3.1.1 or 5) driven by
// the daemon's own EventLoop, with jittered reconnect, resubscription and a
// bounded outgoing queue.
//
// Thread ownership: the loop thread, with one exception. Every method, every
// libmosquitto callback and the message handler run on the loop thread.
// libmosquitto never runs a thread of its own (mosquitto_threaded_set false,
// no loop_start). The exception is the connect call for a broker named by
// host name, which runs on a short-lived worker thread (below); the worker
// touches nothing of the Client, only the handle it was given and the
// ConnectJob it shares with the Client (src/core/mqtt/connect_worker.hpp).
//
// How the connection rides the loop (libmosquitto's external-loop API):
// - a persistent read event on mosquitto_socket() runs mosquitto_loop_read;
// - a one-shot write event, armed whenever mosquitto_want_write() is true
//   after a call that may queue, runs mosquitto_loop_write. libmosquitto
//   writes a publish at once when the socket has room (one write(2) per
//   packet), so the event only carries what the socket could not take;
// - a 500 ms timer runs mosquitto_loop_misc: PINGREQ after keep-alive
//   seconds of silence, and a broker silent for about 2 x keep-alive is
//   given up (the dependency goes down, a reconnect follows);
// - connect is non-blocking (mosquitto_connect_async). libmosquitto 2.0 has
//   no asynchronous resolver: it resolves a host name with a blocking
//   getaddrinfo() inside that call. So a broker named by an IPv4 or IPv6
//   literal is connected on the loop, and one named by host name on a
//   worker thread: the loop creates and configures the handle, hands it over
//   and does not touch it until the worker, done, writes (rc, errno) to a
//   pipe the loop watches; then the attempt goes on as for an address (socket
//   events, write event, deadline). TLS verifies the broker against the name,
//   as libmosquitto is given the name, never the address it resolved to.
//   The 5 s CONNACK deadline starts with the lookup (and again once it is
//   back, as for an address): a lookup that hangs is abandoned (the worker
//   destroys its handle when it ends) and the next attempt follows the
//   backoff. At most one worker per Client runs: while an
//   abandoned one has not ended, an attempt fails at once with the same
//   reason ("cannot resolve the host: no answer within 5 s"), so a DNS server
//   that never answers costs one thread, not one per attempt. stop() and
//   ~Client never wait for a worker; one may outlive its Client (it frees
//   what it holds) and still run when the process exits.
// Every connection attempt gets a fresh libmosquitto handle, so nothing queued
// on a connection that broke is sent on the next one: a command already
// answered 503 or 504 never reaches a device later.
//
// Reconnect: jittered_backoff (boxgate/backoff.hpp) capped at
// mqtt_backoff_max_ms; CONNACK must come within 5 s. The sequence starts over
// (first retry at once) only after a connection that lasted 10 s: one the
// broker drops at once (two clients with one id) keeps backing off. The daemons' sessions
// are clean; a device's may be persistent (set_session()). Either way the
// filters are subscribed again on every connect (SUBSCRIBE packets of up to
// 256 filters). The dependency is up once
// the broker granted every subscription; a refused one (SUBACK reason code
// >= 0x80 in v5, 0x80 in 3.1.1) is logged and keeps it down until the next
// connection.
//
// Why it is down: every failed attempt gives the dependency a reason, the
// "mqtt_error" of /readyz: "tls: <OpenSSL's reason>" (e.g. "tls: certificate
// verify failed"), "refused: <CONNACK reason>" (e.g. "refused: not
// authorized"), "subscribe: ..." or the socket's error. It is logged as a
// warning when it changes (first failure, another reason, a lost connection),
// and at debug level on the retries that repeat it. No reason holds a secret.
// One TLS case is a race: a broker that wants a client certificate checks it
// after the client's side of a TLS 1.3 handshake is done, so its alert
// ("tls: tlsv13 alert certificate required") is read on some attempts and
// lost to the connection's reset on others. Such a vague failure (the broker
// closed the connection during the handshake or before CONNACK) is reported
// as kClosedDuringHandshake, and does not replace a specific TLS reason seen
// since the last connection.
//
// TLS (ssl://, mqtts://): the broker's chain is verified against
// mqtt_ca_file (or the system's CA store) and its name against the URI's
// host, always. mqtt_cert_file / mqtt_key_file present a client certificate;
// the key's passphrase (mqtt_key_password) is handed to OpenSSL through a
// callback, so OpenSSL never prompts on a terminal.
//
// Flow control (outgoing): libmosquitto queues QoS > 0 messages without limit.
// A publish counts from publish() until the library is done with it (PUBACK
// for QoS 1, PUBCOMP for QoS 2, written to the socket for QoS 0). publish()
// refuses (returns false, nothing queued) while mqtt_max_unacked messages or
// mqtt_max_unacked_bytes bytes (topic + payload) are counted; the gateway
// answers such a command 503 mqtt_unavailable. The broker's Receive Maximum
// caps what is in flight inside that bound (MOSQ_OPT_SEND_MAXIMUM).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "boxgate/config.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/readiness.hpp"

struct mosquitto;
struct mosquitto_message;
struct mqtt5__property;
struct event;

namespace boxgate::mqtt {

class ConnectJob;

// MQTT v5 request/response properties of a command (ignored on 3.1.1).
// Empty strings and a zero expiry are left out of the packet.
struct ResponseProperties {
  std::string response_topic;
  std::string correlation_data;
  std::uint32_t expiry_s = 0;
  std::vector<std::pair<std::string, std::string>> user_properties;
};

// The session a connection asks for (set_session(), before start()). The
// daemons keep the default: a clean session, no will.
struct Session {
  // false: a persistent session (MQTT 5 Clean Start 0 with a Session Expiry
  // Interval; 3.1.1 Clean Session 0), so the broker keeps the subscriptions
  // and queues QoS > 0 messages while the client is away. Needs a client id
  // that stays the same across connections (MqttSettings::client_id).
  bool clean = true;
  std::uint32_t expiry_s = 0;  // MQTT 5 Session Expiry Interval (persistent only)
  // The MQTT will: what the broker publishes when the connection breaks
  // without a DISCONNECT. Empty topic: none.
  std::string will_topic;
  std::string will_payload;
  int will_qos = 1;
  bool will_retain = true;
};

class Client {
 public:
  // The reason of a TLS connection the broker closed before CONNACK, when
  // nothing more specific is known.
  static constexpr const char* kClosedDuringHandshake =
      "tls: the broker closed the connection during the handshake or before CONNACK";

  // Runs on the loop thread, inside libmosquitto's read call: hand the work
  // on and return; never block. The views are valid during the call only.
  using MessageHandler = std::function<void(std::string_view topic, std::string_view payload)>;
  // What became of one publish: true once the broker acknowledged it (PUBACK
  // or PUBCOMP with a success reason; for QoS 0, once written -- then from
  // inside publish()), false when it refused it or the connection ended
  // first. Called once, on the loop thread.
  using AckHandler = std::function<void(bool acknowledged)>;

  // Throws std::runtime_error naming mqtt_uri when the URI cannot be parsed.
  Client(EventLoop& loop, const MqttSettings& settings, const std::string& program, ops::Dependency& dependency);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Runs on the loop thread each time the broker granted every subscription
  // after a (re)connect; `session_present`: the broker kept this client's
  // session (persistent sessions only; the CONNACK's flag).
  using ReadyHandler = std::function<void(bool session_present)>;

  // Before start(): filters subscribed on every (re)connect, and their handler.
  void subscribe_on_connect(std::vector<std::string> filters, MessageHandler handler);
  // Before start(): the session (default clean, no will) and who hears that
  // the connection is ready.
  void set_session(Session session) { session_ = std::move(session); }
  void on_ready(ReadyHandler handler) { on_ready_ = std::move(handler); }
  void start();
  // Sends what is queued, then DISCONNECT, and closes. While the loop runs
  // (a drain) it returns at once and the loop finishes the job within
  // `timeout`; after the loop has ended it drives the socket itself and
  // returns within `timeout`. Publishing is refused from the first call on.
  // Calling it again is allowed (the second call finishes a pending stop).
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

  // Ends the connection at once, without DISCONNECT (the broker publishes
  // the will, as for a connection that broke), and connects again after
  // `delay`. A simulated outage; publishing fails until then.
  void interrupt(std::chrono::milliseconds delay);

  // Inside the message handler only: the value of the message's first MQTT
  // v5 user property `name`, if it has one (never on 3.1.1).
  std::optional<std::string> user_property(const char* name) const;
  // Inside the message handler only, MQTT 5 only: the Response Topic, the
  // Correlation Data and the Message Expiry Interval (the seconds left, as
  // the broker forwards it) of the message, if it has them.
  std::optional<std::string> response_topic() const;
  std::optional<std::string> correlation_data() const;
  std::optional<std::uint32_t> message_expiry() const;
  // Inside the message handler only: the broker sent it as a retained
  // message (stored on the topic, delivered because of a new subscription).
  bool message_retained() const noexcept { return message_retained_; }

  // CONNACK received and the connection not lost since (a write that found
  // the socket broken counts as lost at once, before the read event sees it).
  bool connected() const noexcept { return session_up_ && write_failed_.empty(); }
  // stop() was called and the connection is closed (DISCONNECT sent, or given up).
  bool stopped() const noexcept { return stopping_ && fd_ < 0; }
  int version() const noexcept { return static_cast<int>(settings_.version); }

  // Queues one message (written at once when the socket has room). False when
  // not connected, when the flow-control bound is reached, or when
  // libmosquitto refused it; false means nothing will be sent.
  bool publish(const std::string& topic, std::string_view payload, int qos,
               const ResponseProperties* v5 = nullptr, AckHandler on_ack = {}, bool retain = false);

 private:
  struct Callbacks;  // libmosquitto's C callbacks and the libevent handlers
  using KeyPasswordCallback = int (*)(char* buf, int size, int rwflag, void* handle);
  // CONNACK within this of the attempt's start (and of the lookup's end).
  static constexpr std::chrono::milliseconds kConnectTimeout{5000};

  void connect();
  // "" when done, else why not (a reason for the dependency).
  std::string configure(mosquitto* handle, KeyPasswordCallback key_password);
  // After mosquitto_connect_async, on the loop or back from the worker.
  void connect_started(int rc, int saved_errno);
  // The worker's side (connect_worker.cpp): hand handle_ over, take it back,
  // give it up.
  void connect_off_loop();
  void on_connect_done();
  void abandon_connect();
  std::string failure_reason(const std::string& why) const;
  void on_library_error(const char* line);
  void register_socket(int fd);
  void unregister_socket();
  void destroy_handle();
  void update_write_interest();
  bool socket_gone_quietly();
  void on_readable();
  void on_writable();
  void on_misc();
  void on_connack(int reason, int flags);
  void subscribe_all();
  void became_ready();
  std::string set_connect_properties(mosquitto* handle);
  void on_suback(int mid, int count, const int* granted);
  void on_published(int mid, int reason);
  void on_message(const mosquitto_message& message, const mqtt5__property* properties);
  void on_disconnected(int rc, int saved_errno);
  void drop(const std::string& why);
  void connection_down(const std::string& why);
  void schedule_reconnect();
  void finish_stop_now(std::chrono::milliseconds timeout);
  bool over_limit(std::size_t bytes) const noexcept;
  void fail_unacked();  // the connection is gone: every waiting AckHandler hears false
  void warn_limited(const std::string& line);

  EventLoop& loop_;
  MqttSettings settings_;
  ops::Dependency& dependency_;
  std::string host_;
  int port_ = 1883;
  bool tls_ = false;
  bool resolve_off_loop_ = false;  // host_ is a name, not an address literal
  std::vector<std::string> filters_;
  MessageHandler handler_;
  Session session_;
  ReadyHandler on_ready_;
  bool session_present_ = false;  // this connection's CONNACK said so
  const mqtt5__property* message_properties_ = nullptr;  // while the handler runs
  bool message_retained_ = false;                        // while the handler runs

  // The connection. Loop thread only, like everything below.
  mosquitto* handle_ = nullptr;  // one per connection attempt
  int fd_ = -1;                  // the socket our events watch; -1 when none
  event* read_event_ = nullptr;
  event* write_event_ = nullptr;
  // The attempt's off-loop connect while its worker runs (handle_ is null
  // then). Loop thread only: the worker holds its own reference to the job
  // and never sees these members.
  std::shared_ptr<ConnectJob> connecting_;
  event* connected_event_ = nullptr;  // readable: connecting_'s worker is done
  // The last job given up, until its worker ends: no new worker before then.
  std::weak_ptr<ConnectJob> abandoned_;
  bool awaiting_connack_ = false;
  bool session_up_ = false;
  bool stopping_ = false;
  bool ever_connected_ = false;
  int attempt_ = 0;
  // When this connection's CONNACK came: the backoff starts over only after
  // a connection that lasted kStableConnection, so one the broker drops at
  // once (a client id taken over by another device, a refusing ACL plugin)
  // backs off instead of reconnecting in a tight loop.
  std::chrono::steady_clock::time_point up_since_{};
  // Why attempts fail, logged once per change (a broker that keeps refusing
  // is one line, not one per retry).
  log::ProblemLog problems_;
  std::unordered_map<int, std::string> pending_subacks_;  // mid -> filter
  bool subscription_refused_ = false;
  // This attempt's failure details: the CONNACK refusal and libmosquitto's
  // first error line (TLS errors surface only there). Cleared per attempt.
  std::string refusal_;
  std::string library_error_;
  std::string last_failure_;  // the last attempt's reason (for TLS's vague closes); "" once connected

  // Flow control: mid -> bytes (and who waits for the PUBACK), for every
  // message the library still holds.
  struct Unacked {
    std::size_t bytes;
    AckHandler on_ack;
  };
  std::unordered_map<int, Unacked> unacked_;
  std::size_t unacked_bytes_ = 0;
  bool in_publish_ = false;
  int publishing_mid_ = 0;     // mid of the publish() in progress
  bool publish_done_ = false;  // its on_publish came before publish() returned (QoS 0)
  log::RateLimit warnings_;  // per-message warnings, at most one a second

  Timer misc_timer_;
  Timer retry_timer_;
  Timer connect_deadline_;
  Timer stop_deadline_;
  // A publish found the socket broken: why, and the drop that follows outside
  // the publisher's stack (drop() destroys the handle).
  std::string write_failed_;
  Timer write_failed_timer_;
};

}  // namespace boxgate::mqtt
