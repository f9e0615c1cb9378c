#include "cluster_nodes.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>

#include "boxgate/logging.hpp"

namespace boxgate::redis {

struct NodePool::Node {
  NodeAddress address;
  ops::Dependency& health;
  std::unique_ptr<Connection> connection;
  std::optional<std::chrono::steady_clock::time_point> ping_sent;
  bool stalled = false;
};

namespace {
RedisSettings node_settings(const RedisSettings& base, const NodeAddress& node) {
  RedisSettings s = base;
  s.host = node.host;
  s.port = node.port;
  return s;
}

struct PingDone {
  std::weak_ptr<bool> alive;
  std::function<void(bool answered)> done;
};
void on_ping(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<PingDone> ping(static_cast<PingDone*>(privdata));
  if (ping->alive.lock()) ping->done(reply != nullptr);
}
}  // namespace

NodePool::NodePool(EventLoop& loop, const RedisSettings& settings, std::string role, Events events)
    : loop_(loop),
      settings_(settings),
      role_(std::move(role)),
      events_(std::move(events)),
      heartbeat_timer_(loop, [this] { heartbeat(); }),
      drop_timer_(loop, [this] { drop_unwanted(); }) {
  heartbeat_timer_.start(std::chrono::milliseconds(settings.heartbeat_ms), true);
}

NodePool::~NodePool() { stop(); }

void NodePool::stop() {
  stopped_ = true;
  heartbeat_timer_.cancel();
  drop_timer_.cancel();
  *alive_ = false;
  // Connections first (their pending callbacks run now, with null), then the records.
  for (auto& node : nodes_) node->connection->stop();
  nodes_.clear();
}

NodePool::Node* NodePool::find(const NodeAddress& address) const {
  for (const auto& node : nodes_) {
    if (node->address == address) return node.get();
  }
  return nullptr;
}

redisAsyncContext* NodePool::context(const NodeAddress& address) {
  if (Node* node = find(address)) return node->connection->context();
  if (stopped_ || nodes_.size() >= kMaxNodes) return nullptr;
  // A dependency per address, kept for the pool's life (Readiness never
  // forgets one): bounded by the addresses the cluster ever had.
  auto& health = private_readiness_.dependency(address.text());
  auto node = std::make_unique<Node>(Node{address, health, nullptr, std::nullopt, false});
  Node* raw = node.get();
  std::string name = role_ + " " + address.text();
  raw->connection = std::make_unique<Connection>(
      loop_, node_settings(settings_, address), name, health,
      Connection::Events{[this, raw] {
                           raw->ping_sent.reset();
                           raw->stalled = false;
                           if (events_.on_up) events_.on_up(raw->address);
                         },
                         [this, raw] {
                           raw->ping_sent.reset();
                           raw->stalled = false;
                           if (events_.on_down) events_.on_down(raw->address);
                         }});
  nodes_.push_back(std::move(node));
  raw->connection->start();
  return nullptr;  // connecting: not up in this turn
}

bool NodePool::up(const NodeAddress& address) const {
  Node* node = find(address);
  return node && node->connection->up();
}

bool NodePool::stalled(const NodeAddress& address) const {
  Node* node = find(address);
  return node && node->stalled;
}

const NodeAddress* NodePool::any_up() const {
  for (const auto& node : nodes_) {
    if (node->connection->up()) return &node->address;
  }
  return nullptr;
}

void NodePool::flush_soon(const NodeAddress& address) {
  if (Node* node = find(address)) node->connection->flush_soon();
}

void NodePool::force_reconnect(const NodeAddress& address, const char* why) {
  if (Node* node = find(address)) node->connection->force_reconnect(why);
}

void NodePool::retain_only(const std::vector<NodeAddress>& keep) {
  keep_ = keep;
  if (!drop_timer_.pending()) drop_timer_.start(std::chrono::milliseconds(0));
}

void NodePool::drop_unwanted() {
  auto unwanted = [this](const std::unique_ptr<Node>& node) {
    return std::find(keep_.begin(), keep_.end(), node->address) == keep_.end();
  };
  for (auto& node : nodes_) {
    if (unwanted(node)) {
      log::get("redis")->info("{}: {} left the cluster map; closing its connection", role_, node->address.text());
      node->connection->stop();
    }
  }
  nodes_.erase(std::remove_if(nodes_.begin(), nodes_.end(), unwanted), nodes_.end());
}

void NodePool::heartbeat() {
  auto now = std::chrono::steady_clock::now();
  // Copy: a node's connection may be dropped by what we call.
  std::vector<Node*> nodes;
  for (auto& node : nodes_) nodes.push_back(node.get());
  for (Node* node : nodes) {
    if (!node->connection->up()) continue;
    if (!node->ping_sent) {
      ping(*node);
      continue;
    }
    auto waited = now - *node->ping_sent;
    if (waited > std::chrono::milliseconds(settings_.dead_after_ms)) {
      node->ping_sent.reset();
      // The connection's on_down (our events_.on_down) runs from inside.
      node->connection->force_reconnect("no PING reply within redis_dead_after_ms");
    } else if (waited > std::chrono::milliseconds(settings_.stall_after_ms) && !node->stalled) {
      log::get("redis")->warn("{}: {} stalled: no PING reply for {} ms", role_, node->address.text(),
                              std::chrono::duration_cast<std::chrono::milliseconds>(waited).count());
      node->stalled = true;
    }
  }
}

void NodePool::ping(Node& node) {
  redisAsyncContext* ctx = node.connection->context();
  if (!ctx) return;
  node.ping_sent = std::chrono::steady_clock::now();
  Node* raw = &node;
  auto* done = new PingDone{alive_, [this, raw](bool answered) {
                              // The record may be gone (dropped node): look it up again.
                              for (auto& n : nodes_) {
                                if (n.get() != raw) continue;
                                raw->ping_sent.reset();
                                if (answered && raw->stalled) log::get("redis")->info("{}: {} answers again", role_,
                                                                                      raw->address.text());
                                if (answered) raw->stalled = false;
                              }
                            }};
  if (redisAsyncCommand(ctx, on_ping, done, "PING") != REDIS_OK) {
    delete done;
    node.ping_sent.reset();
  }
}

}  // namespace boxgate::redis
