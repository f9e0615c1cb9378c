#include "cluster_topology.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>

#include "boxgate/logging.hpp"

namespace boxgate::redis {

std::vector<NodeAddress> seeds_of(const RedisSettings& settings) {
  std::vector<NodeAddress> seeds;
  for (const std::string& text : settings.nodes) {
    if (auto node = parse_node_address(text)) seeds.push_back(*node);
  }
  return seeds;
}

namespace {
struct SlotsDone {
  std::weak_ptr<bool> alive;
  std::function<void(const redisReply*)> done;
};
void on_slots(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<SlotsDone> owned(static_cast<SlotsDone*>(privdata));
  if (owned->alive.lock()) owned->done(static_cast<const redisReply*>(reply));
}
}  // namespace

ClusterTopology::ClusterTopology(EventLoop& loop, NodePool& pool, std::vector<NodeAddress> seeds,
                                 std::function<void(const SlotMap&)> on_map)
    : pool_(pool),
      seeds_(std::move(seeds)),
      on_map_(std::move(on_map)),
      soon_timer_(loop, [this] { fetch(); }),
      period_timer_(loop, [this] { refresh_soon(); }),
      timeout_timer_(loop, [this] {
        in_flight_ = false;  // the late answer, if any, is ignored by its generation
        ++generation_;
        refresh_soon();
      }) {}

ClusterTopology::~ClusterTopology() { stop(); }

void ClusterTopology::start() {
  stopped_ = false;
  for (const NodeAddress& seed : seeds_) pool_.connect(seed);
  waiting_for_node_ = true;  // the first node up fetches
  period_timer_.start(kPeriod, true);
}

void ClusterTopology::stop() {
  stopped_ = true;
  *alive_ = false;
  soon_timer_.cancel();
  period_timer_.cancel();
  timeout_timer_.cancel();
}

void ClusterTopology::refresh_soon() {
  if (stopped_ || in_flight_ || soon_timer_.pending()) return;
  auto since = std::chrono::steady_clock::now() - last_fetch_;
  auto wait = since >= kMinGap ? std::chrono::milliseconds(0)
                               : std::chrono::duration_cast<std::chrono::milliseconds>(kMinGap - since);
  soon_timer_.start(wait);
}

void ClusterTopology::node_up() {
  if (waiting_for_node_) {
    waiting_for_node_ = false;
    refresh_soon();
  }
}

std::vector<NodeAddress> ClusterTopology::known_nodes() const {
  std::vector<NodeAddress> nodes = seeds_;
  if (map_) {
    for (const NodeAddress& m : map_->masters()) {
      if (std::find(nodes.begin(), nodes.end(), m) == nodes.end()) nodes.push_back(m);
    }
  }
  return nodes;
}

void ClusterTopology::fetch() {
  if (stopped_ || in_flight_) return;
  const NodeAddress* up = pool_.any_up();
  if (!up) {
    // Nobody to ask: connect every node we know; the first one up asks.
    for (const NodeAddress& node : known_nodes()) pool_.connect(node);
    waiting_for_node_ = true;
    return;
  }
  NodeAddress asked = *up;
  redisAsyncContext* ctx = pool_.context(asked);
  if (!ctx) return;
  unsigned generation = ++generation_;
  auto* done = new SlotsDone{alive_, [this, asked, generation](const redisReply* reply) {
                               answered(asked, reply, generation);
                             }};
  if (redisAsyncCommand(ctx, on_slots, done, "CLUSTER SLOTS") != REDIS_OK) {
    delete done;
    return;
  }
  pool_.flush_soon(asked);
  in_flight_ = true;
  last_fetch_ = std::chrono::steady_clock::now();
  timeout_timer_.start(kFetchTimeout);
}

void ClusterTopology::answered(const NodeAddress& asked, const redisReply* reply, unsigned generation) {
  if (generation != generation_) return;  // timed out already
  in_flight_ = false;
  timeout_timer_.cancel();
  if (!reply) return refresh_soon();  // that node went away: ask another
  if (reply->type == REDIS_REPLY_ERROR) {
    log::get("redis")->warn("CLUSTER SLOTS on {} failed: {}", asked.text(), std::string(reply->str, reply->len));
    return;  // the period tries again (e.g. a node not in cluster mode)
  }
  auto map = SlotMap::from_cluster_slots(reply, asked);
  if (!map) {
    log::get("redis")->warn("CLUSTER SLOTS on {}: malformed reply; map kept", asked.text());
    return;
  }
  if (map_ && *map == *map_) return;
  log::get("redis")->info("cluster map from {}: {} masters, {} of 16384 slots served", asked.text(),
                          map->masters().size(), map->covered_slots());
  map_ = std::move(*map);
  on_map_(*map_);
}

void ClusterTopology::note_moved(std::uint16_t slot, const NodeAddress& to) {
  if (map_) map_->move_slot(slot, to);
  refresh_soon();
}

}  // namespace boxgate::redis
