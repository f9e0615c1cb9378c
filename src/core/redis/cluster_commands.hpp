#pragma once
// ClusterCommands: the command side of redis::Commands in cluster mode
// (redis_mode cluster). Each command goes to the master of its key's slot
// over that node's hiredis connection (NodePool); MOVED and ASK answers are
// followed (bounded), and errors that mean "the cluster is reconfiguring"
// (CLUSTERDOWN, TRYAGAIN, MASTERDOWN, LOADING) are retried after a pause.
//
// Thread ownership: loop thread only, like the pool it owns. Every callback
// runs exactly once on the loop thread: with the reply, or with nullptr
// (lost: the node broke, or no node could take it within kParkLimit) --
// the same contract as standalone Commands.
//
// Order: the commands of one slot run in the order they were given, as on
// one standalone connection, across MOVED/ASK redirects and retries. While
// one of them is redirected, waits for a retry, or is in flight on another
// node than the slot's (the map moved under it), the slot's later commands
// wait behind it, sorted by submission, and then go to one node at a time;
// otherwise they are pipelined. One that waits kParkLimit is lost (nullptr)
// with every later one of its slot, so a caller's resend keeps the order.
// (A node that redirected a command redirects the later ones too -- MOVED,
// and ASK for the same key -- which keeps a pipeline to one node in order.
// TRYAGAIN is the exception: a retried command goes alone, the slot's later
// ones after its answer.) Commands already pipelined when the first redirect
// of their slot comes back may have run before it: a key that the source
// still holds is served while one already migrated is ASKed, a single-key
// command while a multi-key one is answered TRYAGAIN. The order holds for
// every command given after that answer, and for one key across MOVED/ASK.
//
// Readiness ("redis"): up while the map serves every slot and the master
// of every slot is connected; stalled while one of them has not answered its
// PING for stall_after_ms. on_up runs when it comes up, and again when a
// node reconnects or the map changes while up (owners flush what they hold).

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "boxgate/redis/commands.hpp"
#include "cluster_nodes.hpp"
#include "cluster_topology.hpp"

namespace boxgate::redis {

class ClusterCommands {
 public:
  static constexpr int kMaxAttempts = 8;  // redirects + retries of one command
  static constexpr std::chrono::milliseconds kParkLimit{1000};
  static constexpr std::size_t kMaxParked = 100000;

  ClusterCommands(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency,
                  std::function<void()> on_up);
  ~ClusterCommands();

  void start();
  void stop();
  bool up() const noexcept { return dependency_.state() == ops::Dependency::State::up; }

  bool run(const std::vector<std::string_view>& argv, Commands::ReplyCallback done);
  // SET key ... then SPUBLISH key message on the same node (key and shard
  // channel share a slot); `done` gets the SPUBLISH's reply.
  bool set_and_publish(const std::string& key, std::string_view payload, std::string_view message,
                       std::int64_t ttl_ms, Commands::ReplyCallback done);
  // The master serving `key`'s slot in the current map; nullopt while unknown.
  std::optional<NodeAddress> master_of_key(std::string_view key) const;

 private:
  struct Request;
  struct InFlight;
  using Clock = std::chrono::steady_clock;

  static void on_reply(struct redisAsyncContext* ctx, void* reply, void* privdata);
  std::optional<NodeAddress> target_of(const Request& request) const;
  // Writes a new command, or holds it behind its slot's earlier ones.
  bool submit(std::shared_ptr<Request> request);
  bool write(const NodeAddress& node, std::shared_ptr<Request> request);
  // A redirected or retried command: a slot's is held (in order), any other parked.
  void again(std::shared_ptr<Request> request, Clock::duration after);
  void dispatch(std::shared_ptr<Request> request, Clock::duration after);
  // Whether a command of `slot` for `node` must wait for the slot's flight.
  bool must_wait(std::uint16_t slot, const NodeAddress& node) const;
  void hold(std::shared_ptr<Request> request, Clock::duration after);
  // Writes the slot's held commands that may go now, oldest first.
  void drain(std::uint16_t slot);
  void answered(std::shared_ptr<Request> request, const NodeAddress& node, const struct redisReply* reply);
  void retry_parked();
  void map_changed(const SlotMap& map);
  void node_up(const NodeAddress& node);
  void update_state();
  void notify_up_soon();

  struct Parked {
    std::shared_ptr<Request> request;
    Clock::time_point due;
    Clock::time_point give_up;
  };

  ops::Dependency& dependency_;
  std::function<void()> on_up_;
  NodePool pool_;
  ClusterTopology topology_;
  // Commands on the wire, per slot, and the node they went to (one at a time).
  struct Flight {
    NodeAddress node;
    std::uint32_t count = 0;
    bool alone = false;  // a retried command is among them: nothing follows it
  };
  std::deque<Parked> parked_;  // commands without a slot
  std::unordered_map<std::uint16_t, std::deque<Parked>> held_;  // per slot, oldest first
  std::unordered_map<std::uint16_t, Flight> flights_;
  std::size_t held_count_ = 0;
  std::uint64_t next_seq_ = 0;
  bool stopping_ = false;
  bool ever_up_ = false;
  Timer retry_timer_;
  Timer state_timer_;
  Timer notify_timer_;
};

// The key a command routes by: the first key (EVAL/EVALSHA: the first of
// its keys), nullopt for a command without one (PING, EVAL with 0 keys).
std::optional<std::string_view> routing_key(const std::vector<std::string_view>& argv);

}  // namespace boxgate::redis
