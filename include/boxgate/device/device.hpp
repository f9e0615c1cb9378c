#pragma once
// boxgate::device::Device: the device side of the boxgate contract
// (docs/contract.md, "MQTT (device side)"; the guide is docs/devices.md).
// One MQTT connection (libmosquitto on a boxgate EventLoop, as the daemons)
// serving one box, or many boxes on one connection (a device gateway).
//
//   boxgate::EventLoop loop;
//   boxgate::device::Device device(loop, settings);
//   device.on_command([](const Command& command, Reply reply) { reply.result({{"ok", true}}); });
//   device.start();
//   boxgate::device::run_until_signal(loop, device);  // SIGTERM/SIGINT: offline, DISCONNECT
//
// What it does for every box it serves:
// - presence: `online` retained (QoS 1) on {prefix}/{box}/status once the
//   box's subscriptions are granted, after every (re)connect; `offline`
//   before a clean stop; and, on a connection serving exactly one box,
//   `offline` as the MQTT will, so the broker announces a broken connection;
// - a persistent session by default (Clean Start 0, Session Expiry
//   session_expiry_s, the client id stable): QoS 1 commands sent while the
//   device was away arrive when it comes back, until their expiry;
// - commands on {prefix}/{box}/request/{id}: the handler gets the box, the
//   id, the method, the params and a Reply; the reply goes to the MQTT 5
//   Response Topic (only when it is this box's own response topic) with the
//   Correlation Data, else to {prefix}/{box}/response/{id}, as
//   {"id":..,"result":..} or {"id":..,"error":{"code":..,"message":..}};
// - a command seen again (QoS 1 redelivery, a retry with the same id) is not
//   run twice: a finished one is answered again from a per-box cache of
//   recent replies, one still running is ignored (its reply is coming);
// - a command whose MQTT 5 Message Expiry Interval has run out is not run,
//   nor a retained command or message (it would run again at every subscribe);
// - one-way messages on {prefix}/{box}/message/{id}, deduplicated by id too;
// - events ({prefix}/{box}/event/{name}) and state ({prefix}/{box}/state).
//
// Outgoing messages wait in a bounded outbox while the connection is down
// (and those the broker had not acknowledged when it broke are sent again).
// Overflow policy, written down: when the outbox is full (max_outbox_messages
// or max_outbox_bytes), a new event or state is refused (publish_* returns
// false, counted in Stats::refused); a reply or status first evicts the
// oldest queued event or state, and is refused only when replies and
// statuses alone fill the outbox (counted in Stats::replies_dropped).
//
// Threads: the loop thread only. Every method, every handler and every Reply
// runs on the thread that runs `loop`; nothing is locked. A Reply may be kept
// and used later (from a Timer on the same loop); once its Device is gone it
// does nothing.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "boxgate/ids.hpp"
#include "boxgate/loop/event_loop.hpp"

namespace boxgate::device {

struct Settings {
  std::string uri = "tcp://127.0.0.1:1883";  // tcp://, mqtt://, ssl://, mqtts://
  // The session's client id; keep it the same across restarts so the
  // persistent session is found again. Empty: the first box's id.
  std::string client_id;
  std::string username;  // the hardened broker: the box id
  std::string password;
  std::string ca_file;    // TLS: the CAs of the broker's certificate (empty: the system's)
  std::string cert_file;  // TLS client certificate and key (both or neither)
  std::string key_file;
  int version = 5;  // 5, or 3 for MQTT 3.1.1 (no response topic, no expiry)
  std::string prefix = "dev";
  std::vector<BoxId> boxes;  // at least one
  int keepalive_s = 30;
  bool persistent = true;                // false: a clean session per connection
  std::uint32_t session_expiry_s = 86400;  // MQTT 5: how long the broker keeps the session
  // Reconnect: the first retry at once, then jittered 25 ms * 2^n up to
  // this; the sequence starts over only after a connection that lasted 10 s,
  // so a connection the broker drops at once backs off.
  std::int64_t backoff_max_ms = 30000;
  bool presence = true;                   // online/offline status and will
  // false: every reply goes to {prefix}/{box}/response with the id only in
  // the payload (the contract's form for devices that cannot put it in the
  // topic); the Response Topic is then not used.
  bool id_in_topic = true;
  std::size_t reply_cache_per_box = 64;   // recent command ids (and replies) per box
  std::size_t reply_cache_bytes_per_box = 256 * 1024;
  std::size_t max_outbox_messages = 1000;
  std::size_t max_outbox_bytes = 4 * 1024 * 1024;
};

// One command as the handler sees it. The views point into the message and
// are valid during the handler call only.
struct Command {
  BoxId box;
  RequestId id;
  std::string method;       // the payload's "method" when a string, else ""
  nlohmann::json params;    // the payload's "params" (null when absent)
  std::string_view payload; // the whole payload as sent
  std::string traceparent;  // the MQTT 5 user property, when the caller gave one
};

// A one-way message (POST /v1/devices/{box}/messages).
struct Message {
  BoxId box;
  RequestId id;
  std::string_view payload;
};

class Device;
struct DeviceCore;

// The answer to one command; copyable, and the first answer wins (later ones
// return false). Loop thread only.
class Reply {
 public:
  bool result(const nlohmann::json& result);
  bool error(std::string_view code, std::string_view message);
  // A complete reply document (its "id" must be the command's); sent as is.
  bool raw(std::string payload);
  bool answered() const noexcept;

 private:
  friend struct DeviceCore;
  struct State;
  explicit Reply(std::shared_ptr<State> state) : state_(std::move(state)) {}
  std::shared_ptr<State> state_;
};

struct Stats {
  std::uint64_t commands = 0;         // handed to the handler
  std::uint64_t duplicates = 0;       // seen again: answered from the cache or ignored
  std::uint64_t expired = 0;          // arrived with their expiry run out: not run
  std::uint64_t rejected = 0;         // not a command of a served box, retained, or not JSON
  std::uint64_t messages = 0;         // one-way messages handed to the handler
  std::uint64_t replies = 0;          // replies acknowledged by the broker
  std::uint64_t replies_dropped = 0;  // replies the full outbox refused
  std::uint64_t published = 0;        // events and states acknowledged
  std::uint64_t refused = 0;          // events and states refused (outbox full, or the broker)
  std::uint64_t resent = 0;           // sent again after the connection broke before the PUBACK
  std::uint64_t connects = 0;         // connections made ready
};

class Device {
 public:
  using CommandHandler = std::function<void(const Command&, Reply)>;
  using MessageHandler = std::function<void(const Message&)>;
  // A message on a box's own topic `{prefix}/{box}/<suffix>` (see
  // subscribe_box_topic): where desired state and later kinds plug in.
  using TopicHandler = std::function<void(const BoxId& box, std::string_view suffix, std::string_view payload)>;
  // Each time the connection is ready (true: every box subscribed and
  // announced online) or lost (false).
  using ConnectionHandler = std::function<void(bool up)>;

  // Throws std::invalid_argument on settings that cannot work (no box, a bad
  // URI, a box id twice).
  Device(EventLoop& loop, Settings settings);
  ~Device();
  Device(const Device&) = delete;
  Device& operator=(const Device&) = delete;

  // Before start().
  void on_command(CommandHandler handler);
  void on_message(MessageHandler handler);
  void on_connection(ConnectionHandler handler);
  // Subscribes `{prefix}/{box}/<suffix>` (MQTT wildcards allowed in the
  // suffix) for every box, on every connection.
  void subscribe_box_topic(std::string suffix, TopicHandler handler);

  void start();
  // Announces every box offline (presence on and connected), waits for the
  // broker's PUBACKs of those statuses (at most half of `timeout`: a broker
  // whose Receive Maximum holds some back would otherwise lose them to the
  // DISCONNECT), then DISCONNECTs; the loop finishes within `timeout`.
  void stop(std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));
  // After stop(), once stopped(): connects again with the same settings and
  // session (a persistent one finds what was queued for its boxes); the
  // boxes announce `online` once subscribed, as after any connect, and
  // on_connection(true) follows. False, doing nothing, while the stop is not
  // finished or when the device was never stopped. A device that sleeps
  // (goes visibly offline for a while) is stop() then resume().
  bool resume();
  // Breaks the connection without DISCONNECT (the will fires) and reconnects
  // after `delay`: a simulated outage. Nothing after stop() (until resume()).
  void interrupt(std::chrono::milliseconds delay);

  // QoS 1. False when refused (outbox full, or not a served box / bad name).
  bool publish_event(const BoxId& box, std::string_view name, std::string payload, std::string traceparent = {});
  bool publish_state(const BoxId& box, std::string payload);

  bool connected() const noexcept;
  // stop() was called and the connection is closed.
  bool stopped() const noexcept;
  const Stats& stats() const noexcept;
  const std::vector<BoxId>& boxes() const noexcept;
  const std::string& client_id() const noexcept;

 private:
  std::shared_ptr<DeviceCore> core_;
};

// Runs `loop` until SIGTERM or SIGINT, then stops `device` (offline,
// DISCONNECT) and returns once it is done (at most `timeout` later).
void run_until_signal(EventLoop& loop, Device& device,
                      std::chrono::milliseconds timeout = std::chrono::milliseconds(2000));

}  // namespace boxgate::device
