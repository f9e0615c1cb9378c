#pragma once
// WebhookFeed: delivers the stream entries one endpoint wants, at least
// once, from whichever gateway replica is alive (docs/webhooks.md).
//
// Each source stream the endpoint reads ({prefix}/commands, {prefix}/presence,
// {prefix}/events, and {prefix}/_webhooks/replay) has a consumer group
// `webhook:<endpoint>`, created at `$` (an endpoint gets what happens after
// it was added; one that vanished while the feed ran, at `0`); every replica is a consumer named by its instance. An entry
// stays pending in the group (Redis's PEL) from the read until it is
// delivered (a 2xx) or dead-lettered, so:
//   - a replica reads new entries (XREADGROUP >) while it holds fewer than
//     max_held entries and max_held_bytes of bodies; entries the endpoint
//     does not want (kind, box pattern) are acknowledged at once;
//   - a delivery that fails (not 2xx, no answer within the timeout) is tried
//     again after an exponential, jittered backoff (retry_initial, doubling
//     up to 10 min, each uniform in [half, full]), until retry_for has passed since the entry was written; then
//     it is added to the dead-letter stream {prefix}/_webhooks/dead and
//     acknowledged;
//   - a replica refreshes the idle time of what it holds every lease/3
//     (XCLAIM ... JUSTID to itself); entries idle for a lease belong to a
//     replica that died, and any replica takes them over (XAUTOCLAIM) and
//     delivers them; at start a replica first reads its own pending entries
//     (a restart with the same instance name).
// Deliveries of one endpoint run at most max_in_flight at a time; order is
// not promised (each carries its stream id). Nothing here takes a URL from
// anything but the endpoint's configuration.
//
// Memory: at most max_held entries and about max_held_bytes (+ one read:
// kReadCount small entries, or kEventReadCount events) of bodies per endpoint; the HTTP client holds one copy
// of each body in flight.
//
// Thread ownership: loop thread only. Owned through a shared_ptr: Redis and
// HTTP callbacks hold a weak_ptr, so an endpoint removed by a reload is
// destroyed with its answers still on the way.

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "boxgate/http/client.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"
#include "notify/webhook_endpoints.hpp"
#include "notify/webhook_message.hpp"

namespace boxgate::gateway {

struct WebhookSettings {
  std::chrono::milliseconds timeout{10000};
  std::chrono::milliseconds retry_for{86400000};
  std::chrono::milliseconds retry_initial{1000};
  std::size_t max_in_flight = 16;  // per endpoint, unless it sets its own
  std::size_t max_held = 1000;
  std::size_t max_held_bytes = 16 << 20;
  std::chrono::milliseconds lease{30000};
  std::int64_t dead_maxlen = 10000;
  std::chrono::milliseconds poll{10};  // how often a quiet stream is read again
  std::string consumer;                // this replica's name in the groups
};

class WebhookFeed : public std::enable_shared_from_this<WebhookFeed> {
 public:
  // Entries one read asks for: outcome and presence bodies are at most about
  // 1 KiB, an event's up to 6 x max_event_bytes (escaped control bytes), so
  // the event stream is read in smaller steps (what one read adds beyond
  // max_held_bytes is the worst case).
  static constexpr std::size_t kReadCount = 64;
  static constexpr std::size_t kEventReadCount = 8;

  WebhookFeed(EventLoop& loop, redis::Commands& redis, http::Client& client, const Topics& topics,
              WebhookEndpoint endpoint, WebhookSettings settings, ops::Metrics& metrics);
  ~WebhookFeed();

  // Starts reading (creates the groups it needs).
  void start();
  // A reload changed the endpoint (same name): the next attempt uses it.
  void update(WebhookEndpoint endpoint);
  const WebhookEndpoint& endpoint() const noexcept { return endpoint_; }
  std::size_t held() const noexcept { return held_.size(); }
  std::size_t in_flight() const noexcept { return in_flight_; }
  // A drain: what is in flight finishes; nothing is read, claimed or sent anew
  // (what this replica holds stays pending: another takes it after a lease).
  void pause() noexcept { paused_ = true; }

  // The group name of an endpoint on each source stream.
  static std::string group_name(const std::string& endpoint) { return "webhook:" + endpoint; }

 private:
  struct Source {
    WebhookSource kind;
    std::string stream;
    bool group_ready = false;
    bool group_lost = false;         // it existed and went: made again from the stream's start
    bool busy = false;               // a read, claim or group creation is on its way
    bool claim_due = false;          // a claim (XAUTOCLAIM) waits for the read in flight
    bool history_done = false;       // our own pending entries were read again
    std::string history_after = "0";
    std::string claim_cursor = "0-0";
  };
  struct Delivery {
    std::size_t source;
    std::string entry_id;
    WebhookMessage message;
    int attempts = 0;
    std::chrono::steady_clock::time_point due;
    bool in_flight = false;
    bool dead_letter_sent = false;
    std::string last_error;
  };
  using Key = std::pair<std::size_t, std::string>;  // source, entry id

  void tick();
  void maintain();
  void read(std::size_t source);
  void create_group(std::size_t source);
  void on_entries(std::size_t source, const struct redisReply* entries, bool from_history);
  void claim(std::size_t source);
  void keep_alive(std::size_t source);
  void send_due();
  void send(const Key& key, Delivery& d);
  void answered(const Key& key, http::Response response);
  void dead_letter(const Key& key, Delivery& d);
  void ack(std::size_t source, const std::vector<std::string>& ids);
  void forget(const Key& key);
  bool room() const noexcept;
  std::size_t max_in_flight() const noexcept;
  void set_gauges();

  EventLoop& loop_;
  redis::Commands& redis_;
  http::Client& client_;
  const Topics& topics_;
  WebhookEndpoint endpoint_;
  WebhookSettings settings_;
  std::string group_;
  std::vector<Source> sources_;
  std::map<Key, Delivery> held_;
  std::size_t held_bytes_ = 0;
  std::size_t in_flight_ = 0;
  bool paused_ = false;
  Timer tick_timer_;
  Timer maintain_timer_;
  std::chrono::steady_clock::time_point next_keep_alive_{};

  ops::Counter& delivered_;
  ops::Counter& failed_;
  ops::Counter& dead_lettered_;
  ops::Counter& lost_;
  ops::Counter& claimed_;
  ops::Gauge& held_gauge_;
  ops::Gauge& lag_gauge_;
};

}  // namespace boxgate::gateway
