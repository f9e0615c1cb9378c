#pragma once
// ShardLink: one pub/sub connection to one Redis Cluster node for sharded
// pub/sub (SSUBSCRIBE/SUNSUBSCRIBE, smessage pushes). hiredis 0.14's async
// API cannot carry it (an `smessage` trips its assertion), so the socket is
// a libevent bufferevent and the replies are parsed with hiredis's
// redisReader (iterative, bounded by kMaxBuffered) and handed over in order.
//
// Thread ownership: loop thread only. Events run on the loop thread from
// inside the link's own libevent callbacks: they may call close() and
// send(), but must not destroy the link (its owner frees it on a later turn).
//
// Life: start() connects once (no reconnect: the owner makes a new link);
// up after AUTH (when a password is set) and a PING were answered. While up
// a PING goes every heartbeat_ms; one unanswered for dead_after_ms closes
// the link. on_down runs once, when an attempt fails or an up link ends.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "boxgate/config.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/redis/slot_map.hpp"

struct bufferevent;
struct redisReader;
struct redisReply;

namespace boxgate::redis {

class ShardLink {
 public:
  struct Events {
    std::function<void()> on_up;
    std::function<void()> on_down;
    // Every reply after the handshake except PING's, in order; valid during the call.
    std::function<void(const redisReply*)> on_reply;
  };
  // A reply or message larger than this is not one Redis should send us
  // (pub/sub buffers are capped at 32 MB by Redis): the link is closed.
  static constexpr std::size_t kMaxBuffered = 64u << 20;

  ShardLink(EventLoop& loop, const RedisSettings& settings, NodeAddress node, Events events);
  ~ShardLink();
  ShardLink(const ShardLink&) = delete;
  ShardLink& operator=(const ShardLink&) = delete;

  void start();
  // Queues a RESP command (written on this loop turn). Ignored unless up.
  void send(std::string_view resp);
  void close(const char* why);
  bool up() const noexcept { return state_ == State::up; }
  bool closed() const noexcept { return state_ == State::closed; }
  const NodeAddress& node() const noexcept { return node_; }

 private:
  enum class State { idle, connecting, handshake, up, closed };
  static void on_read(bufferevent* bev, void* self);
  static void on_event(bufferevent* bev, short what, void* self);
  void connected();
  void read();
  void handle(const redisReply* reply);
  void heartbeat();
  void release();

  EventLoop& loop_;
  RedisSettings settings_;
  NodeAddress node_;
  Events events_;
  State state_ = State::idle;
  bufferevent* bev_ = nullptr;
  redisReader* reader_ = nullptr;
  int handshake_left_ = 0;
  bool in_callback_ = false;
  std::optional<std::chrono::steady_clock::time_point> ping_sent_;
  Timer connect_deadline_;
  Timer heartbeat_timer_;
};

}  // namespace boxgate::redis
