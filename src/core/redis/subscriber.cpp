#include "boxgate/redis/subscriber.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "boxgate/logging.hpp"
#include "boxgate/redis/commands.hpp"
#include "shard_subscriber.hpp"

namespace boxgate::redis {

struct Subscriber::Channel {
  struct Member {
    Listener* listener;
    bool confirmed = false;  // had its on_subscribed()
  };
  Subscriber* owner;
  std::string name;
  std::vector<Member> members;  // empty once the last one left: being released
  bool in_hiredis = false;      // hiredis holds this record as a callback privdata
  bool live = false;            // Redis confirmed it on the current connection

  bool has(Listener* l) const {
    return std::any_of(members.begin(), members.end(), [l](const Member& m) { return m.listener == l; });
  }
  Member* find(Listener* l) {
    auto it = std::find_if(members.begin(), members.end(), [l](const Member& m) { return m.listener == l; });
    return it == members.end() ? nullptr : &*it;
  }
};

Subscriber::Subscriber(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency)
    : connection_(loop, settings, "redis subscriber connection", dependency, {[this] { resubscribe_all(); }, {}}) {
  if (settings.mode == RedisMode::cluster) shards_ = std::make_unique<ShardSubscriber>(loop, settings, dependency);
}

Subscriber::~Subscriber() { stop(); }

void Subscriber::start() {
  if (shards_) return shards_->start();
  connection_.start();
}

bool Subscriber::up() const noexcept { return shards_ ? shards_->up() : connection_.up(); }

void Subscriber::force_reconnect(const char* why) {
  if (shards_) return shards_->force_reconnect(why);
  connection_.force_reconnect(why);
}

std::size_t Subscriber::channels() const noexcept { return shards_ ? shards_->channels() : channels_.size(); }

void Subscriber::count_orphan_messages_in(ops::Counter& counter) noexcept {
  orphans_ = &counter;
  if (shards_) shards_->count_orphan_messages_in(counter);
}

void Subscriber::stop() {
  if (shards_) return shards_->stop();
  connection_.stop();  // hiredis calls every channel back with null: records not held any more
  for (auto& [name, channel] : channels_) delete channel;
  channels_.clear();
}

Subscriber::Result Subscriber::subscribe(const std::string& channel_name, Listener* listener) {
  if (shards_) return shards_->subscribe(channel_name, listener);
  if (!connection_.up()) return Result::unavailable;
  if (auto it = channels_.find(channel_name); it != channels_.end()) {
    Channel* channel = it->second;
    if (channel->members.empty() || channel->has(listener)) return Result::busy;
    channel->members.push_back({listener, channel->live});
    if (channel->live) listener->on_subscribed();  // nothing to wait for
    return Result::ok;
  }
  auto* channel = new Channel{this, channel_name, {{listener}}};
  channels_.emplace(channel_name, channel);
  if (!send_subscribe(channel)) {
    channels_.erase(channel_name);
    delete channel;
    return Result::unavailable;
  }
  return Result::ok;
}

bool Subscriber::send_subscribe(Channel* channel) {
  redisAsyncContext* ctx = connection_.context();
  if (!ctx) return false;
  // Preformatted (commands.hpp): hiredis still reads the command's name to
  // route the confirmation and messages to this callback.
  std::string command = resp_command({"SUBSCRIBE", channel->name});
  if (redisAsyncFormattedCommand(ctx, &Subscriber::on_reply, channel, command.data(), command.size()) != REDIS_OK) {
    return false;
  }
  channel->in_hiredis = true;
  connection_.flush_soon();
  return true;
}

void Subscriber::unsubscribe(const std::string& channel_name, Listener* listener) {
  if (shards_) return shards_->unsubscribe(channel_name, listener);
  auto it = channels_.find(channel_name);
  if (it == channels_.end()) return;
  Channel* channel = it->second;
  auto& members = channel->members;
  members.erase(std::remove_if(members.begin(), members.end(),
                               [listener](const Channel::Member& m) { return m.listener == listener; }),
                members.end());
  if (!members.empty()) return;  // others still listen
  redisAsyncContext* ctx = connection_.context();
  if (!channel->in_hiredis || !ctx) {
    release(channel);
    return;
  }
  // No callback of its own: hiredis hands the "unsubscribe" reply to the
  // channel's SUBSCRIBE callback, which releases the record.
  std::string command = resp_command({"UNSUBSCRIBE", channel->name});
  if (redisAsyncFormattedCommand(ctx, nullptr, nullptr, command.data(), command.size()) != REDIS_OK) {
    // The connection is going away; its null callback will release the record.
    log::get("redis")->debug("UNSUBSCRIBE {} not sent: connection closing", channel->name);
    return;
  }
  connection_.flush_soon();
}

void Subscriber::release(Channel* channel) {
  auto it = channels_.find(channel->name);
  if (it != channels_.end() && it->second == channel) channels_.erase(it);
  delete channel;
}

void Subscriber::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  auto* channel = static_cast<Channel*>(privdata);
  channel->owner->handle(channel, static_cast<redisReply*>(reply));
}

void Subscriber::handle(Channel* channel, redisReply* reply) {
  if (!reply) {
    // The connection ended: hiredis drops its callbacks. Keep live channels
    // for resubscription; release the ones nobody waits on.
    channel->in_hiredis = false;
    channel->live = false;
    if (channel->members.empty()) release(channel);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING) {
    return;
  }
  const char* kind = reply->element[0]->str;
  if (std::strcmp(kind, "message") == 0) {
    if (channel->members.empty()) {
      if (orphans_) orphans_->inc();
      return;
    }
    const redisReply* payload = reply->element[2];
    std::string_view message(payload->str, payload->len);
    each_member(channel, [message](Listener* listener, bool&) { listener->on_message(message); });
  } else if (std::strcmp(kind, "subscribe") == 0) {
    channel->live = true;
    confirmed(channel);
  } else if (std::strcmp(kind, "unsubscribe") == 0) {
    // hiredis removed its callback: the record is ours to free.
    channel->in_hiredis = false;
    release(channel);
  }
}

void Subscriber::confirmed(Channel* channel) {
  each_member(channel, [](Listener* listener, bool& confirmed) {
    if (confirmed) return listener->on_resubscribed();
    confirmed = true;
    listener->on_subscribed();
  });
}

void Subscriber::each_member(Channel* channel, const std::function<void(Listener*, bool& confirmed)>& call) {
  // A listener may leave (or the channel be released) from inside its call:
  // walk a copy, and call only those still there.
  std::vector<Channel::Member> members = channel->members;
  std::string name = channel->name;
  for (const Channel::Member& m : members) {
    auto it = channels_.find(name);
    if (it == channels_.end() || it->second != channel) return;
    if (Channel::Member* now = channel->find(m.listener)) call(now->listener, now->confirmed);
  }
}

void Subscriber::resubscribe_all() {
  std::size_t count = 0;
  for (auto& [name, channel] : channels_) {
    if (!channel->members.empty() && !channel->in_hiredis && send_subscribe(channel)) ++count;
  }
  if (count) log::get("redis")->info("resubscribed {} live channels", count);
}

}  // namespace boxgate::redis
