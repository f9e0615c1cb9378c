// boxgate-bridge: forwards device replies from MQTT to Redis (result key +
// PUBLISH) so whichever gateway replica holds the call completes it, and
// keeps each box's presence (its status topic) in a Redis hash, and forwards
// device events and state (streams, state key, PUBLISH; event_forwarder.hpp).
// One thread: the loop (this one, after set-up) owns the MQTT connection,
// the Redis connection, the reply and presence queues and the ops HTTP server.

#include <chrono>

#include "boxgate/config.hpp"
#include "boxgate/daemon.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/mqtt/client.hpp"
#include "boxgate/ops/endpoints.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"
#include "boxgate/traceparent.hpp"
#include "boxgate/version.hpp"
#include "event_forwarder.hpp"
#include "presence_tracker.hpp"
#include "reply_forwarder.hpp"

using namespace boxgate;

int main(int argc, char** argv) {
  BridgeConfig config;
  Options options("boxgate-bridge", "forwards device replies from MQTT to Redis");
  declare_bridge(options, config);
  if (auto exit_code = load_options_or_exit(options, argc, argv)) return *exit_code;

  log::setup(config.log.level, config.log.json, config.log.levels);
  auto logger = log::get("bridge");
  logger->info("boxgate-bridge {} starting; config {}", kVersion, options.describe());
  warn_about_exposed_secrets(options);

  try {
    Topics topics(config.prefix);
    EventLoop loop;
    ops::Metrics metrics;
    ops::Readiness readiness(metrics);
    auto& redis_dep = readiness.dependency("redis");
    auto& mqtt_dep = readiness.dependency("mqtt");

    bridge::ReplyForwarder* forwarder_ptr = nullptr;
    bridge::PresenceTracker* presence_ptr = nullptr;
    bridge::EventForwarder* events_ptr = nullptr;
    redis::Commands redis(
        loop, config.redis, redis_dep,
        [&forwarder_ptr, &presence_ptr, &events_ptr] {
          forwarder_ptr->redis_connected();
          presence_ptr->flush();
          events_ptr->flush();
        },
        {});
    bridge::ReplyForwarder forwarder(loop, topics,
                                     {static_cast<std::size_t>(config.max_reply_bytes), config.result_ttl_ms,
                                      static_cast<std::size_t>(config.queue_capacity),
                                      static_cast<std::size_t>(config.queue_max_bytes),
                                      static_cast<std::size_t>(config.reply_inline_max_bytes),
                                      config.outcome_stream_maxlen},
                                     redis, metrics);
    forwarder_ptr = &forwarder;
    bridge::PresenceTracker presence(topics, {static_cast<std::size_t>(config.presence_queue_capacity),
                                                config.presence_stream_maxlen}, redis,
                                     metrics);
    presence_ptr = &presence;
    bridge::EventForwarder events(topics,
                                  {static_cast<std::size_t>(config.max_event_bytes), config.events_box_maxlen,
                                   config.events_fleet_maxlen, config.events_box_max_bytes,
                                   config.events_fleet_max_bytes, static_cast<std::size_t>(config.events_queue_max_bytes)},
                                  redis, metrics);
    events_ptr = &events;

    boxgate::mqtt::Client broker(loop, config.mqtt, "boxgate-bridge", mqtt_dep);
    // A device chooses how many replies carry a traceparent: at most one
    // line a second (loop thread, like the handler).
    log::RateLimit trace_log;
    // The status filter is never shared (topics.hpp): every bridge gets each
    // box's retained status on connect; the presence script is idempotent.
    broker.subscribe_on_connect(
        {topics.reply_filter_with_id(config.share_group), topics.reply_filter_without_id(config.share_group),
         topics.event_filter(config.share_group), topics.state_filter(config.share_group), topics.status_filter()},
        [&forwarder, &presence, &events, &topics, &broker, &trace_log](std::string_view topic,
                                                                        std::string_view payload) {
          if (topics.is_status_topic(topic)) return presence.accept(topic, payload);
          if (events.accept(topic, payload)) return;  // an event or state topic
          // W3C trace context a device sent with its reply: logged when well-formed.
          if (auto trace = broker.user_property("traceparent");
              trace && is_valid_traceparent(*trace) && trace_log.allow()) {
            log::get("bridge")->info("reply on {} carries traceparent {} (further ones this second not logged)",
                                     topic.substr(0, 300), *trace);
          }
          forwarder.accept(topic, payload);
        });

    http::Server ops_server(loop, config.http, 4096);
    ops::serve_endpoints(ops_server, metrics, readiness);
    auto port = ops_server.listen();
    logger->info("ops endpoints on {}:{}", config.http.host, port);

    // Disconnecting from MQTT first lets the broker hand this bridge's share
    // of replies to the other members of the group; the queue is then flushed.
    // stop() returns at once here (the loop sends the DISCONNECT).
    Drain drain(loop, readiness, std::chrono::milliseconds(config.drain_timeout_ms),
                {"replies, events and status updates to write", [&broker] { broker.stop(); },
                 [&forwarder, &presence, &events] {
                   forwarder.flush();
                   presence.flush();
                   events.flush();
                   return forwarder.backlog() + presence.backlog() + events.backlog();
                 },
                 [&forwarder, &presence, &events](std::size_t) {
                   forwarder.abandon();
                   presence.abandon();
                   events.abandon();
                 }});
    ShutdownSignals signals(loop, [&drain] { drain.begin(); });

    redis.start();
    broker.start();
    loop.run();

    broker.stop();  // finishes a DISCONNECT the drain could not send in time
    redis.stop();   // pairs and updates still in flight come back to their queues
    forwarder.abandon();
    presence.abandon();
    events.abandon();
  } catch (const std::exception& e) {
    logger->critical("fatal: {}", e.what());
    return 1;
  }
  logger->info("stopped");
  return 0;
}
