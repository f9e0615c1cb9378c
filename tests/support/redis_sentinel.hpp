#pragma once
// A real Redis Sentinel group for integration tests: one master, one replica
// (--replicaof) and N redis-sentinel processes (Debian package
// redis-sentinel), all on free 127.0.0.1 ports.
//
// Callers: the test thread that owns the group (not thread-safe). Each
// sentinel gets its own config file under the TempDir (Sentinel rewrites it
// as it learns the topology) monitoring `master_name` with quorum 2,
// down-after-milliseconds 1000 and failover-timeout 5000, so a dead master
// is replaced within a few seconds. The constructor returns once every
// sentinel knows the replica and the other sentinels (else throws with the
// logs' tails). Every child is stopped by its pid in the destructor (see
// Process), sentinels first.

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/redis.hpp"
#include "support/tempdir.hpp"

namespace boxgate::test {

class RedisSentinelGroup {
 public:
  // `sentinel_password`: the sentinels' own requirepass (and sentinel-pass,
  // so they still talk to each other); empty: none.
  explicit RedisSentinelGroup(const TempDir& dir, int sentinels = 3, std::string master_name = "mymaster",
                              std::string sentinel_password = "");
  ~RedisSentinelGroup();
  RedisSentinelGroup(const RedisSentinelGroup&) = delete;
  RedisSentinelGroup& operator=(const RedisSentinelGroup&) = delete;

  // The data nodes as started: [0] the first master, [1] its replica.
  RedisServer& node(std::size_t i) { return *nodes_.at(i); }
  std::size_t sentinel_count() const { return sentinels_.size(); }
  int sentinel_port(std::size_t i) const { return sentinel_ports_.at(i); }
  Process& sentinel(std::size_t i) { return sentinels_.at(i); }
  const std::string& master_name() const { return master_name_; }
  // "127.0.0.1:p1,127.0.0.1:p2,..." for --redis-sentinels.
  std::string sentinels_flag() const;

  // The master's port as sentinel i names it (nullopt: unreachable or none).
  std::optional<int> master_port(std::size_t i = 0) const;
  // The data node at that port ([0] or [1]), nullptr when none is.
  RedisServer* master();
  // True once every running sentinel names `port` as the master.
  bool wait_master_is(int port, std::chrono::milliseconds timeout);
  // Log tails of every process, for failure messages.
  std::string logs(std::size_t lines = 15);

 private:
  void wait_replica_synced();
  void wait_agreed();

  std::string master_name_;
  RedisCredentials sentinel_login_;  // the test's own clients to the sentinels
  std::vector<std::unique_ptr<RedisServer>> nodes_;
  std::vector<int> sentinel_ports_;
  std::vector<Process> sentinels_;
};

}  // namespace boxgate::test
