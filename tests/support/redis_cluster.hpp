#pragma once
// A real Redis Cluster for integration tests: `masters` primaries with
// `replicas` replicas each, every node a redis-server child on a free
// loopback port (cluster mode, its own nodes-<port>.conf in the TempDir),
// joined with `redis-cli --cluster create`, then awaited until every node
// says cluster_state:ok and agrees on the masters.
//
// Callers: the test thread that made it (not thread-safe). Every node is
// stopped in the destructor, by pid (see Process). Errors throw
// std::runtime_error with the relevant log tail.

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "support/redis.hpp"

namespace boxgate::test {

class RedisCluster {
 public:
  struct Options {
    int masters = 3;
    int replicas = 1;
    // cluster-node-timeout: how long a silent primary has before its
    // replicas take over (failover takes about twice this).
    int node_timeout_ms = 1000;
  };
  RedisCluster(const TempDir& dir, Options options);
  explicit RedisCluster(const TempDir& dir) : RedisCluster(dir, Options{}) {}
  RedisCluster(const RedisCluster&) = delete;
  RedisCluster& operator=(const RedisCluster&) = delete;

  std::size_t size() const { return nodes_.size(); }
  RedisServer& node(std::size_t i) { return *nodes_.at(i); }
  RedisServer& node_on(int port);
  // "127.0.0.1:p1,127.0.0.1:p2,..." for redis_nodes.
  std::string seeds() const;

  // From a live node's CLUSTER SLOTS / NODES (ports of 127.0.0.1 nodes).
  std::vector<int> master_ports();
  int master_of_slot(int slot);
  int replica_of(int master_port);
  int keyslot(const std::string& key);
  // DBSIZE of each master, by port.
  std::vector<std::pair<int, long long>> keys_per_master();

  // Until every running node reports cluster_state:ok, the same number of
  // masters, and sees no node as failing, and every replica has synced
  // (master_link_status:up). Throws at the timeout.
  void wait_ok(std::chrono::milliseconds timeout = 30s);
  // Moves `slot` from its master to `to_port` the way redis-cli --cluster
  // reshard does: SETSLOT IMPORTING/MIGRATING, MIGRATE of its keys in
  // batches, SETSLOT NODE on both nodes and the other masters.
  // The slot stays marked migrating for `pause_while_migrating` before its
  // keys move (callers keep load on it meanwhile).
  void migrate_slot(int slot, int to_port, std::chrono::milliseconds pause_while_migrating = 0ms);
  // The steps of migrate_slot, for tests that stop half-way. begin_migration:
  // IMPORTING on `to_port`, MIGRATING on the slot's master (which stays its
  // owner in CLUSTER SLOTS until finish). migrate_keys: MIGRATE of `keys`
  // (of that slot) to `to_port`; those are then answered with ASK. finish:
  // MIGRATE of the slot's remaining keys, SETSLOT NODE on both nodes and the
  // other masters.
  void begin_migration(int slot, int to_port);
  void migrate_keys(int slot, int to_port, const std::vector<std::string>& keys);
  void finish_migration(int slot, int to_port);
  std::string node_id(int port);

 private:
  RespValue on_any(const std::vector<std::string>& command);

  const TempDir& dir_;
  std::vector<std::unique_ptr<RedisServer>> nodes_;
};

}  // namespace boxgate::test
