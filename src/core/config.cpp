#include "boxgate/config.hpp"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>

#include "boxgate/logging.hpp"
#include "boxgate/mqtt/uri.hpp"
#include "boxgate/redis/slot_map.hpp"
#include "boxgate/topics.hpp"

namespace boxgate {

namespace {
constexpr std::int64_t kMaxInt = std::numeric_limits<std::int32_t>::max();

void declare_http(Options& o, HttpSettings& h) {
  o.add("http_host", &h.host, "address the HTTP server binds");
  o.add("http_port", &h.port, 0, 65535, "HTTP port (0 picks a free one)");
  o.add("http_backlog", &h.backlog, 1, 65535, "listen backlog");
  o.add("http_max_connections", &h.max_connections, 1, 1000000,
        "open client connections at most; more are closed at once");
  o.add("http_max_header_bytes", &h.max_header_bytes, 1024, 1 << 20, "request line + headers at most");
  o.add("http_idle_timeout_ms", &h.idle_timeout_ms, 100, 3600000,
        "time allowed to send headers/body, and to idle between keep-alive requests");
}

void declare_redis(Options& o, RedisSettings& r) {
  o.add("redis_mode", &r.mode_name,
        "standalone (redis_host:redis_port), sentinel (the master redis_sentinels name) or cluster "
        "(seeds in redis_nodes)");
  o.add("redis_nodes", &r.nodes, "cluster seeds: host:port,[v6]:port,... (redis_mode cluster only)");
  o.add("redis_host", &r.host, "Redis host (IPv4/IPv6 literal or name); standalone mode");
  o.add("redis_port", &r.port, 1, 65535, "Redis port; standalone mode");
  o.add("redis_sentinels", &r.sentinel_list,
        "sentinel mode: the sentinels to ask, host:port,... ([::1]:26379 for IPv6), tried in order");
  o.add("redis_master_name", &r.master_name, "sentinel mode: the master's name in the sentinels' config");
  o.add("redis_sentinel_username", &r.sentinel_username,
        "sentinel mode: ACL user to AUTH as on the sentinels (empty: AUTH with the password alone)");
  o.add("redis_sentinel_password", &r.sentinel_password,
        "sentinel mode: the sentinels' own password (empty: no AUTH to the sentinels)", true);
  o.add("redis_sentinel_timeout_ms", &r.sentinel_timeout_ms, 10, 60000,
        "sentinel mode: time one sentinel gets to connect and answer before the next is asked");
  o.add("redis_username", &r.username, "Redis ACL user to AUTH as (empty: AUTH with the password alone)");
  o.add("redis_password", &r.password, "Redis password (empty: no AUTH)", true);
  o.add("redis_backoff_max_ms", &r.backoff_max_ms, 10, 600000, "cap of the jittered reconnect backoff");
  o.add("redis_heartbeat_ms", &r.heartbeat_ms, 50, 60000, "PING period on the command connection");
  o.add("redis_stall_after_ms", &r.stall_after_ms, 50, 600000,
        "no reply and no bytes moving this long while a PING waits: Redis stalled (not ready)");
  o.add("redis_dead_after_ms", &r.dead_after_ms, 100, 600000,
        "no reply and no bytes moving this long while a PING waits: reconnect");
}

// Sets r.mode and r.sentinels from their text; throws ConfigError.
void check_redis_mode(RedisSettings& r) {
  if (r.mode_name == "standalone") {
    r.mode = RedisMode::standalone;
  } else if (r.mode_name == "sentinel") {
    r.mode = RedisMode::sentinel;
  } else if (r.mode_name == "cluster") {
    r.mode = RedisMode::cluster;
  } else {
    throw ConfigError("redis_mode", "must be standalone, sentinel or cluster, not '" + r.mode_name + "'");
  }
  r.sentinels.clear();
  for (const std::string& entry : r.sentinel_list) {
    std::string why;
    auto address = parse_redis_address(entry, &why);
    if (!address) throw ConfigError("redis_sentinels", "'" + entry + "' " + why);
    r.sentinels.push_back(*address);
  }
  if (r.mode != RedisMode::sentinel) return;
  if (r.sentinels.empty()) throw ConfigError("redis_sentinels", "must name at least one sentinel when redis_mode=sentinel");
  if (!is_valid_id(r.master_name)) throw ConfigError("redis_master_name", "'" + r.master_name + "' is not a valid name");
  if (!r.sentinel_username.empty() && r.sentinel_password.empty()) {
    throw ConfigError("redis_sentinel_password", "must be set when redis_sentinel_username is");
  }
}

void check_redis(Options& o, RedisSettings& r) {
  o.check([&r] {
    check_redis_mode(r);
    if (!r.username.empty() && r.password.empty()) {
      throw ConfigError("redis_password", "must be set when redis_username is");
    }
    if (r.stall_after_ms > r.dead_after_ms) {
      throw ConfigError("redis_stall_after_ms", "must not exceed redis_dead_after_ms");
    }
    if (r.mode == RedisMode::cluster && r.nodes.empty()) {
      throw ConfigError("redis_nodes", "must name at least one seed node when redis_mode is cluster");
    }
    if (r.mode != RedisMode::cluster && !r.nodes.empty()) {
      throw ConfigError("redis_nodes", "is only read when redis_mode is cluster");
    }
    for (const std::string& node : r.nodes) {
      if (!redis::parse_node_address(node)) {
        throw ConfigError("redis_nodes", "'" + node + "' is not host:port (IPv6: [addr]:port)");
      }
    }
  });
}

// Browsers: which Origin and Host headers the gateway serves
// (api/browser_guard.hpp). An entry that could never equal a header a
// browser sends is a start-up error, not a silent refusal of every call.
void declare_browser_checks(Options& o, GatewayConfig& c) {
  o.add("allowed_origins", &c.allowed_origins,
        "cross-site origins served besides the gateway's own, http(s)://host[:port],... (others: 403)");
  o.add("allowed_hosts", &c.allowed_hosts, "Host header values served, name or name:port,... (empty: any; others: 421)");
  auto plain = [](const std::string& s) {
    return !s.empty() && std::none_of(s.begin(), s.end(), [](unsigned char ch) {
      return ch <= ' ' || ch >= 0x7f || ch == '/' || ch == ',' || ch == '?' || ch == '#' || ch == '@';
    });
  };
  o.check([&c, plain] {
    for (const std::string& origin : c.allowed_origins) {
      auto scheme = origin.find("://");
      std::string name = origin.substr(0, scheme);
      if (scheme == std::string::npos || (name != "http" && name != "https") || !plain(origin.substr(scheme + 3))) {
        throw ConfigError("allowed_origins", "'" + origin + "' is not http(s)://host[:port]");
      }
    }
    for (const std::string& host : c.allowed_hosts) {
      if (!plain(host)) throw ConfigError("allowed_hosts", "'" + host + "' is not a host or host:port");
    }
  });
}

void declare_common(Options& o, std::string& prefix, HttpSettings& http, RedisSettings& redis,
                    MqttSettings& mqtt, LogSettings& log) {
  declare_prefix(o, prefix);
  declare_http(o, http);
  declare_redis(o, redis);
  check_redis(o, redis);
  declare_mqtt(o, mqtt);
  declare_log(o, log);
}
}  // namespace

std::optional<RedisAddress> parse_redis_address(const std::string& text, std::string* why) {
  std::string host, port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      *why = "is not [v6-address]:port";
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos || text.find(':') != colon) {
      *why = "is not host:port (write an IPv6 address as [addr]:port)";
      return std::nullopt;
    }
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
  }
  // A name or IPv4 literal, or inside brackets an IPv6 literal (hex digits,
  // ':', '.', and a %zone): anything else could not be printed back
  // unambiguously, and no resolver would take it.
  auto allowed = [bracketed = text.front() == '['](unsigned char c) {
    return std::isalnum(c) || c == '.' || c == '-' || c == '_' || (bracketed && (c == ':' || c == '%'));
  };
  if (!std::all_of(host.begin(), host.end(), allowed) ||
      (text.front() == '[' && host.find(':') == std::string::npos)) {
    *why = "has a host that is neither a name, an IPv4 address nor a bracketed IPv6 address";
    return std::nullopt;
  }
  int number = 0;
  auto [end, error] = std::from_chars(port.data(), port.data() + port.size(), number);
  if (host.empty() || port.empty() || error != std::errc() || end != port.data() + port.size() || number < 1 ||
      number > 65535) {
    *why = "needs a host and a port 1..65535";
    return std::nullopt;
  }
  return RedisAddress{host, number};
}

std::string to_string(const RedisAddress& address) {
  bool v6 = address.host.find(':') != std::string::npos;
  return (v6 ? "[" + address.host + "]" : address.host) + ":" + std::to_string(address.port);
}

void declare_prefix(Options& o, std::string& prefix) {
  o.add("prefix", &prefix, "topic/channel prefix");
  o.check([&prefix] {
    if (!is_valid_prefix(prefix)) throw ConfigError("prefix", "'" + prefix + "' is not /-separated ids");
  });
}

void declare_mqtt(Options& o, MqttSettings& m) {
  o.add("mqtt_uri", &m.uri, "MQTT broker, tcp://host:port, or ssl://host:port (mqtts://) for TLS");
  o.add("mqtt_client_id", &m.client_id, "MQTT client id (empty: program-<random UUID>, which no other client can guess)");
  o.add("mqtt_username", &m.username, "MQTT user name");
  o.add("mqtt_password", &m.password, "MQTT password", true);
  o.add("mqtt_version", &m.version, 3, 5, "MQTT protocol: 3 (3.1.1) or 5");
  o.add("mqtt_qos", &m.qos, 0, 2, "QoS of commands and reply subscriptions");
  o.add("mqtt_backoff_max_ms", &m.backoff_max_ms, 100, 600000, "cap of the reconnect backoff");
  o.add("mqtt_keepalive_s", &m.keepalive_s, 5, 3600,
        "MQTT keep-alive interval (a silent broker is given up after about twice this)");
  o.add("mqtt_ca_file", &m.ca_file, "ssl:// only: PEM file of the CAs that sign the broker's certificate "
                                    "(empty: the system's CA store); the peer is always verified");
  o.add("mqtt_cert_file", &m.cert_file,
        "ssl:// only: PEM file of this client's certificate, for a broker with require_certificate "
        "(needs mqtt_key_file; empty: none)");
  o.add("mqtt_key_file", &m.key_file, "ssl:// only: PEM file of the private key of mqtt_cert_file");
  o.add("mqtt_key_password", &m.key_password, "passphrase of an encrypted mqtt_key_file (empty: not encrypted)",
        true);
  o.add("mqtt_max_unacked", &m.max_unacked, 1, 60000,
        "publishes not yet acknowledged by the broker, at most; more are refused (503 mqtt_unavailable)");
  o.add("mqtt_max_unacked_bytes", &m.max_unacked_bytes, 1024, 1LL << 40,
        "bytes (topic + payload) of those publishes, at most");
  o.check([&m] {
    if (m.version == 4) throw ConfigError("mqtt_version", "must be 3 or 5");
    std::string why;
    if (!mqtt::parse_broker_uri(m.uri, &why)) throw ConfigError("mqtt_uri", "'" + m.uri + "' " + why);
    // Checked here, not at the first connection: a path that cannot work is a
    // start-up error, not an endless retry.
    for (const auto& [key, path] : {std::pair<const char*, const std::string&>{"mqtt_ca_file", m.ca_file},
                                    {"mqtt_cert_file", m.cert_file},
                                    {"mqtt_key_file", m.key_file}}) {
      if (!path.empty() && ::access(path.c_str(), R_OK) != 0) throw ConfigError(key, "cannot read '" + path + "'");
    }
    if (m.cert_file.empty() != m.key_file.empty()) {
      throw ConfigError(m.cert_file.empty() ? "mqtt_cert_file" : "mqtt_key_file",
                        "mqtt_cert_file and mqtt_key_file go together");
    }
    if (!m.key_password.empty() && m.key_file.empty()) {
      throw ConfigError("mqtt_key_password", "is set but mqtt_key_file is not");
    }
  });
}

void declare_log(Options& o, LogSettings& l) {
  o.add("log_level", &l.level, "trace, debug, info, warn, error, critical or off");
  o.add("log_json", &l.json, "one JSON object per log line");
  o.add("log_levels", &l.levels,
        "per-component levels over log_level, e.g. http=warn,mqtt=debug (components: http, redis, mqtt, "
        "gateway, bridge, ops, devsim, access)");
  o.check([&l] {
    std::string problem;
    if (!log::parse_levels(l.levels, &problem)) throw ConfigError("log_levels", problem);
  });
  o.check([&l] {
    for (const char* ok : {"trace", "debug", "info", "warn", "error", "critical", "off"}) {
      if (l.level == ok) return;
    }
    throw ConfigError("log_level", "'" + l.level + "' is not a level");
  });
}

void declare_gateway(Options& o, GatewayConfig& c) {
  declare_common(o, c.prefix, c.http, c.redis, c.mqtt, c.log);
  o.add("ops_host", &c.ops_host, "address of the separate ops listener (empty: 127.0.0.1)");
  o.add("ops_port", &c.ops_port, 0, 65535,
        "port of a separate listener for /healthz, /readyz, /metrics (0: served on http_port)");
  // Hashes, not tokens -- but a weak token's hash can be guessed offline, so
  // the value is kept out of the start-up line (the names and scopes are logged).
  o.add("api_tokens", &c.api_tokens,
        "API tokens: name:sha256hex:scope|scope,... or a JSON file of them (empty: API open to all)", true);
  o.add("default_timeout_ms", &c.default_timeout_ms, 1, kMaxInt, "timeout when the caller gives none");
  o.add("max_timeout_ms", &c.max_timeout_ms, 1, kMaxInt, "largest timeout_ms a caller may ask");
  o.add("max_async_timeout_ms", &c.max_async_timeout_ms, 1, kMaxInt,
        "largest timeout_ms of an async command (Prefer: respond-async)");
  o.add("result_ttl_ms", &c.result_ttl_ms, 1, kMaxInt,
        "the bridge's result_ttl_ms: a command record lives its timeout plus this");
  o.add("instance", &c.instance, "this gateway's name in command records (empty: hostname-pid)");
  o.add("message_ack_timeout_ms", &c.message_ack_timeout_ms, 1, kMaxInt,
        "a one-way message not acknowledged by the broker within this is answered 503");
  o.add("offline_policy", &c.offline_policy,
        "a command for a box whose presence says offline: wait (sent; waits its timeout) or fail (404 at once)");
  o.add("max_body_bytes", &c.max_body_bytes, 2, 64 << 20, "largest command body");
  o.add("max_pending", &c.max_pending, 1, 10000000, "commands waiting at once, gateway-wide");
  o.add("max_pending_per_device", &c.max_pending_per_device, 1, 10000000, "commands waiting at once per box");
  o.add("max_pending_bytes", &c.max_pending_bytes, 1 << 20, 1LL << 40,
        "bytes waiting commands may hold (payload + 4 KiB each), gateway-wide");
  // Queued commands (docs/contract.md, "Queued commands").
  o.add("max_queue_ttl_ms", &c.max_queue_ttl_ms, 1, 365LL * 86400000, "largest ttl_ms of a queued command");
  o.add("max_queued_per_device", &c.max_queued_per_device, 1, 10000,
        "commands one box's queue may hold; more are 429 queue_full");
  o.add("max_queue_bytes_per_device", &c.max_queue_bytes_per_device, 4096, 1LL << 32,
        "bytes one box's queue may hold in Redis (entries and order); more are 429 queue_full");
  o.add("max_queue_bytes", &c.max_queue_bytes, 4096, 1LL << 40,
        "bytes all queues together may hold in Redis; more are 429 queue_full");
  o.add("token_max_queue_bytes", &c.token_max_queue_bytes, 0, 1LL << 40,
        "bytes one API token's queued commands may hold in Redis, all boxes together; more are 429 queue_full "
        "(0: a quarter of max_queue_bytes)");
  o.add("queue_sweep_ms", &c.queue_sweep_ms, 100, 3600000,
        "how often one gateway sweeps the queues (expiry, boxes whose wake was missed, claims of dead gateways)");
  o.add("outcome_stream_maxlen", &c.outcome_stream_maxlen, 0, 1LL << 32,
        "entries kept in the outcome stream {prefix}/commands (0: this gateway writes none)");
  o.add("webhooks", &c.webhooks, "JSON file of webhook endpoints, reloaded on SIGHUP (empty: no webhooks)");
  o.add("webhook_timeout_ms", &c.webhook_timeout_ms, 100, 600000,
        "a webhook attempt not answered 2xx within this is retried");
  o.add("webhook_retry_for_ms", &c.webhook_retry_for_ms, 1000, 30LL * 86400000,
        "a webhook delivery is retried this long after its change, then dead-lettered");
  o.add("webhook_retry_initial_ms", &c.webhook_retry_initial_ms, 10, 600000,
        "a failed webhook attempt is retried after about this (jittered), doubling each time up to 10 min");
  o.add("webhook_max_in_flight", &c.webhook_max_in_flight, 1, 1024,
        "webhook deliveries in flight per endpoint on this gateway (an endpoint may set its own)");
  o.add("webhook_max_held", &c.webhook_max_held, 1, 1000000,
        "entries one webhook endpoint may hold undelivered on this gateway; then it reads no more");
  o.add("webhook_max_held_bytes", &c.webhook_max_held_bytes, 4096, 1LL << 34,
        "body bytes one webhook endpoint may hold undelivered on this gateway; then it reads no more");
  o.add("webhook_lease_ms", &c.webhook_lease_ms, 1000, 3600000,
        "a webhook delivery idle this long belongs to a stopped gateway: another takes it over");
  o.add("webhook_dead_maxlen", &c.webhook_dead_maxlen, 1, 1LL << 32,
        "entries kept in the webhook dead-letter stream {prefix}/_webhooks/dead");
  o.add("webhook_ca_file", &c.webhook_ca_file, "CA bundle (PEM) webhook receivers are verified against (empty: the system's)");
  o.add("dependency_grace_ms", &c.dependency_grace_ms, 0, 60000,
        "a new command waits this long for a reconnecting Redis/MQTT (0: refuse at once)");
  o.add("drain_timeout_ms", &c.drain_timeout_ms, 0, kMaxInt, "on SIGTERM, wait this long for in-flight commands");
  o.add("max_streams", &c.max_streams, 0, 1000000, "event streams (SSE) open at once; more are 429");
  o.add("sse_max_buffer_bytes", &c.sse_max_buffer_bytes, 4096, 1LL << 32,
        "bytes an event stream's reader has not taken yet, at most; then it is disconnected");
  o.add("sse_heartbeat_ms", &c.sse_heartbeat_ms, 10, 3600000, "a ': hb' comment on a quiet event stream this often");
  // Event reads bounded in bytes.
  o.add("events_page_max_bytes", &c.events_page_max_bytes, 4096, 1LL << 32,
        "a JSON event history page ends early (with next_after) before the event that would take its body over this");
  o.add("access_log", &c.access_log,
        "one info line per command, status or message call answered (logger access: method, box, request id, "
        "status, outcome, duration)");
  // Per-token limits (docs/security.md, "Per-token limits").
  o.add("token_max_pending", &c.token_max_pending, 0, 10000000,
        "commands (sync and async) one API token may have waiting on this gateway; more are 429 "
        "(0: a quarter of max_pending)");
  o.add("token_max_streams", &c.token_max_streams, 0, 1000000,
        "event streams one API token may have open on this gateway; more are 429 (0: a quarter of max_streams)");
  o.add("token_rate", &c.token_rate, 0, 10000000,
        "API requests per second one token may send to all gateways together (0: no limit); more are 429");
  o.add("token_burst", &c.token_burst, 1, 10000000, "API requests one token may send at once within token_rate");
  declare_browser_checks(o, c);
  o.check([&c] {
    if (c.default_timeout_ms > c.max_timeout_ms) {
      throw ConfigError("default_timeout_ms", "must not exceed max_timeout_ms");
    }
    if (c.max_pending_bytes < c.max_body_bytes) {
      throw ConfigError("max_pending_bytes", "must be at least max_body_bytes");
    }
    if (c.offline_policy != "wait" && c.offline_policy != "fail") {
      throw ConfigError("offline_policy", "must be wait or fail, not '" + c.offline_policy + "'");
    }
    if (c.max_async_timeout_ms < c.max_timeout_ms) {
      throw ConfigError("max_async_timeout_ms", "must be at least max_timeout_ms");
    }
    if (!c.instance.empty() && !is_valid_id(c.instance)) {
      throw ConfigError("instance", "'" + c.instance + "' must match the id pattern");
    }
    if (!c.ops_host.empty() && c.ops_port == 0) throw ConfigError("ops_port", "must be set when ops_host is");
    if (c.ops_port != 0 && c.ops_port == c.http.port && (c.ops_host.empty() || c.ops_host == c.http.host)) {
      throw ConfigError("ops_port", "must differ from http_port (0 serves the ops endpoints on http_port)");
    }
  });
}

void declare_bridge(Options& o, BridgeConfig& c) {
  c.http.port = 9101;
  c.http.host = "127.0.0.1";  // only the ops endpoints: /metrics stays on the host unless told otherwise
  declare_common(o, c.prefix, c.http, c.redis, c.mqtt, c.log);
  o.add("share_group", &c.share_group, "MQTT shared-subscription group (empty: none)");
  o.add("max_reply_bytes", &c.max_reply_bytes, 1, 256 << 20, "largest reply payload forwarded");
  o.add("result_ttl_ms", &c.result_ttl_ms, 1, kMaxInt, "how long a reply stays in its result key");
  o.add("queue_capacity", &c.queue_capacity, 1, 10000000, "replies held while Redis is unavailable");
  o.add("queue_max_bytes", &c.queue_max_bytes, 1 << 20, 1LL << 40,
        "payload bytes of replies queued or in flight to Redis, at most");
  o.add("presence_queue_capacity", &c.presence_queue_capacity, 1, 10000000,
        "boxes whose latest status update is held while Redis is unavailable");
  o.add("reply_inline_max_bytes", &c.reply_inline_max_bytes, 0, 256 << 20,
        "larger replies are published as a notice; the gateway reads the result key");
  o.add("drain_timeout_ms", &c.drain_timeout_ms, 0, kMaxInt, "on SIGTERM, time allowed to flush the queue");
  o.add("max_event_bytes", &c.max_event_bytes, 1, 256 << 20, "largest event or state payload forwarded");
  o.add("events_box_maxlen", &c.events_box_maxlen, 1, 1LL << 32,
        "entries kept in each box's event stream");
  o.add("events_fleet_maxlen", &c.events_fleet_maxlen, 1, 1LL << 32,
        "entries kept in the fleet event stream");
  // Bytes as well as entries: an entry counts its values + 64 B.
  o.add("events_box_max_bytes", &c.events_box_max_bytes, 1024, 1LL << 40,
        "bytes kept in each box's event stream (the newest event always)");
  o.add("events_fleet_max_bytes", &c.events_fleet_max_bytes, 1024, 1LL << 40,
        "bytes kept in the fleet event stream (the newest event always)");
  o.add("events_queue_max_bytes", &c.events_queue_max_bytes, 1 << 20, 1LL << 40,
        "bytes of events and states queued or in flight to Redis (payload + 128 each), at most");
  o.add("outcome_stream_maxlen", &c.outcome_stream_maxlen, 0, 1LL << 32,
        "entries kept in the outcome stream {prefix}/commands (0: this bridge writes none)");
  o.add("presence_stream_maxlen", &c.presence_stream_maxlen, 0, 1LL << 32,
        "entries kept in the presence stream {prefix}/presence (0: not written)");
  o.check([&c] {
    if (c.events_queue_max_bytes < c.max_event_bytes) {
      throw ConfigError("events_queue_max_bytes", "must be at least max_event_bytes");
    }
    if (c.queue_max_bytes < c.max_reply_bytes) {
      throw ConfigError("queue_max_bytes", "must be at least max_reply_bytes");
    }
    if (!c.share_group.empty() && !is_valid_id(c.share_group)) {
      throw ConfigError("share_group", "'" + c.share_group + "' is not a valid group name");
    }
  });
}

}  // namespace boxgate
