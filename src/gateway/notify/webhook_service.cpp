#include "notify/webhook_service.hpp"

#include "boxgate/logging.hpp"

namespace boxgate::gateway {

WebhookService::WebhookService(EventLoop& loop, redis::Commands& redis, const Topics& topics,
                               WebhookSettings settings, http::ClientSettings client, ops::Metrics& metrics)
    : loop_(loop),
      redis_(redis),
      topics_(topics),
      settings_(std::move(settings)),
      metrics_(metrics),
      client_(loop, std::move(client)),
      endpoints_gauge_(metrics.gauge("boxgate_webhook_endpoints", "webhook endpoints configured")) {}

WebhookService::~WebhookService() { stop(); }

void WebhookService::apply(std::vector<WebhookEndpoint> endpoints) {
  auto logger = log::get("webhooks");
  std::map<std::string, std::shared_ptr<WebhookFeed>> next;
  for (WebhookEndpoint& e : endpoints) {
    auto it = feeds_.find(e.name);
    // Kinds decide which streams (groups) a feed reads: a change of them
    // starts the feed anew; other changes apply to its next attempt.
    if (it != feeds_.end() && it->second->endpoint().kinds == e.kinds) {
      if (!(it->second->endpoint() == e)) logger->info("webhook endpoint {} changed", e.name);
      it->second->update(std::move(e));
      next.emplace(it->first, std::move(it->second));
      continue;
    }
    logger->info("webhook endpoint {}: {} for {} of boxes {}", e.name, e.url, fmt::join(e.kinds, ", "),
                 e.boxes.text());
    std::string name = e.name;
    auto feed = std::make_shared<WebhookFeed>(loop_, redis_, client_, topics_, std::move(e), settings_, metrics_);
    feed->start();
    if (paused_) feed->pause();
    next.emplace(std::move(name), std::move(feed));
  }
  for (const auto& [name, feed] : feeds_) {
    if (feed && !next.count(name)) logger->info("webhook endpoint {} removed", name);
  }
  feeds_ = std::move(next);  // the removed ones are destroyed here
  endpoints_gauge_.set(static_cast<std::int64_t>(feeds_.size()));
}

void WebhookService::pause() {
  paused_ = true;
  for (auto& [name, feed] : feeds_) feed->pause();
}

std::size_t WebhookService::in_flight() const {
  std::size_t n = 0;
  for (const auto& [name, feed] : feeds_) n += feed->in_flight();
  return n;
}

void WebhookService::stop() { feeds_.clear(); }

}  // namespace boxgate::gateway
