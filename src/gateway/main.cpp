// boxgate-gateway: the HTTP front end. Publishes each command over MQTT and
// waits on its Redis reply channel. One thread: the loop (this one, after
// set-up) owns HTTP, both Redis connections, the MQTT connection, the pending
// commands and their timers.

#include <chrono>
#include <cstdio>

#include "boxgate/config.hpp"
#include "boxgate/daemon.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/mqtt/client.hpp"
#include "boxgate/ops/endpoints.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/subscriber.hpp"
#include "boxgate/topics.hpp"
#include "boxgate/version.hpp"
#include "command_service.hpp"
#include "http_api.hpp"

using namespace boxgate;

int main(int argc, char** argv) {
  GatewayConfig config;
  Options options("boxgate-gateway", "HTTP gateway that runs commands on devices over MQTT");
  declare_gateway(options, config);
  if (auto exit_code = load_options_or_exit(options, argc, argv)) return *exit_code;

  log::setup(config.log.level, config.log.json);
  auto logger = log::get("gateway");
  logger->info("boxgate-gateway {} starting; config {}", kVersion, options.describe());
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
    gateway::RedisResults results(commands);
    gateway::MqttPublisher publisher(broker);
    gateway::CommandService service(
        loop, topics,
        {static_cast<std::size_t>(config.max_pending), static_cast<std::size_t>(config.max_pending_per_device),
         static_cast<std::size_t>(config.max_pending_bytes), static_cast<int>(config.mqtt.qos),
         std::chrono::milliseconds(config.dependency_grace_ms)},
        {channels, results, publisher}, metrics);
    service_ptr = &service;
    subscriber.count_orphan_messages_in(service.late_replies());
    // Deferred to its own loop event: a state change is reported from inside
    // a client library's callback, where held commands should not be sent yet.
    Timer resume(loop, [&service] { service.dependencies_changed(); });
    readiness.on_change([&resume] {
      if (!resume.pending()) resume.start(std::chrono::milliseconds(0));
    });

    http::Server server(loop, config.http, static_cast<std::size_t>(config.max_body_bytes));
    gateway::HttpApi api(server, service,
                         {std::chrono::milliseconds(config.default_timeout_ms),
                          std::chrono::milliseconds(config.max_timeout_ms),
                          static_cast<std::size_t>(config.max_body_bytes)});
    ops::serve_endpoints(server, metrics, readiness);
    auto port = server.listen();
    logger->info("listening on {}:{}", config.http.host, port);

    // New commands get 503 shutting_down; waiting ones finish or, at the
    // timeout, get 202 delivered (published) or 503 (never published).
    Drain drain(loop, readiness, std::chrono::milliseconds(config.drain_timeout_ms),
                {"commands in flight", [&service] { service.start_draining(); },
                 [&service] { return service.pending(); },
                 [&service](std::size_t) { service.abandon_all(); }});
    ShutdownSignals signals(loop, [&drain] { drain.begin(); });

    subscriber.start();
    commands.start();
    broker.start();
    loop.run();

    logger->info("drained; stopping");
    readiness.on_change({});  // `resume` and the service go before the clients
    broker.stop();  // the loop has ended: sends what is queued and DISCONNECT, 2 s at most
    commands.stop();
    subscriber.stop();
  } catch (const std::exception& e) {
    logger->critical("fatal: {}", e.what());
    return 1;
  }
  logger->info("stopped");
  return 0;
}
