#include "devices/device_api.hpp"

#include <memory>

#include <hiredis/hiredis.h>
#include <nlohmann/json.hpp>

#include "api/errors.hpp"
#include "api/query.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::gateway {

namespace {

const char* outcome_label(int outcome) {
  static const char* names[] = {"online", "offline", "unknown", "redis_unavailable"};
  return names[outcome];
}

}  // namespace

DeviceApi::DeviceApi(PresenceReader& presence, const Topics& topics, redis::Commands& redis, ops::Metrics& metrics)
    : presence_(presence), topics_(topics), redis_(redis) {
  for (int i = 0; i < kOutcomes; ++i) {
    reads_[i] = &metrics.counter("boxgate_presence_reads_total", "GET /v1/devices/{boxId} answers, by outcome",
                                 std::string("outcome=\"") + outcome_label(i) + "\"");
  }
}

// The presence and the queue's length, read together (one round trip).
struct DeviceApi::Read {
  int waiting = 2;
  bool ok = true;
  std::optional<Presence> presence;
  long long queued = 0;
};

void DeviceApi::read(http::Exchange ex, const Caller& caller) {
  if (!read_query(ex, {}, &caller.id.str(), &caller.box.str())) return;
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  auto read = std::make_shared<Read>();
  auto answered = [this, shared, read, rid = caller.id.str(), bid = caller.box.str()] {
    if (--read->waiting == 0) answer(*shared, *read, rid, bid);
  };
  bool asked = redis_.run({"LLEN", topics_.queue_key(caller.box)}, [read, answered](const redisReply* reply) {
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
      read->queued = reply->integer;
    } else {
      read->ok = false;
    }
    answered();
  });
  if (!asked) {
    read->ok = false;
    answered();
  }
  auto presence = [read, answered](bool ok, std::optional<Presence> p) {
    read->ok = read->ok && ok;
    read->presence = std::move(p);
    answered();
  };
  if (!presence_.read(caller.box, presence)) presence(false, std::nullopt);
}

void DeviceApi::answer(http::Exchange& exchange, const Read& read, const std::string& rid, const std::string& bid) {
  if (!read.ok) {
    reads_[redis_unavailable]->inc();
    return reply_error(exchange, Error::redis_unavailable, "Redis is unavailable; presence cannot be read.", &rid,
                       &bid);
  }
  const std::optional<Presence>& presence = read.presence;
  if (!presence) {
    reads_[unknown]->inc();
    return reply_error(exchange, Error::unknown_device, "No presence is known for this box.", &rid, &bid);
  }
  reads_[presence->online ? online : offline]->inc();
  nlohmann::ordered_json body = {{"box_id", bid},
                                 {"online", presence->online},
                                 {"since", rfc3339_utc_ms(presence->since_ms)},
                                 {"since_ms", presence->since_ms},
                                 {"queued", read.queued}};
  exchange.set_header("X-Request-Id", rid);
  // Presence changes at any moment: no cache may answer for the gateway.
  exchange.set_header("Cache-Control", "no-store");
  exchange.reply(200, body.dump());
}

}  // namespace boxgate::gateway
