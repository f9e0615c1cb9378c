#include "devices/presence.hpp"

#include <hiredis/hiredis.h>

#include <cstdio>
#include <ctime>
#include <memory>

#include "boxgate/logging.hpp"

namespace boxgate::gateway {

std::optional<Presence> presence_from_fields(std::optional<std::string_view> online,
                                             std::optional<std::string_view> since) {
  if (!online || !since) return std::nullopt;
  if (*online != "1" && *online != "0") return std::nullopt;
  // 18 digits always fit an int64 (and reach past the year 30000000); no sign, no spaces.
  if (since->empty() || since->size() > 18) return std::nullopt;
  std::int64_t ms = 0;
  for (char c : *since) {
    if (c < '0' || c > '9') return std::nullopt;
    ms = ms * 10 + (c - '0');
  }
  return Presence{*online == "1", ms};
}

std::string rfc3339_utc_ms(std::int64_t ms_since_epoch) {
  std::time_t seconds = static_cast<std::time_t>(ms_since_epoch / 1000);
  int ms = static_cast<int>(ms_since_epoch % 1000);
  std::tm utc{};
  gmtime_r(&seconds, &utc);
  char text[40];
  std::size_t n = std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  std::snprintf(text + n, sizeof text - n, ".%03dZ", ms);
  return text;
}

namespace {
std::optional<std::string_view> field(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string_view(reply->str, reply->len);
}
}  // namespace

bool PresenceReader::read(const BoxId& box, ReadCallback done) {
  if (!redis_.up()) return false;
  const std::string key = topics_.presence_key(box);
  // HMGET rather than HGETALL: the answer stays two fields whatever else
  // the hash might hold.
  return redis_.run({"HMGET", key, "online", "since"}, [done = std::move(done), key](const redisReply* reply) {
    if (!reply || reply->type == REDIS_REPLY_ERROR) {
      if (reply) log::get("gateway")->warn("reading {}: {}", key, std::string_view(reply->str, reply->len));
      return done(false, std::nullopt);
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return done(false, std::nullopt);
    auto online = field(reply->element[0]);
    auto since = field(reply->element[1]);
    auto presence = presence_from_fields(online, since);
    if (!presence && (online || since)) {
      // Written by something other than the bridge's script: not trusted.
      log::get("gateway")->warn("{} holds no valid presence; answering unknown", key);
    }
    done(true, presence);
  });
}

}  // namespace boxgate::gateway
