#include "boxgate/redis/subscriber.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <cstring>

#include "boxgate/logging.hpp"

namespace boxgate::redis {

struct Subscriber::Channel {
  Subscriber* owner;
  std::string name;
  Listener* listener;       // null once unsubscribe() was called
  bool in_hiredis = false;  // hiredis holds this record as a callback privdata
  bool confirmed_once = false;
};

Subscriber::Subscriber(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency)
    : connection_(loop, settings, "redis subscriber connection", dependency, {[this] { resubscribe_all(); }, {}}) {}

Subscriber::~Subscriber() { stop(); }

void Subscriber::stop() {
  connection_.stop();  // hiredis calls every channel back with null: records not held any more
  for (auto& [name, channel] : channels_) delete channel;
  channels_.clear();
}

Subscriber::Result Subscriber::subscribe(const std::string& channel_name, Listener* listener) {
  if (!connection_.up()) return Result::unavailable;
  if (channels_.count(channel_name)) return Result::busy;
  auto* channel = new Channel{this, channel_name, listener};
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
  if (redisAsyncCommand(ctx, &Subscriber::on_reply, channel, "SUBSCRIBE %b", channel->name.data(),
                        channel->name.size()) != REDIS_OK) {
    return false;
  }
  channel->in_hiredis = true;
  connection_.flush_soon();
  return true;
}

void Subscriber::unsubscribe(const std::string& channel_name) {
  auto it = channels_.find(channel_name);
  if (it == channels_.end()) return;
  Channel* channel = it->second;
  channel->listener = nullptr;
  redisAsyncContext* ctx = connection_.context();
  if (!channel->in_hiredis || !ctx) {
    release(channel);
    return;
  }
  // No callback of its own: hiredis hands the "unsubscribe" reply to the
  // channel's SUBSCRIBE callback, which releases the record.
  if (redisAsyncCommand(ctx, nullptr, nullptr, "UNSUBSCRIBE %b", channel->name.data(), channel->name.size()) !=
      REDIS_OK) {
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
    if (!channel->listener) release(channel);
    return;
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING) {
    return;
  }
  const char* kind = reply->element[0]->str;
  if (std::strcmp(kind, "message") == 0) {
    if (channel->listener) {
      const redisReply* payload = reply->element[2];
      channel->listener->on_message(std::string_view(payload->str, payload->len));
    } else if (orphans_) {
      orphans_->inc();
    }
  } else if (std::strcmp(kind, "subscribe") == 0) {
    if (!channel->listener) return;
    if (channel->confirmed_once) {
      channel->listener->on_resubscribed();
    } else {
      channel->confirmed_once = true;
      channel->listener->on_subscribed();
    }
  } else if (std::strcmp(kind, "unsubscribe") == 0) {
    // hiredis removed its callback: the record is ours to free.
    channel->in_hiredis = false;
    release(channel);
  }
}

void Subscriber::resubscribe_all() {
  std::size_t count = 0;
  for (auto& [name, channel] : channels_) {
    if (channel->listener && !channel->in_hiredis && send_subscribe(channel)) ++count;
  }
  if (count) log::get("redis")->info("resubscribed {} live channels", count);
}

}  // namespace boxgate::redis
