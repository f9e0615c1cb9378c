#pragma once
// ClusterTopology: the current slot map of a Redis Cluster, fetched with
// CLUSTER SLOTS through a NodePool and kept fresh.
//
// Thread ownership: loop thread only. on_map runs on the loop thread, from
// inside a hiredis callback (do not free connections there).
//
// When it fetches: at start (from the seeds), when asked (a MOVED, a node
// lost, an unsolicited sunsubscribe: refresh_soon(), at most one fetch per
// kMinGap), and every kPeriod, so a failover nobody tripped over is seen
// too. A fetch asks a node that is up (seeds and known masters are
// connected when none is) and gives up after kFetchTimeout.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "boxgate/loop/event_loop.hpp"
#include "boxgate/redis/slot_map.hpp"
#include "cluster_nodes.hpp"

namespace boxgate::redis {

// The seeds of redis_nodes (checked at start-up, so none is dropped here).
std::vector<NodeAddress> seeds_of(const RedisSettings& settings);

class ClusterTopology {
 public:
  static constexpr std::chrono::milliseconds kMinGap{100};
  static constexpr std::chrono::milliseconds kPeriod{1000};
  static constexpr std::chrono::milliseconds kFetchTimeout{1000};

  // on_map: a new map, different from the last one.
  ClusterTopology(EventLoop& loop, NodePool& pool, std::vector<NodeAddress> seeds,
                  std::function<void(const SlotMap&)> on_map);
  ~ClusterTopology();

  void start();
  void stop();
  // Fetch a new map soon (rate-limited).
  void refresh_soon();
  // A node came up: a fetch that waited for one goes now.
  void node_up();
  const SlotMap* map() const noexcept { return map_ ? &*map_ : nullptr; }
  // A MOVED names a slot's new master before the next fetch.
  void note_moved(std::uint16_t slot, const NodeAddress& to);

 private:
  void fetch();
  void answered(const NodeAddress& asked, const struct redisReply* reply, unsigned generation);
  std::vector<NodeAddress> known_nodes() const;

  NodePool& pool_;
  std::vector<NodeAddress> seeds_;
  std::function<void(const SlotMap&)> on_map_;
  std::optional<SlotMap> map_;
  bool stopped_ = true;
  bool in_flight_ = false;
  bool waiting_for_node_ = false;
  unsigned generation_ = 0;
  std::chrono::steady_clock::time_point last_fetch_{};
  Timer soon_timer_;
  Timer period_timer_;
  Timer timeout_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxgate::redis
