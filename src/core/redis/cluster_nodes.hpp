#pragma once
// NodePool: one hiredis async Connection per Redis Cluster node, made on
// first use (lazy) and dropped when the node leaves the cluster map, plus a
// PING heartbeat per node.
//
// Thread ownership: loop thread only, like the Connections it owns. Events
// run on the loop thread, from inside hiredis callbacks: they must not free a
// connection (retain_only() therefore drops nodes on a later loop turn).
//
// Each node has its own ops::Dependency in a private Readiness (never shown
// on /readyz): the cluster's owner folds them into one "redis" state.
// Heartbeat: one PING at a time per node; a node whose PING waits longer
// than stall_after_ms is stalled, longer than dead_after_ms dead (its
// connection is dropped and reconnected; on_down runs).

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boxgate/config.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/ops/readiness.hpp"
#include "boxgate/redis/connection.hpp"
#include "boxgate/redis/slot_map.hpp"

struct redisAsyncContext;

namespace boxgate::redis {

class NodePool {
 public:
  struct Events {
    std::function<void(const NodeAddress&)> on_up;
    std::function<void(const NodeAddress&)> on_down;  // lost, or found dead by the heartbeat
  };
  // A cluster holds a few hundred nodes at most; an address beyond this many
  // (a bogus map) is refused rather than connected to.
  static constexpr std::size_t kMaxNodes = 1000;

  NodePool(EventLoop& loop, const RedisSettings& settings, std::string role, Events events);
  ~NodePool();
  NodePool(const NodePool&) = delete;
  NodePool& operator=(const NodePool&) = delete;

  // The node's context while it is up, else nullptr; a node not known yet
  // starts connecting (`done` of a command may then wait for on_up).
  redisAsyncContext* context(const NodeAddress& node);
  void connect(const NodeAddress& node) { (void)context(node); }
  bool up(const NodeAddress& node) const;
  bool stalled(const NodeAddress& node) const;
  // Any node that is up (seeds count), or nullptr.
  const NodeAddress* any_up() const;
  void flush_soon(const NodeAddress& node);
  void force_reconnect(const NodeAddress& node, const char* why);
  // Drops (on the next loop turn) every node not in `keep`.
  void retain_only(const std::vector<NodeAddress>& keep);
  void stop();

 private:
  struct Node;
  Node* find(const NodeAddress& node) const;
  void heartbeat();
  void ping(Node& node);
  void drop_unwanted();

  EventLoop& loop_;
  RedisSettings settings_;
  std::string role_;
  Events events_;
  ops::Metrics private_metrics_;
  ops::Readiness private_readiness_{private_metrics_};
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<NodeAddress> keep_;
  bool stopped_ = false;
  Timer heartbeat_timer_;
  Timer drop_timer_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);  // for PING callbacks that outlive us
};

}  // namespace boxgate::redis
