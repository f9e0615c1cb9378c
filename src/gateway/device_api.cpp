#include "device_api.hpp"

#include <memory>

#include <nlohmann/json.hpp>

#include "api_errors.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::gateway {

namespace {

constexpr std::string_view kPrefix = "/v1/devices/";

const char* outcome_label(int outcome) {
  static const char* names[] = {"online", "offline", "unknown", "redis_unavailable", "refused"};
  return names[outcome];
}

}  // namespace

DeviceApi::DeviceApi(PresenceReader& presence, Authorizer& auth, ops::Metrics& metrics)
    : presence_(presence), auth_(auth) {
  for (int i = 0; i < kOutcomes; ++i) {
    reads_[i] = &metrics.counter("boxgate_presence_reads_total", "GET /v1/devices/{boxId} answers, by outcome",
                                 std::string("outcome=\"") + outcome_label(i) + "\"");
  }
}

void DeviceApi::handle(http::Exchange ex) {
  std::string_view segment = ex.path().substr(kPrefix.size());
  if (segment.empty()) return ex.reply(404, R"({"error":"not_found","message":"no such endpoint"})");
  if (!ex.is_get()) {
    ex.set_header("Allow", "GET");
    return ex.reply(405, R"({"error":"method_not_allowed","message":"use GET"})");
  }

  // Not generated when absent: a read publishes nothing that needs an id.
  std::optional<RequestId> request_id;
  if (const char* given = ex.header("X-Request-Id")) {
    request_id = RequestId::parse(given);
    if (!request_id) {
      reads_[refused]->inc();
      return reply_error(ex, 400, "invalid_request_id",
                         "X-Request-Id must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$.", nullptr, nullptr);
    }
  }
  const std::string* rid = request_id ? &request_id->str() : nullptr;

  auto box = BoxId::parse(http::percent_decode(segment));
  if (!box) {
    reads_[refused]->inc();
    return reply_error(ex, 400, "invalid_box_id", "The box id must match ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$.",
                       rid, nullptr);
  }
  const std::string& bid = box->str();

  // The same gate as commands, before anything else is read: whether a box
  // is known is itself worth keeping from a caller without its scope.
  Decision access = auth_.authorize(ex.header("Authorization"), *box);
  if (access.verdict == Verdict::missing_token || access.verdict == Verdict::invalid_token) {
    reads_[refused]->inc();
    bool missing = access.verdict == Verdict::missing_token;
    ex.set_header("WWW-Authenticate", missing ? "Bearer" : R"(Bearer error="invalid_token")");
    return reply_error(ex, 401, "unauthorized",
                       missing ? "This API needs an Authorization: Bearer <token> header."
                               : "The bearer token is not valid.",
                       rid, &bid);
  }
  if (access.verdict == Verdict::forbidden) {
    reads_[refused]->inc();
    log::get("gateway")->debug("box {}: 403 on presence, token '{}' is not scoped for this box", bid,
                               access.token->name);
    return reply_error(ex, 403, "forbidden", "This token may not read this box.", rid, &bid);
  }

  // Strict like the command endpoint's: a parameter is refused, never ignored.
  std::vector<http::QueryParam> params = http::split_query(ex.raw_query());
  if (!params.empty()) {
    reads_[refused]->inc();
    return reply_error(ex, 400, "invalid_query",
                       "Unknown query parameter '" + quoted_name(params.front().name) + "'; this endpoint takes none.",
                       rid, &bid);
  }

  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  auto answer = [this, shared, request_id, bid](bool ok, std::optional<Presence> presence) {
    http::Exchange& exchange = *shared;
    const std::string* rid = request_id ? &request_id->str() : nullptr;
    if (!ok) {
      reads_[redis_unavailable]->inc();
      return reply_error(exchange, 503, "redis_unavailable", "Redis is unavailable; presence cannot be read.", rid,
                         &bid);
    }
    if (!presence) {
      reads_[unknown]->inc();
      return reply_error(exchange, 404, "unknown_device", "No presence is known for this box.", rid, &bid);
    }
    reads_[presence->online ? online : offline]->inc();
    nlohmann::ordered_json body = {{"box_id", bid},
                                   {"online", presence->online},
                                   {"since", rfc3339_utc_ms(presence->since_ms)},
                                   {"since_ms", presence->since_ms}};
    if (rid) exchange.set_header("X-Request-Id", *rid);
    // Presence changes at any moment: no cache may answer for the gateway.
    exchange.set_header("Cache-Control", "no-store");
    exchange.reply(200, body.dump());
  };
  if (!presence_.read(*box, answer)) answer(false, std::nullopt);
}

}  // namespace boxgate::gateway
