#pragma once
// Subscriber: the pub/sub connection to Redis, one channel per waiting command.
// A channel may have several listeners (the command waiting on it, and
// callers long-polling its status); it is subscribed once and unsubscribed
// when its last listener leaves.
//
// Thread ownership: loop thread only. A Listener is called on the loop thread:
// on_subscribed() once Redis confirmed the SUBSCRIBE (only then may the command
// be published, or a fast reply is lost), on_message() for each message, and
// on_resubscribed() after the channel was subscribed again on a new
// connection (messages sent during the gap are gone: read the result key).
// A listener that joins a channel already confirmed gets on_subscribed() from
// inside subscribe(). After unsubscribe() the listener is never called again.
//
// hiredis 0.14 keeps one callback per channel name and calls it for the
// confirmation, the messages and the final unsubscribe; the Channel record
// given to it as privdata lives until that unsubscribe (or the connection's
// end), so it is never freed under hiredis.

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>

#include "boxgate/redis/connection.hpp"

struct redisReply;

namespace boxgate::redis {

class ShardSubscriber;

// redis_mode cluster: the same contract over sharded pub/sub (SSUBSCRIBE on
// the channel's slot master), implemented by ShardSubscriber
// (shard_subscriber.hpp); a channel that moves shards is confirmed again
// elsewhere and its listeners get on_resubscribed().
class Subscriber {
 public:
  class Listener {
   public:
    virtual void on_subscribed() = 0;
    virtual void on_message(std::string_view payload) = 0;
    virtual void on_resubscribed() = 0;

   protected:
    ~Listener() = default;
  };

  enum class Result { ok, unavailable, busy };

  Subscriber(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency);
  ~Subscriber();

  void start();
  void stop();
  bool up() const noexcept;
  // Drop and reconnect (the command connection found Redis dead).
  void force_reconnect(const char* why);

  // unavailable: not connected; busy: the channel is still being released.
  Result subscribe(const std::string& channel, Listener* listener);
  void unsubscribe(const std::string& channel, Listener* listener);
  std::size_t channels() const noexcept;
  // Messages that arrive on a channel already unsubscribed (a late or
  // duplicate reply) are counted here.
  void count_orphan_messages_in(ops::Counter& counter) noexcept;

 private:
  struct Channel;
  static void on_reply(redisAsyncContext* ctx, void* reply, void* privdata);
  void handle(Channel* channel, redisReply* reply);
  bool send_subscribe(Channel* channel);
  void resubscribe_all();
  void release(Channel* channel);
  void confirmed(Channel* channel);
  // Calls `call` for each listener of `channel` (and its confirmed flag),
  // safe against listeners leaving from inside their call.
  void each_member(Channel* channel, const std::function<void(Listener*, bool& confirmed)>& call);

  Connection connection_;
  std::unique_ptr<ShardSubscriber> shards_;  // set in redis_mode cluster
  std::unordered_map<std::string, Channel*> channels_;
  ops::Counter* orphans_ = nullptr;
};

}  // namespace boxgate::redis
