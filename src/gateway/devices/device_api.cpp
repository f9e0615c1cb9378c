#include "devices/device_api.hpp"

#include <memory>

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

DeviceApi::DeviceApi(PresenceReader& presence, ops::Metrics& metrics) : presence_(presence) {
  for (int i = 0; i < kOutcomes; ++i) {
    reads_[i] = &metrics.counter("boxgate_presence_reads_total", "GET /v1/devices/{boxId} answers, by outcome",
                                 std::string("outcome=\"") + outcome_label(i) + "\"");
  }
}

void DeviceApi::read(http::Exchange ex, const Caller& caller) {
  if (!read_query(ex, {}, &caller.id.str(), &caller.box.str())) return;
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  auto answer = [this, shared, rid = caller.id.str(), bid = caller.box.str()](bool ok,
                                                                              std::optional<Presence> presence) {
    http::Exchange& exchange = *shared;
    if (!ok) {
      reads_[redis_unavailable]->inc();
      return reply_error(exchange, Error::redis_unavailable, "Redis is unavailable; presence cannot be read.", &rid,
                         &bid);
    }
    if (!presence) {
      reads_[unknown]->inc();
      return reply_error(exchange, Error::unknown_device, "No presence is known for this box.", &rid, &bid);
    }
    reads_[presence->online ? online : offline]->inc();
    nlohmann::ordered_json body = {{"box_id", bid},
                                   {"online", presence->online},
                                   {"since", rfc3339_utc_ms(presence->since_ms)},
                                   {"since_ms", presence->since_ms}};
    exchange.set_header("X-Request-Id", rid);
    // Presence changes at any moment: no cache may answer for the gateway.
    exchange.set_header("Cache-Control", "no-store");
    exchange.reply(200, body.dump());
  };
  if (!presence_.read(caller.box, answer)) answer(false, std::nullopt);
}

}  // namespace boxgate::gateway
