#include "support/redis_cluster.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <sstream>
#include <stdexcept>
#include <thread>

#include "support/net.hpp"

namespace boxgate::test {

namespace {
std::string field(const std::string& info, const std::string& name) {
  auto at = info.find(name + ":");
  if (at == std::string::npos) return "";
  auto end = info.find_first_of("\r\n", at);
  return info.substr(at + name.size() + 1, end - at - name.size() - 1);
}

// A free port whose cluster bus port (port + 10000) is free too; free_port()
// keeps both below the kernel's ephemeral ports.
int cluster_port() {
  for (int attempt = 0; attempt < 1000; ++attempt) {
    int port = free_port();
    if (port_bindable(port + 10000)) return port;
  }
  throw std::runtime_error("no free port pair for a cluster node");
}

// The port of "127.0.0.1:7000@17000" (CLUSTER NODES) or 0.
int port_of(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) return 0;
  return std::atoi(address.c_str() + colon + 1);
}
}  // namespace

RedisCluster::RedisCluster(const TempDir& dir, Options options) : dir_(dir) {
  const int total = options.masters * (1 + options.replicas);
  std::vector<std::string> create{"redis-cli", "--cluster", "create"};
  for (int i = 0; i < total; ++i) {
    int port = cluster_port();
    nodes_.push_back(std::make_unique<RedisServer>(
        dir, port,
        std::vector<std::string>{"--cluster-enabled", "yes", "--cluster-config-file",
                                 dir.file("nodes-" + std::to_string(port) + ".conf"), "--cluster-node-timeout",
                                 std::to_string(options.node_timeout_ms), "--dbfilename",
                                 "dump-" + std::to_string(port) + ".rdb",
                                 // A replica must have synced before its primary dies, or it
                                 // may not take over; the default waits 5 s before a sync.
                                 "--repl-diskless-sync-delay", "0"}));
    create.push_back("127.0.0.1:" + std::to_string(port));
  }
  create.insert(create.end(), {"--cluster-replicas", std::to_string(options.replicas), "--cluster-yes"});
  Process cli("redis-cli-create", create, dir.path());
  auto status = cli.wait_exit(60s);
  if (status != 0) {
    throw std::runtime_error("redis-cli --cluster create failed (" + std::to_string(status.value_or(-1)) + "):\n" +
                             cli.log_tail());
  }
  wait_ok();
}

RedisServer& RedisCluster::node_on(int port) {
  for (auto& n : nodes_) {
    if (n->port() == port) return *n;
  }
  throw std::runtime_error("no cluster node on port " + std::to_string(port));
}

std::string RedisCluster::seeds() const {
  std::string out;
  for (const auto& n : nodes_) (out += out.empty() ? "127.0.0.1:" : ",127.0.0.1:") += std::to_string(n->port());
  return out;
}

RespValue RedisCluster::on_any(const std::vector<std::string>& command) {
  for (auto& n : nodes_) {
    if (!n->running()) continue;
    try {
      RespValue r = n->client().command(command);
      if (r.type != RespValue::Type::error) return r;
    } catch (const std::exception&) {
    }
  }
  throw std::runtime_error("no cluster node answered " + command.at(0));
}

std::vector<int> RedisCluster::master_ports() {
  std::vector<int> ports;
  RespValue slots = on_any({"CLUSTER", "SLOTS"});
  for (const RespValue& entry : slots.elements) {
    int port = static_cast<int>(entry.elements.at(2).elements.at(1).integer);
    if (std::find(ports.begin(), ports.end(), port) == ports.end()) ports.push_back(port);
  }
  return ports;
}

int RedisCluster::master_of_slot(int slot) {
  RespValue slots = on_any({"CLUSTER", "SLOTS"});
  for (const RespValue& entry : slots.elements) {
    if (slot >= entry.elements.at(0).integer && slot <= entry.elements.at(1).integer) {
      return static_cast<int>(entry.elements.at(2).elements.at(1).integer);
    }
  }
  return 0;
}

int RedisCluster::replica_of(int master_port) {
  std::string master = node_id(master_port);
  std::istringstream lines(on_any({"CLUSTER", "NODES"}).str);
  for (std::string line; std::getline(lines, line);) {
    std::istringstream f(line);
    std::string id, address, flags, of;
    f >> id >> address >> flags >> of;
    if (of == master && flags.find("fail") == std::string::npos) return port_of(address.substr(0, address.find('@')));
  }
  return 0;
}

int RedisCluster::keyslot(const std::string& key) {
  return static_cast<int>(on_any({"CLUSTER", "KEYSLOT", key}).integer);
}

std::vector<std::pair<int, long long>> RedisCluster::keys_per_master() {
  std::vector<std::pair<int, long long>> out;
  for (int port : master_ports()) out.emplace_back(port, node_on(port).client().command({"DBSIZE"}).integer);
  return out;
}

std::string RedisCluster::node_id(int port) { return node_on(port).client().command({"CLUSTER", "MYID"}).str; }

void RedisCluster::wait_ok(std::chrono::milliseconds timeout) {
  std::string last;
  bool ok = eventually(
      [&] {
        std::size_t masters = 0;
        for (auto& n : nodes_) {
          if (!n->running()) continue;
          try {
            RedisClient c = n->client();
            std::string info = c.command({"CLUSTER", "INFO"}).str;
            std::string nodes = c.command({"CLUSTER", "NODES"}).str;
            if (field(info, "cluster_state") != "ok") return last = "state on " + std::to_string(n->port()), false;
            if (nodes.find("fail") != std::string::npos) {
              return last = "a node is failing in the view of " + std::to_string(n->port()), false;
            }
            std::string replication = c.command({"INFO", "replication"}).str;
            if (field(replication, "role") == "slave" && field(replication, "master_link_status") != "up") {
              return last = "replica " + std::to_string(n->port()) + " not synced", false;
            }
            std::size_t seen = std::stoul(field(info, "cluster_size"));
            if (masters && seen != masters) return last = "masters disagree", false;
            masters = seen;
          } catch (const std::exception& e) {
            return last = e.what(), false;
          }
        }
        return masters > 0;
      },
      timeout, 100ms);
  if (!ok) throw std::runtime_error("cluster not ok: " + last + "\n" + nodes_.front()->process().log_tail());
}

namespace {
void must(const RespValue& r, const char* step) {
  if (r.type == RespValue::Type::error) throw std::runtime_error(std::string(step) + ": " + r.str);
}
}  // namespace

void RedisCluster::migrate_slot(int slot, int to_port, std::chrono::milliseconds pause_while_migrating) {
  begin_migration(slot, to_port);
  std::this_thread::sleep_for(pause_while_migrating);  // callers measure load during the migration
  finish_migration(slot, to_port);
}

void RedisCluster::begin_migration(int slot, int to_port) {
  const int from_port = master_of_slot(slot);
  if (from_port == 0 || from_port == to_port) throw std::runtime_error("slot has no other master to leave");
  const std::string s = std::to_string(slot);
  must(node_on(to_port).client().command({"CLUSTER", "SETSLOT", s, "IMPORTING", node_id(from_port)}), "IMPORTING");
  must(node_on(from_port).client().command({"CLUSTER", "SETSLOT", s, "MIGRATING", node_id(to_port)}), "MIGRATING");
}

void RedisCluster::migrate_keys(int slot, int to_port, const std::vector<std::string>& keys) {
  if (keys.empty()) return;
  std::vector<std::string> migrate{"MIGRATE", "127.0.0.1", std::to_string(to_port), "", "0", "5000", "KEYS"};
  migrate.insert(migrate.end(), keys.begin(), keys.end());
  must(node_on(master_of_slot(slot)).client().command(migrate), "MIGRATE");
}

void RedisCluster::finish_migration(int slot, int to_port) {
  const int from_port = master_of_slot(slot);
  if (from_port == 0 || from_port == to_port) throw std::runtime_error("slot has no other master to leave");
  const std::string s = std::to_string(slot);
  const std::string to_id = node_id(to_port);
  RedisClient from = node_on(from_port).client();
  for (int round = 0; round < 10000; ++round) {
    RespValue keys = from.command({"CLUSTER", "GETKEYSINSLOT", s, "100"});
    if (keys.elements.empty()) break;
    std::vector<std::string> batch;
    for (const RespValue& k : keys.elements) batch.push_back(k.str);
    migrate_keys(slot, to_port, batch);
  }
  must(node_on(to_port).client().command({"CLUSTER", "SETSLOT", s, "NODE", to_id}), "SETSLOT NODE (target)");
  must(from.command({"CLUSTER", "SETSLOT", s, "NODE", to_id}), "SETSLOT NODE (source)");
  for (int port : master_ports()) {
    if (port != from_port && port != to_port) node_on(port).client().command({"CLUSTER", "SETSLOT", s, "NODE", to_id});
  }
}

}  // namespace boxgate::test
