// The bridge's id-from-payload, through ReplyForwarder::accept (the function
// itself is private to reply_forwarder.cpp): a reply on a topic without a
// request id is queued exactly when an independent reading of its payload
// (json_oracle.hpp) finds a JSON object with exactly one top-level "id", a
// string that is a valid request id. The first byte picks the topic form;
// the rest is the payload.
//
// State kept between inputs (one thread): an event loop that never connects
// to Redis, so every accepted reply stays queued until abandon() clears it.

#include <event2/event.h>

#include <string>

#include "boxgate/config.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/ops/readiness.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"
#include "json_oracle.hpp"
#include "reply_forwarder.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

namespace {

struct Bridge {
  Bridge()
      : topics("dev"),
        readiness(metrics),
        redis(loop, RedisSettings{}, readiness.dependency("redis"), {}, {}),
        forwarder(loop, topics, {1 << 20, 60000, 1000, 64 << 20, 64 * 1024}, redis, metrics) {
    // abandon() logs each reply it drops: millions of lines otherwise.
    log::get("bridge")->set_level(spdlog::level::off);
  }
  EventLoop loop;
  Topics topics;
  ops::Metrics metrics;
  ops::Readiness readiness;
  redis::Commands redis;
  bridge::ReplyForwarder forwarder;
};

}  // namespace

int reply_payload(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  static Bridge bridge;
  const bool with_id = data[0] & 1;
  const std::string payload(reinterpret_cast<const char*>(data + 1), size - 1);
  const std::string topic = with_id ? "dev/box-1/response/req-1" : "dev/box-1/response";

  bridge.forwarder.accept(topic, payload);
  const bool queued = bridge.forwarder.backlog() == 1;
  bridge.forwarder.abandon();
  check(bridge.forwarder.backlog() == 0, "abandon() left replies behind");
  // Runs the flush accept() posted (Redis is down: it sends nothing).
  event_base_loop(bridge.loop.base(), EVLOOP_NONBLOCK);

  bool expected = true;
  if (!with_id) {
    const JsonFacts facts = json_facts(payload);
    expected = facts.valid && facts.object && facts.id_count == 1 && facts.id && is_valid_id(*facts.id);
  }
  check(queued == expected, "queued differs from the oracle");
  return 0;
}

}  // namespace boxgate::fuzz
