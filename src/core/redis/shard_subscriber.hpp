#pragma once
// ShardSubscriber: redis::Subscriber in cluster mode. Each reply channel is
// SSUBSCRIBEd on the master of its slot, over that node's ShardLink; the
// slot map comes from a ClusterTopology of its own (over a small NodePool
// of normal connections: a subscribed connection cannot run CLUSTER SLOTS).
//
// Thread ownership: loop thread only. Listener calls as in subscriber.hpp:
// on_subscribed() once the node confirmed the SSUBSCRIBE, on_resubscribed()
// after the channel was confirmed again elsewhere or on a new link.
//
// A channel is moved (SSUBSCRIBE on the new owner, then on_resubscribed) when:
// its node sends an unsolicited `sunsubscribe` (its slot left the node), its
// link breaks, an SSUBSCRIBE is answered MOVED, or a new map names another
// master for its slot. A channel that has no node yet is tried again every
// kRetryEvery. Readiness ("redis_subscriber"): up while the map serves every
// slot and a link to every master is up.

#include <chrono>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "boxgate/redis/subscriber.hpp"
#include "cluster_nodes.hpp"
#include "cluster_topology.hpp"
#include "shard_link.hpp"

namespace boxgate::redis {

class ShardSubscriber {
 public:
  static constexpr std::chrono::milliseconds kRetryEvery{100};

  ShardSubscriber(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency);
  ~ShardSubscriber();

  void start();
  void stop();
  bool up() const noexcept { return dependency_.up(); }
  void force_reconnect(const char* why);
  Subscriber::Result subscribe(const std::string& channel, Subscriber::Listener* listener);
  void unsubscribe(const std::string& channel, Subscriber::Listener* listener);
  std::size_t channels() const noexcept { return channels_.size(); }
  void count_orphan_messages_in(ops::Counter& counter) noexcept { orphans_ = &counter; }

 private:
  struct Channel;
  struct Link {
    std::unique_ptr<ShardLink> link;
    // The channels whose SSUBSCRIBE/SUNSUBSCRIBE answer is still due, in
    // order: an error reply belongs to the first.
    struct Expect {
      bool subscribe;
      std::string channel;
    };
    std::deque<Expect> expect;
  };

  Link* link_to(const NodeAddress& node);
  void link_up(const std::string& key);
  void link_down(const std::string& key);
  void on_reply(const std::string& key, const redisReply* reply);
  void confirmed(const std::string& key, const std::string& name);
  void sunsubscribed(const std::string& key, const std::string& name);
  void refused(const std::string& key, std::string_view error);
  void message(const std::string& name, std::string_view payload);
  bool place(Channel& channel);
  void place_all();
  void map_changed(const SlotMap& map);
  void send_unsubscribe(Channel& channel);
  void release(const std::string& name);
  void notify(Channel& channel);
  void update_state();
  void bury_closed_links();

  EventLoop& loop_;
  RedisSettings settings_;
  ops::Dependency& dependency_;
  NodePool pool_;
  ClusterTopology topology_;
  std::unordered_map<std::string, std::unique_ptr<Channel>> channels_;
  std::map<std::string, Link> links_;  // by NodeAddress::text()
  std::vector<std::unique_ptr<ShardLink>> graveyard_;  // closed links, freed on a later turn
  ops::Counter* orphans_ = nullptr;
  bool stopped_ = true;
  bool ever_up_ = false;
  Timer retry_timer_;
  Timer bury_timer_;
};

}  // namespace boxgate::redis
