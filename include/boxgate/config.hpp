#pragma once
// The configuration of each daemon: one struct per daemon, made of slices that
// the modules receive (a module never reads the whole config). Defaults live
// here; declare_*() registers every key with Options (options.hpp) so the JSON
// file, BOXGATE_* environment and --flags all reach the same fields.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "boxgate/options.hpp"

namespace boxgate {

// How the daemons find Redis. standalone: redis_host:redis_port. sentinel:
// the master the sentinels name (redis_sentinels, redis_master_name), asked
// again before every connection (src/core/redis/sentinel_resolver.cpp).
// cluster: a Redis Cluster found through the seeds in redis_nodes; keys are
// routed by hash slot and reply channels use sharded pub/sub
// (SPUBLISH/SSUBSCRIBE), see docs/scale-out.md.
enum class RedisMode { standalone, sentinel, cluster };

// host:port; the host is a name or IPv4/IPv6 literal (written [::1]:26379).
struct RedisAddress {
  std::string host;
  int port = 0;
  bool operator==(const RedisAddress&) const = default;
};
// "host:port" or "[v6]:port" -> the address; nullopt and *why on bad input.
std::optional<RedisAddress> parse_redis_address(const std::string& text, std::string* why);
// For logs: host:port, or [host]:port when the host holds a ':'.
std::string to_string(const RedisAddress& address);

struct RedisSettings {
  RedisMode mode = RedisMode::standalone;
  std::string mode_name = "standalone";  // as configured; check_redis() sets `mode` from it
  std::string host = "127.0.0.1";
  std::int64_t port = 6379;
  // Cluster seeds, "host:port" or "[v6]:port": any reachable node tells the
  // rest (CLUSTER SLOTS). Checked at start-up (redis_nodes).
  std::vector<std::string> nodes;
  // Sentinel mode: the sentinels to ask, in order (parsed from the
  // redis_sentinels list), the master's name, and the sentinels' own AUTH
  // (sentinels may require a password other than the data nodes').
  std::vector<std::string> sentinel_list;
  std::vector<RedisAddress> sentinels;
  std::string master_name = "mymaster";
  std::string sentinel_username;
  std::string sentinel_password;  // secret
  std::int64_t sentinel_timeout_ms = 500;  // per sentinel asked: connect + answer
  // AUTH on every connection when a password is set: AUTH <username>
  // <password> (a Redis 6+ ACL user), or AUTH <password> without a username.
  std::string username;
  std::string password;  // secret: never logged, masked in --help and the start-up line
  std::int64_t backoff_max_ms = 400;    // cap of the jittered reconnect backoff (backoff.hpp)
  std::int64_t heartbeat_ms = 250;      // PING period on the command connection
  // No reply and no bytes moving for this long while a PING waits: Redis is
  // stalled (not ready; new commands wait in grace; nothing torn down).
  std::int64_t stall_after_ms = 500;
  // ... and for this long: dead (connections torn down and reconnected).
  // Seconds, not one: a real Redis pauses for a second or more on a fork
  // (BGSAVE, AOF rewrite) or a slow command, and tearing down then loses
  // every subscription and in-flight reply for nothing.
  std::int64_t dead_after_ms = 5000;
};

struct MqttSettings {
  std::string uri = "tcp://127.0.0.1:1883";
  std::string client_id;                 // empty: <program>-<random UUID> (not guessable)
  std::string username;
  std::string password;
  std::int64_t version = 5;              // 3 (3.1.1) or 5
  std::int64_t qos = 1;
  std::int64_t backoff_max_ms = 400;     // backoff.hpp
  std::int64_t keepalive_s = 10;         // libmosquitto accepts 5..65535
  // TLS (ssl:// or mqtts://). The broker's certificate is always verified:
  // its chain against ca_file (empty: the system's CA store) and its name
  // against the host of the URI.
  std::string ca_file;                   // PEM: the CAs of the broker's certificate
  std::string cert_file;                 // PEM: this client's certificate (with key_file, or neither)
  std::string key_file;                  // PEM: its private key
  std::string key_password;              // secret: the key's passphrase, when it is encrypted
  std::int64_t max_unacked = 20000;      // publishes the broker has not acknowledged yet, at most
  std::int64_t max_unacked_bytes = 64LL << 20;  // and their bytes (topic + payload)
};

struct HttpSettings {
  std::string host = "0.0.0.0";
  std::int64_t port = 8080;
  std::int64_t backlog = 4096;
  std::int64_t max_connections = 20000;
  std::int64_t max_header_bytes = 16384;
  std::int64_t idle_timeout_ms = 30000;   // reading headers/body and idle keep-alive
};

struct LogSettings {
  std::string level = "info";
  bool json = false;
  // Per-component levels over `level`: "http=warn,mqtt=debug" (logging.hpp).
  std::string levels;
};

struct GatewayConfig {
  std::string prefix = "dev";
  HttpSettings http;
  // /healthz, /readyz and /metrics on their own listener when ops_port is
  // set; otherwise on the API listener. ops_host empty: 127.0.0.1, loopback
  // unless told otherwise (/metrics names the tokens).
  std::string ops_host;
  std::int64_t ops_port = 0;
  // API tokens (src/gateway/api/auth.hpp): "" (the API is open), a comma list of
  // name:sha256hex:scope|scope, or the path of a JSON file of them.
  std::string api_tokens;
  RedisSettings redis;
  MqttSettings mqtt;
  LogSettings log;
  std::int64_t default_timeout_ms = 10000;
  std::int64_t max_timeout_ms = 60000;
  // Async commands (Prefer: respond-async) hold no HTTP call, so they may
  // wait longer: a firmware step takes minutes.
  std::int64_t max_async_timeout_ms = 3600000;
  // How long the bridge keeps a reply (its result_ttl_ms): a command record
  // lives its timeout plus this, so a late reply stays retrievable.
  std::int64_t result_ttl_ms = 60000;
  // This gateway's name in the command records it writes (empty: host-pid).
  std::string instance;
  // A one-way message is answered 503 when the broker has not acknowledged
  // it within this.
  std::int64_t message_ack_timeout_ms = 5000;
  // A command for a box whose presence says offline: "wait" (published; it
  // waits its timeout) or "fail" (404 device_offline at once, not published).
  std::string offline_policy = "wait";
  std::int64_t max_body_bytes = 256 * 1024;
  std::int64_t max_pending = 20000;
  std::int64_t max_pending_per_device = 1000;
  // Bytes the waiting commands may hold: each counts its payload plus
  // kPendingEntryBytes (docs/contract.md has the arithmetic).
  std::int64_t max_pending_bytes = 256LL << 20;
  // Queued commands (?ttl_ms): the longest wait, and the bounds of the
  // queues in Redis (per box in count and bytes, all boxes in bytes), and
  // how often one gateway sweeps them.
  std::int64_t max_queue_ttl_ms = 7LL * 86400000;
  std::int64_t max_queued_per_device = 100;
  std::int64_t max_queue_bytes_per_device = 1 << 20;
  std::int64_t max_queue_bytes = 256LL << 20;
  // One API token's queued entries, over all boxes (0: a quarter of max_queue_bytes).
  std::int64_t token_max_queue_bytes = 0;
  std::int64_t queue_sweep_ms = 5000;
  // The outcome stream {prefix}/commands (outcome_events.hpp): entries kept
  // (each at most kMaxOutcomeEntryBytes); 0: none written by this gateway.
  std::int64_t outcome_stream_maxlen = 100000;
  // Webhooks (docs/webhooks.md): the endpoint file (empty: none), an
  // attempt's timeout, how long a delivery is retried before it is
  // dead-lettered, deliveries in flight per endpoint, what one endpoint may
  // hold undelivered on this replica (entries, body bytes), the lease after
  // which another replica takes over a dead one's deliveries, the
  // dead-letter stream's cap, and a CA bundle trusted instead of the system's.
  std::string webhooks;
  std::int64_t webhook_timeout_ms = 10000;
  std::int64_t webhook_retry_for_ms = 86400000;
  std::int64_t webhook_retry_initial_ms = 1000;  // the first retry's delay; doubling up to 10 min
  std::int64_t webhook_max_in_flight = 16;
  std::int64_t webhook_max_held = 1000;
  std::int64_t webhook_max_held_bytes = 16LL << 20;
  std::int64_t webhook_lease_ms = 30000;
  std::int64_t webhook_dead_maxlen = 10000;
  std::string webhook_ca_file;
  // A new command that finds Redis or MQTT reconnecting waits this long for
  // it (only while the outage is younger than this), then gets the 503.
  std::int64_t dependency_grace_ms = 1000;
  // At least max_timeout_ms, so a command accepted just before SIGTERM can
  // still get its reply (plus the final result-key read).
  std::int64_t drain_timeout_ms = 65000;
  // Event streams (GET .../events with Accept: text/event-stream, /v1/events).
  std::int64_t max_streams = 1000;                // open at once; more are 429 too_many_streams
  std::int64_t sse_max_buffer_bytes = 1 << 20;    // unsent bytes a slow reader may hold, then cut off
  std::int64_t sse_heartbeat_ms = 15000;          // ": hb" comment this often on a quiet stream
  // Event reads bounded in bytes (docs/security.md, "Event reads"): a JSON
  // history page ends early (with next_after) before the event that would
  // take its body over this.
  std::int64_t events_page_max_bytes = 1 << 20;
  // One info line per command answered (logger "access"; access_log.hpp).
  bool access_log = true;
  // Per-token limits (docs/security.md, "Per-token limits"); a token file
  // entry may set its own. Shares of this gateway (0: a quarter of
  // max_pending / max_streams), and a request rate shared by all gateways
  // through Redis (a token bucket: token_rate per second, up to token_burst
  // at once; token_rate 0: no rate limit).
  std::int64_t token_max_pending = 0;
  std::int64_t token_max_streams = 0;
  std::int64_t token_rate = 1000;
  std::int64_t token_burst = 2000;
  // Browsers (src/gateway/api/browser_guard.hpp; docs/contract.md, "Browsers").
  // Origins besides the gateway's own whose requests are served, exactly as a
  // browser sends them ("https://app.example.com"); any other cross-site
  // Origin is 403 origin_not_allowed.
  std::vector<std::string> allowed_origins;
  // Host header values served (empty: any); others are 421 host_not_allowed.
  // Against DNS rebinding, where a page's own name points at this gateway.
  std::vector<std::string> allowed_hosts;
};

struct BridgeConfig {
  std::string prefix = "dev";
  std::string share_group;               // empty: plain subscriptions
  HttpSettings http;                     // the ops port (loopback unless told otherwise)
  RedisSettings redis;
  MqttSettings mqtt;
  LogSettings log;
  std::int64_t max_reply_bytes = 16 * 1024 * 1024;
  std::int64_t result_ttl_ms = 60000;
  std::int64_t queue_capacity = 10000;   // replies held while Redis is away
  std::int64_t queue_max_bytes = 256LL << 20;  // payload bytes queued or in flight to Redis
  // Boxes whose latest status update may wait while Redis is away (one
  // update per box is kept: presence is latest-wins); ~200 bytes each.
  std::int64_t presence_queue_capacity = 100000;
  // Larger replies are PUBLISHed as a small notice and read from the result
  // key by the gateway, so big payloads never sit in Redis's pub/sub output
  // buffer (32 MB hard limit per subscriber connection).
  std::int64_t reply_inline_max_bytes = 64 * 1024;
  std::int64_t drain_timeout_ms = 10000;
  // Device data plane (docs/events.md): events and state.
  std::int64_t max_event_bytes = 1 << 20;       // larger event/state payloads are dropped
  // Stream caps in entries (a stream over one is trimmed to 31/32 of it).
  std::int64_t events_box_maxlen = 1000;        // per box: {prefix}/{box}/events
  std::int64_t events_fleet_maxlen = 100000;    // fleet: {prefix}/events
  // Stream caps in bytes (each entry counts its values + 64 B; the newest
  // entry is always kept), so a device sending large events cannot make a
  // stream hold maxlen x max_event_bytes: Redis holds at most about
  // events_fleet_max_bytes + boxes x events_box_max_bytes for events.
  std::int64_t events_box_max_bytes = 1LL << 20;
  std::int64_t events_fleet_max_bytes = 256LL << 20;
  std::int64_t events_queue_max_bytes = 64LL << 20;  // held while Redis is away (payload + 128 B each)
  // The outcome stream {prefix}/commands (the bridge writes `succeeded`) and
  // the presence stream {prefix}/presence: entries kept; 0: not written.
  std::int64_t outcome_stream_maxlen = 100000;
  std::int64_t presence_stream_maxlen = 100000;
};

void declare_gateway(Options& options, GatewayConfig& config);
void declare_bridge(Options& options, BridgeConfig& config);

// Shared slices, also used by tools such as devsim.
void declare_mqtt(Options& options, MqttSettings& mqtt);
void declare_log(Options& options, LogSettings& log);
void declare_prefix(Options& options, std::string& prefix);

}  // namespace boxgate
