#include "notify/dead_letters.hpp"

#include <hiredis/hiredis.h>

#include <map>
#include <memory>

namespace boxgate::gateway {

namespace {

constexpr const char* kPage = "100";

struct Replay {
  redis::Commands& redis;
  const Topics& topics;
  std::optional<std::string> endpoint;
  std::string maxlen;
  std::function<void(bool, std::size_t)> done;
  std::size_t moved = 0;
  std::string after = "-";

  void next(std::shared_ptr<Replay> self) {
    bool sent = redis.run({"XRANGE", topics.webhook_dead_stream(), after, "+", "COUNT", kPage},
                          [self](const redisReply* r) { self->page(self, r); });
    if (!sent) done(false, moved);
  }

  void page(std::shared_ptr<Replay> self, const redisReply* r) {
    if (!r || r->type != REDIS_REPLY_ARRAY) return done(false, moved);
    if (r->elements == 0) return done(true, moved);
    for (std::size_t i = 0; i < r->elements; ++i) {
      const redisReply* e = r->element[i];
      if (e->type != REDIS_REPLY_ARRAY || e->elements < 2 || e->element[1]->type != REDIS_REPLY_ARRAY) continue;
      std::string id(e->element[0]->str, e->element[0]->len);
      after = "(" + id;
      std::map<std::string, std::string> f;
      const redisReply* fields = e->element[1];
      for (std::size_t k = 0; k + 1 < fields->elements; k += 2) {
        f[std::string(fields->element[k]->str, fields->element[k]->len)] =
            std::string(fields->element[k + 1]->str, fields->element[k + 1]->len);
      }
      if (endpoint && f["endpoint"] != *endpoint) continue;
      redis.run({"XADD", topics.webhook_replay_stream(), "MAXLEN", "~", maxlen, "*", "box", f["endpoint"], "name",
                 f["webhook_id"] + " " + f["type"], "payload", f["body"], "received_ms", f["written_ms"]},
                {});
      redis.run({"XDEL", topics.webhook_dead_stream(), id}, {});
      ++moved;
    }
    next(self);
  }
};

}  // namespace

void replay_dead_letters(redis::Commands& redis, const Topics& topics, std::optional<std::string> endpoint,
                         std::int64_t replay_maxlen, std::function<void(bool ok, std::size_t moved)> done) {
  auto replay = std::make_shared<Replay>(Replay{redis, topics, std::move(endpoint), std::to_string(replay_maxlen),
                                                std::move(done)});
  replay->next(replay);
}

}  // namespace boxgate::gateway
