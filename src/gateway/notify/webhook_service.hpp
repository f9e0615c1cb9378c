#pragma once
// WebhookService: this replica's share of webhook delivery (docs/webhooks.md).
// It owns the HTTP client (libcurl's multi interface on the daemon's loop,
// boxgate/http/client.hpp) and one WebhookFeed per configured endpoint,
// and applies a reloaded endpoint file (SIGHUP): new endpoints start,
// removed ones stop (what they hold stays pending in Redis: a replica that
// still has them takes it over after a lease), changed ones go on with the
// new URL, secret or kinds from their next attempt.
//
// Thread ownership: loop thread only.

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "boxgate/http/client.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"
#include "notify/webhook_endpoints.hpp"
#include "notify/webhook_feed.hpp"

namespace boxgate::gateway {

class WebhookService {
 public:
  WebhookService(EventLoop& loop, redis::Commands& redis, const Topics& topics, WebhookSettings settings,
                 http::ClientSettings client, ops::Metrics& metrics);
  ~WebhookService();

  // Starts, or changes to, these endpoints.
  void apply(std::vector<WebhookEndpoint> endpoints);
  // A drain: deliveries under way finish, no feed reads or sends anew.
  void pause();
  // Deliveries waiting for their HTTP answer, all endpoints.
  std::size_t in_flight() const;
  // Stops every feed (at exit): undelivered entries stay pending in Redis.
  void stop();
  std::size_t endpoints() const noexcept { return feeds_.size(); }

 private:
  EventLoop& loop_;
  redis::Commands& redis_;
  const Topics& topics_;
  WebhookSettings settings_;
  ops::Metrics& metrics_;
  http::Client client_;
  std::map<std::string, std::shared_ptr<WebhookFeed>> feeds_;
  bool paused_ = false;
  ops::Gauge& endpoints_gauge_;
};

}  // namespace boxgate::gateway
