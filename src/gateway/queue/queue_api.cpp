#include "queue/queue_api.hpp"

#include <memory>

#include <nlohmann/json.hpp>

#include "api/errors.hpp"
#include "api/query.hpp"

namespace boxgate::gateway {

namespace {

bool valid_state(std::string_view value) { return value == "queued"; }
bool valid_id(std::string_view value) { return RequestId::parse(std::string(value)).has_value(); }
bool valid_limit(std::string_view value) {
  return parse_decimal(value, 4, 1, static_cast<std::int64_t>(QueueApi::kMaxLimit)).has_value();
}

constexpr QueryParamSpec kState{"state", Error::invalid_query,
                                "state must be queued (the only list there is: a box's queue).", valid_state};
constexpr QueryParamSpec kAfter{"after", Error::invalid_after, "after must be one request id of the queue.",
                                valid_id};
constexpr QueryParamSpec kLimit{"limit", Error::invalid_limit, "limit must be one integer from 1 to 1000.",
                                valid_limit};

// The JSON of the 409 and the 200: the record as it stands.
void reply_with_record(http::Exchange& ex, int status, std::string_view error, std::string_view message,
                       const std::string& rid, const std::string& record) {
  ex.set_header("X-Request-Id", rid);
  if (error.empty()) return ex.reply(status, record);
  nlohmann::ordered_json body = {{"error", error}, {"message", message}, {"request_id", rid}};
  std::string text = body.dump();
  text.pop_back();
  text += R"(,"command":)";
  text += record;
  text += '}';
  ex.reply(status, std::move(text));
}

}  // namespace

void QueueApi::list(http::Exchange ex, const Caller& caller) {
  const std::string& rid = caller.id.str();
  const std::string& bid = caller.box.str();
  std::optional<Query> query = read_query(ex, {kState, kAfter, kLimit}, &rid, &bid);
  if (!query) return;
  if (!query->get("state")) {
    return reply_error(ex, Error::invalid_query, "state=queued is required (the list is a box's queue).", &rid, &bid);
  }
  std::optional<RequestId> after;
  if (auto text = query->get("after")) after = RequestId::parse(std::string(*text));
  std::size_t limit = kDefaultLimit;
  if (auto text = query->get("limit")) limit = static_cast<std::size_t>(*parse_decimal(*text, 4, 1, kMaxLimit));
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  queue_.list(caller.box, after, limit, [shared, rid, bid](QueueService::Page page) {
    http::Exchange& exchange = *shared;
    if (!exchange.open()) return;
    if (!page.ok) {
      return reply_error(exchange, Error::redis_unavailable, "Redis is unavailable; the queue cannot be read.", &rid,
                         &bid);
    }
    // Records are built from validated ids and numbers: joined as they are.
    std::string body = R"({"box_id":")" + bid + R"(","commands":[)";
    for (std::size_t i = 0; i < page.records.size(); ++i) {
      if (i) body += ',';
      body += page.records[i];
    }
    body += ']';
    if (page.next_after) body += R"(,"next_after":")" + *page.next_after + '"';
    body += '}';
    exchange.set_header("X-Request-Id", rid);
    exchange.reply(200, std::move(body));
  });
}

void QueueApi::cancel(http::Exchange ex, const Caller& caller, std::string_view id_segment) {
  const std::string& rid = caller.id.str();
  const std::string& bid = caller.box.str();
  auto command = RequestId::parse(http::percent_decode(id_segment));
  if (!command) {
    std::string message = "The command id must match ";
    message += kIdPattern;
    return reply_error(ex, Error::invalid_request_id, message + '.', &rid, &bid);
  }
  if (!read_query(ex, {}, &rid, &bid)) return;
  auto shared = std::make_shared<http::Exchange>(std::move(ex));
  std::string cid = command->str();
  queue_.cancel(caller.box, *command, [shared, cid, bid](QueueService::Cancel result, std::string record) {
    http::Exchange& exchange = *shared;
    if (!exchange.open()) return;
    switch (result) {
      case QueueService::Cancel::cancelled: return reply_with_record(exchange, 200, {}, {}, cid, record);
      case QueueService::Cancel::already_sent:
        return reply_with_record(exchange, http_status(Error::already_sent), error_code(Error::already_sent),
                                 "The command is no longer queued (sent, or ended); it cannot be cancelled.", cid,
                                 record);
      case QueueService::Cancel::unknown:
        return reply_error(exchange, Error::unknown_command,
                           "No command with this id is recorded for this box (never sent, or expired).", &cid, &bid);
      case QueueService::Cancel::unavailable:
        return reply_error(exchange, Error::redis_unavailable, "Redis is unavailable; nothing was cancelled.", &cid,
                           &bid);
    }
  });
}

}  // namespace boxgate::gateway
