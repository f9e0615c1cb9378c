// boxgate-gateway: the HTTP front end. Publishes each command over MQTT and
// waits on its Redis reply channel. One thread: the loop (this one, after
// set-up) owns HTTP, both Redis connections, the MQTT connection, the pending
// commands and their timers.

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <iterator>
#include <optional>
#include <string_view>

#include "boxgate/config.hpp"
#include "boxgate/daemon.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/mqtt/client.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/subscriber.hpp"
#include "boxgate/topics.hpp"
#include "boxgate/version.hpp"
// main is where the gateway is assembled: it constructs each family's
// services and hands their handlers to the route table (routes.hpp), which
// alone knows the paths. It includes the family headers for that and nothing
// else of them; no family includes another.
#include "api/auth.hpp"
#include "api/browser_guard.hpp"
#include "api/rate_limiter.hpp"
#include "commands/command_api.hpp"
#include "commands/command_service.hpp"
#include "devices/device_api.hpp"
#include "devices/presence.hpp"
#include "events/event_api.hpp"
#include "notify/outcome_api.hpp"
#include "queue/queue_api.hpp"
#include "notify/dead_letters.hpp"
#include "notify/webhook_service.hpp"
#include "queue/queue_service.hpp"
#include "routes.hpp"
#include "streams/sse_streams.hpp"
#include "streams/stream_tail.hpp"

using namespace boxgate;

namespace {

// `boxgate-gateway hash-token < token.txt`: prints the hash to put in api_tokens.
int hash_token() {
  constexpr std::size_t kMaxInput = 64 * 1024;
  std::string input;
  std::istreambuf_iterator<char> in(std::cin), end;
  for (; in != end && input.size() < kMaxInput; ++in) input.push_back(*in);
  gateway::HashedToken hashed = gateway::hash_token_input(input);
  if (!hashed.hex) {
    std::fprintf(stderr, "boxgate-gateway: hash-token: %s\n", hashed.problem.c_str());
    return 2;
  }
  std::printf("%s\n", hashed.hex->c_str());
  return 0;
}

// Start-up lines about who may call: the token names and scopes (never the
// hashes), or a warning that anyone who reaches the port may command any box.
void log_access(const gateway::Authorizer& auth, const GatewayConfig& config) {
  auto logger = log::get("gateway");
  if (auth.open()) {
    logger->warn("no api_tokens configured: anyone who reaches {}:{} may command every box",
                 config.http.host, config.http.port);
    return;
  }
  for (const auto& token : auth.tokens()) logger->info("API token '{}' may command {}", token.name, token.scope_text());
}

// The limits of a token that sets none of its own: a share of 0 is a
// quarter of the gateway-wide limit, so no one token can fill it.
gateway::TokenLimits token_defaults(const GatewayConfig& config) {
  auto share = [](std::int64_t set, std::int64_t total) {
    return set > 0 ? set : std::max<std::int64_t>(1, total / 4);
  };
  return {share(config.token_max_pending, config.max_pending),
          config.max_streams == 0 ? 0 : share(config.token_max_streams, config.max_streams), config.token_rate,
          config.token_burst};
}

// SIGHUP: reads the api_tokens file again. A file that does not parse, or
// that lists no token (which would open the API to everyone), keeps the
// tokens in force, and the line says why. Connections and streams go on;
// requests already let through finish under the token they came with.
void reload_tokens(gateway::Authorizer& auth, const GatewayConfig& config) {
  auto logger = log::get("gateway");
  if (!gateway::names_token_file(config.api_tokens)) {
    logger->warn("SIGHUP: api_tokens is not a file; nothing to reload (restart to change the tokens)");
    return;
  }
  try {
    std::vector<gateway::ApiToken> tokens = gateway::parse_api_tokens(config.api_tokens);
    if (tokens.empty()) {
      throw ConfigError("api_tokens", "the file lists no token, which would open the API to everyone "
                                      "(restart with api_tokens empty to do that)");
    }
    auth.replace(std::move(tokens));
  } catch (const ConfigError& e) {
    logger->error("SIGHUP: token file not reloaded, keeping the {} tokens in force: {}", auth.tokens().size(),
                  e.what());
    return;
  }
  logger->info("SIGHUP: token file reloaded, {} tokens", auth.tokens().size());
  log_access(auth, config);
}

// The webhook endpoint file, read at start (an error exits 2 like any bad
// option) and on SIGHUP (an error keeps the endpoints in force).
std::vector<gateway::WebhookEndpoint> read_webhooks(const GatewayConfig& config) {
  try {
    return gateway::load_webhook_endpoints(config.webhooks);
  } catch (const gateway::WebhookConfigError& e) {
    throw ConfigError("webhooks", e.what());
  }
}

void reload_webhooks(gateway::WebhookService* webhooks, const GatewayConfig& config) {
  if (!webhooks) return;
  try {
    webhooks->apply(read_webhooks(config));
  } catch (const ConfigError& e) {
    log::get("webhooks")->error("SIGHUP: webhook file not reloaded, keeping {} endpoints: {}", webhooks->endpoints(),
                                e.what());
    return;
  }
  log::get("webhooks")->info("SIGHUP: webhook file reloaded, {} endpoints", webhooks->endpoints());
}

// `boxgate-gateway replay-webhooks [--endpoint NAME] [options]`: moves the
// dead letters (of one endpoint, or all) to the replay stream, where the
// running gateways deliver them again (notify/dead_letters.hpp). Exit 0
// with the count, 1 when Redis failed.
int replay_webhooks(int argc, char** argv) {
  GatewayConfig config;
  std::string endpoint;
  Options options("boxgate-gateway replay-webhooks", "deliver the webhook dead letters again");
  declare_gateway(options, config);
  options.add("endpoint", &endpoint, "replay only this endpoint's dead letters (empty: all)");
  if (auto exit_code = load_options_or_exit(options, argc, argv)) return *exit_code;
  log::setup(config.log.level, config.log.json, config.log.levels);
  Topics topics(config.prefix);
  EventLoop loop;
  ops::Metrics metrics;
  ops::Readiness readiness(metrics);
  int result = 1;
  std::size_t moved = 0;
  bool started = false;
  redis::Commands* redis_ptr = nullptr;
  redis::Commands redis(
      loop, config.redis, readiness.dependency("redis"),
      [&] {
        if (started) return;
        started = true;
        gateway::replay_dead_letters(*redis_ptr, topics,
                                     endpoint.empty() ? std::nullopt : std::optional<std::string>(endpoint),
                                     config.webhook_dead_maxlen, [&](bool ok, std::size_t n) {
                                       moved = n;
                                       result = ok ? 0 : 1;
                                       loop.stop_after(std::chrono::milliseconds(100));  // the last XDELs leave
                                     });
      },
      {});
  redis_ptr = &redis;
  Timer give_up(loop, [&loop] { loop.stop(); });
  give_up.start(std::chrono::seconds(30));
  redis.start();
  loop.run();
  redis.stop();
  std::printf("%s: %zu dead letters moved to the replay stream\n", result == 0 ? "ok" : "failed", moved);
  return result;
}

// hostname-pid, kept to the id pattern: unique enough to tell replicas apart
// in the records they write.
std::string default_instance_name() {
  char host[256] = {};
  if (gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
  std::string name;
  for (const char* c = host; *c && name.size() < 100; ++c) {
    bool ok = std::isalnum(static_cast<unsigned char>(*c)) || *c == '.' || *c == '-' || *c == '_';
    name.push_back(ok ? *c : '_');
  }
  if (name.empty() || !std::isalnum(static_cast<unsigned char>(name[0]))) name = "gw" + name;
  return name + "-" + std::to_string(getpid());
}

// The ops endpoints' listener: its own when ops_port is set.
std::optional<HttpSettings> ops_listener(const GatewayConfig& config) {
  if (config.ops_port == 0) return std::nullopt;
  HttpSettings ops = config.http;
  ops.host = config.ops_host.empty() ? "127.0.0.1" : config.ops_host;  // loopback unless told otherwise
  ops.port = config.ops_port;
  return ops;
}

// The commands family's port for presence (offline_policy=fail), served by
// the devices family's reader: the two meet here, not in each other.
class PresenceOfDevices final : public gateway::DevicePresence {
 public:
  explicit PresenceOfDevices(gateway::PresenceReader& reader) : reader_(reader) {}
  bool online(const BoxId& box, Callback done) override {
    return reader_.read(box, [done = std::move(done)](bool ok, std::optional<gateway::Presence> presence) {
      done(ok, presence ? std::optional<bool>(presence->online) : std::nullopt);
    });
  }

 private:
  gateway::PresenceReader& reader_;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc == 2 && (std::string_view(argv[1]) == "hash-token" || std::string_view(argv[1]) == "--hash-token")) {
    return hash_token();
  }
  if (argc >= 2 && std::string_view(argv[1]) == "replay-webhooks") return replay_webhooks(argc - 1, argv + 1);
  GatewayConfig config;
  Options options("boxgate-gateway", "HTTP gateway that runs commands on devices over MQTT");
  declare_gateway(options, config);
  std::vector<gateway::ApiToken> tokens;
  // Parsed with the other options, so a bad entry exits 2 naming api_tokens.
  options.check([&] { tokens = gateway::parse_api_tokens(config.api_tokens); });
  std::vector<gateway::WebhookEndpoint> endpoints;
  options.check([&] { endpoints = read_webhooks(config); });
  if (auto exit_code = load_options_or_exit(options, argc, argv)) return *exit_code;

  log::setup(config.log.level, config.log.json, config.log.levels);
  auto logger = log::get("gateway");
  logger->info("boxgate-gateway {} starting; config {}", kVersion, options.describe());
  warn_about_exposed_secrets(options);
  if (gateway::names_token_file(config.api_tokens)) {
    warn_if_writable_by_others(config.api_tokens, "the api_tokens file", "anyone who can write it can add a token");
  }
  raise_fd_limit();

  try {
    Topics topics(config.prefix);
    EventLoop loop;
    ops::Metrics metrics;
    ops::Readiness readiness(metrics);
    auto& redis_dep = readiness.dependency("redis");
    auto& subscriber_dep = readiness.dependency("redis_subscriber");
    auto& mqtt_dep = readiness.dependency("mqtt");

    redis::Subscriber subscriber(loop, config.redis, subscriber_dep);
    gateway::CommandService* service_ptr = nullptr;  // set below; both live until main returns
    // The subscriber cannot PING: when the command connection finds Redis dead,
    // the subscriber is restarted too.
    redis::Commands commands(
        loop, config.redis, redis_dep, [&service_ptr] { service_ptr->recheck_result_keys(); },
        [&subscriber] { subscriber.force_reconnect("Redis stopped answering PING"); });
    boxgate::mqtt::Client broker(loop, config.mqtt, "boxgate-gateway", mqtt_dep);

    gateway::SubscriberChannels channels(subscriber);
    gateway::RedisState state(commands);
    gateway::MqttPublisher publisher(broker);
    std::string instance = config.instance.empty() ? default_instance_name() : config.instance;
    logger->info("instance name in command records: {}", instance);
    gateway::CommandSettings settings{static_cast<std::size_t>(config.max_pending),
                                      static_cast<std::size_t>(config.max_pending_per_device),
                                      static_cast<std::size_t>(config.max_pending_bytes),
                                      static_cast<int>(config.mqtt.qos),
                                      std::chrono::milliseconds(config.dependency_grace_ms),
                                      config.result_ttl_ms,
                                      instance};
    gateway::PresenceReader presence(topics, commands);
    PresenceOfDevices presence_of_devices(presence);
    // Every state change this gateway sets, on the command connection.
    StreamAppender outcome_stream(commands, topics.outcome_stream(), config.outcome_stream_maxlen);
    gateway::StreamOutcomes outcomes(outcome_stream);
    gateway::CommandService service(
        loop, topics, settings,
        {channels, state, publisher, config.offline_policy == "fail" ? &presence_of_devices : nullptr, nullptr,
         &outcomes},
        metrics);
    gateway::CommandStatusReader status(loop, topics, channels, state, metrics);
    gateway::MessageService messages(
        loop, topics,
        {static_cast<int>(config.mqtt.qos), std::chrono::milliseconds(config.message_ack_timeout_ms),
         static_cast<std::size_t>(config.max_pending)},
        publisher, metrics);
    gateway::QueueService queue(
        loop, topics,
        {std::chrono::milliseconds(config.max_queue_ttl_ms), static_cast<std::size_t>(config.max_queued_per_device),
         static_cast<std::size_t>(config.max_queue_bytes_per_device),
         static_cast<std::size_t>(config.max_queue_bytes),
         static_cast<std::size_t>(config.token_max_queue_bytes > 0 ? config.token_max_queue_bytes
                                                                    : config.max_queue_bytes / 4),
         std::chrono::milliseconds(config.queue_sweep_ms),
         config.result_ttl_ms, instance},
        commands, subscriber, service, presence_of_devices, metrics);
    queue.tell_outcomes_to(&outcomes);
    queue.start();
    service_ptr = &service;
    subscriber.count_orphan_messages_in(service.late_replies());
    // Deferred to its own loop event: a state change is reported from inside
    // a client library's callback, where held commands should not be sent yet.
    Timer resume(loop, [&service, &queue] {
      service.dependencies_changed();
      queue.listen();
    });
    readiness.on_change([&resume] {
      if (!resume.pending()) resume.start(std::chrono::milliseconds(0));
    });

    gateway::Authorizer auth(std::move(tokens), metrics, token_defaults(config));
    gateway::RateLimiter rate_limiter(config.prefix, commands, metrics);
    log_access(auth, config);
    http::Server server(loop, config.http, static_cast<std::size_t>(config.max_body_bytes));
    // Device data plane: state, history and event streams (docs/events.md);
    // the outcome stream live (GET /v1/commands). One reader per Redis Stream
    // shown; one pool of SSE streams for both, so max_streams bounds them together.
    gateway::StreamTail event_tail(loop, commands, {topics.fleet_events_stream(), "events", "fleet stream"},
                                   readiness, metrics);
    gateway::StreamTail outcome_tail(loop, commands, {topics.outcome_stream(), "commands", "outcome stream"},
                                     readiness, metrics);
    gateway::SseStreams streams(loop, commands,
                                {static_cast<std::size_t>(config.max_streams),
                                 static_cast<std::size_t>(config.sse_max_buffer_bytes),
                                 std::chrono::milliseconds(config.sse_heartbeat_ms)},
                                metrics);
    gateway::EventApi event_api(topics, commands, event_tail, streams, auth,
                                static_cast<std::size_t>(config.events_page_max_bytes));
    gateway::OutcomeApi outcome_api(topics, outcome_tail, streams, auth);
    gateway::CommandApi command_api({service, status, messages},
                                    {std::chrono::milliseconds(config.default_timeout_ms),
                                     std::chrono::milliseconds(config.max_timeout_ms),
                                     static_cast<std::size_t>(config.max_body_bytes),
                                     std::chrono::milliseconds(config.max_async_timeout_ms),
                                     std::chrono::milliseconds(config.max_queue_ttl_ms)});
    gateway::QueueApi queue_api(queue);
    gateway::DeviceApi devices(presence, topics, commands, metrics);
    std::optional<HttpSettings> ops_settings = ops_listener(config);
    std::optional<http::Server> ops_server;
    if (ops_settings) ops_server.emplace(loop, *ops_settings, 4096);
    gateway::BrowserGuard browser(config.allowed_origins, config.allowed_hosts);
    gateway::Routes routes(server, ops_server ? *ops_server : server, {command_api, devices, event_api, outcome_api, queue_api}, auth,
                           rate_limiter, browser, metrics, readiness, config.access_log);
    auto port = server.listen();
    logger->info("listening on {}:{}", config.http.host, port);
    if (ops_server) logger->info("ops endpoints on {}:{}", ops_settings->host, ops_server->listen());

    // New commands get 503 shutting_down; waiting ones finish or, at the
    // timeout, get 202 delivered (published) or 503 (never published).
    // Webhooks: this replica's share of the deliveries (docs/webhooks.md).
    std::optional<gateway::WebhookService> webhooks;
    if (!config.webhooks.empty()) {
      http::ClientSettings client;
      if (!config.webhook_ca_file.empty()) client.ca_file = config.webhook_ca_file;
      gateway::WebhookSettings hooks;
      hooks.timeout = std::chrono::milliseconds(config.webhook_timeout_ms);
      hooks.retry_for = std::chrono::milliseconds(config.webhook_retry_for_ms);
      hooks.retry_initial = std::chrono::milliseconds(config.webhook_retry_initial_ms);
      hooks.max_in_flight = static_cast<std::size_t>(config.webhook_max_in_flight);
      hooks.max_held = static_cast<std::size_t>(config.webhook_max_held);
      hooks.max_held_bytes = static_cast<std::size_t>(config.webhook_max_held_bytes);
      hooks.lease = std::chrono::milliseconds(config.webhook_lease_ms);
      hooks.dead_maxlen = config.webhook_dead_maxlen;
      hooks.consumer = instance;
      webhooks.emplace(loop, commands, topics, hooks, client, metrics);
      webhooks->apply(std::move(endpoints));
    }
    Drain drain(loop, readiness, std::chrono::milliseconds(config.drain_timeout_ms),
                {"commands in flight",
                 [&service, &messages, &streams, &webhooks] {
                   service.start_draining();
                   messages.start_draining();
                   streams.close_all();  // event and outcome streams: their clients reconnect to another replica
                   // Deliveries under way finish (and are acknowledged); nothing new starts.
                   if (webhooks) webhooks->pause();
                 },
                 [&service, &messages, &webhooks] {
                   return service.callers_waiting() + messages.in_flight() + (webhooks ? webhooks->in_flight() : 0);
                 },
                 [&service](std::size_t) { service.abandon_all(); }});
    ShutdownSignals signals(loop, [&drain] { drain.begin(); });
    HangupSignal hangup(loop, [&auth, &config, &webhooks] {
      reload_tokens(auth, config);
      reload_webhooks(webhooks ? &*webhooks : nullptr, config);
    });

    subscriber.start();
    commands.start();
    broker.start();
    loop.run();

    logger->info("drained; stopping");
    if (webhooks) webhooks->stop();  // what they hold stays pending in Redis for the next replica
    readiness.on_change({});  // `resume` and the service go before the clients
    broker.stop();  // the loop has ended: sends what is queued and DISCONNECT, 2 s at most
    event_tail.stop();
    outcome_tail.stop();
    commands.stop();
    subscriber.stop();
  } catch (const std::exception& e) {
    logger->critical("fatal: {}", e.what());
    return 1;
  }
  logger->info("stopped");
  return 0;
}
