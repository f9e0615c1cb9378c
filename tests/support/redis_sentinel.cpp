#include "support/redis_sentinel.hpp"

#include <stdexcept>

#include "support/net.hpp"

namespace boxgate::test {

namespace {
// Both data nodes get the same settings, since either may be the master:
// a full sync at once (Redis 7 waits 5 s for more replicas by default), and
// a stop that does not wait up to 10 s for a lagging replica.
std::vector<std::string> node_args() { return {"--repl-diskless-sync-delay", "0", "--shutdown-timeout", "0"}; }

std::string sentinel_config(int port, int master_port, const std::string& name, const std::string& dir,
                            const std::string& password) {
  std::string auth = password.empty() ? "" : "requirepass " + password + "\nsentinel sentinel-pass " + password + "\n";
  return auth + "port " + std::to_string(port) + "\nbind 127.0.0.1\ndaemonize no\ndir " + dir +
         "\nsentinel monitor " + name + " 127.0.0.1 " + std::to_string(master_port) + " 2\n" +
         "sentinel down-after-milliseconds " + name + " 1000\n" + "sentinel failover-timeout " + name +
         " 5000\n" + "sentinel parallel-syncs " + name + " 1\n";
}

// A field of a RESP2 flat key/value array (SENTINEL MASTER, INFO-like maps).
std::string field(const RespValue& map, const std::string& key) {
  for (std::size_t i = 0; i + 1 < map.elements.size(); i += 2) {
    if (map.elements[i].str == key) return map.elements[i + 1].str;
  }
  return "";
}
}  // namespace

RedisSentinelGroup::RedisSentinelGroup(const TempDir& dir, int sentinels, std::string master_name,
                                       std::string sentinel_password)
    : master_name_(std::move(master_name)), sentinel_login_{"", std::move(sentinel_password)} {
  nodes_.push_back(std::make_unique<RedisServer>(dir, 0, node_args()));
  std::vector<std::string> replica = node_args();
  replica.insert(replica.end(), {"--replicaof", "127.0.0.1", std::to_string(nodes_[0]->port())});
  nodes_.push_back(std::make_unique<RedisServer>(dir, 0, replica));
  wait_replica_synced();
  for (int i = 0; i < sentinels; ++i) {
    int port = free_port();
    std::string config =
        dir.write("sentinel-" + std::to_string(port) + ".conf",
                  sentinel_config(port, nodes_[0]->port(), master_name_, dir.path(), sentinel_login_.password));
    sentinel_ports_.push_back(port);
    sentinels_.emplace_back("sentinel-" + std::to_string(port), std::vector<std::string>{"redis-sentinel", config},
                            dir.path());
  }
  for (int port : sentinel_ports_) {
    if (!wait_for_port(port, 10s)) throw std::runtime_error("redis-sentinel did not listen; logs:\n" + logs());
  }
  wait_agreed();
}

RedisSentinelGroup::~RedisSentinelGroup() {
  // Sentinels first: they would fail over a master stopped under them.
  for (auto& sentinel : sentinels_) sentinel.stop();
}

void RedisSentinelGroup::wait_replica_synced() {
  bool synced = eventually(
      [this] {
        try {
          RespValue info = nodes_[1]->client().command({"INFO", "replication"});
          return info.str.find("master_link_status:up") != std::string::npos;
        } catch (const std::exception&) {
          return false;
        }
      },
      10s, 20ms);
  if (!synced) throw std::runtime_error("the replica did not sync; logs:\n" + logs());
}

// Sentinels find each other and the replica through the master's hello
// channel (every 2 s): wait until each knows all of them, or a failover
// test could run before a quorum exists.
void RedisSentinelGroup::wait_agreed() {
  const std::string others = std::to_string(sentinels_.size() - 1);
  bool agreed = eventually(
      [&] {
        for (int port : sentinel_ports_) {
          try {
            RespValue master = RedisClient(port, 1s, sentinel_login_).command({"SENTINEL", "MASTER", master_name_});
            if (field(master, "num-other-sentinels") != others || field(master, "num-slaves") != "1") return false;
          } catch (const std::exception&) {
            return false;
          }
        }
        return true;
      },
      20s, 100ms);
  if (!agreed) throw std::runtime_error("the sentinels did not agree on the topology; logs:\n" + logs());
}

std::string RedisSentinelGroup::sentinels_flag() const {
  std::string out;
  for (int port : sentinel_ports_) (out += out.empty() ? "127.0.0.1:" : ",127.0.0.1:") += std::to_string(port);
  return out;
}

std::optional<int> RedisSentinelGroup::master_port(std::size_t i) const {
  try {
    RedisClient sentinel(sentinel_ports_.at(i), 1s, sentinel_login_);
    RespValue v = sentinel.command({"SENTINEL", "GET-MASTER-ADDR-BY-NAME", master_name_});
    if (v.type != RespValue::Type::array || v.elements.size() != 2) return std::nullopt;
    return std::stoi(v.elements[1].str);
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

RedisServer* RedisSentinelGroup::master() {
  auto port = master_port();
  for (auto& node : nodes_) {
    if (port && node->port() == *port) return node.get();
  }
  return nullptr;
}

bool RedisSentinelGroup::wait_master_is(int port, std::chrono::milliseconds timeout) {
  return eventually(
      [&] {
        for (std::size_t i = 0; i < sentinels_.size(); ++i) {
          if (sentinels_[i].running() && master_port(i) != port) return false;
        }
        return true;
      },
      timeout, 50ms);
}

std::string RedisSentinelGroup::logs(std::size_t lines) {
  std::string out;
  for (const auto& node : nodes_) {
    out += "--- redis " + std::to_string(node->port()) + "\n" + node->process().log_tail(lines);
  }
  for (const auto& sentinel : sentinels_) out += "--- " + sentinel.name() + "\n" + sentinel.log_tail(lines);
  return out;
}

}  // namespace boxgate::test
