#pragma once
// SentinelWatcher: a subscription to `+switch-master` on one sentinel, as a
// hint that the master changed. The Sentinel clients spec allows it as a
// hint only: the caller (redis::Connection) still resolves and checks ROLE
// before it trusts an address; the hint only saves waiting for a dead
// connection to be noticed (a frozen or unreachable old master keeps the
// socket open until the heartbeat gives up).
//
// Thread ownership: the loop thread owns the watcher and its one hiredis
// context; every method and callback runs there. `on_switch` is called from
// a loop timer, never from inside a hiredis callback. When its sentinel
// goes away, the next one in the list is tried after retry_ms; a watcher
// that cannot subscribe anywhere costs nothing but that timer.

#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "boxgate/config.hpp"
#include "boxgate/loop/event_loop.hpp"

struct redisAsyncContext;

namespace boxgate::redis {

class SentinelWatcher {
 public:
  using OnSwitch = std::function<void(const RedisAddress& new_master)>;
  SentinelWatcher(EventLoop& loop, const RedisSettings& settings, std::string name, OnSwitch on_switch);
  ~SentinelWatcher();
  SentinelWatcher(const SentinelWatcher&) = delete;
  SentinelWatcher& operator=(const SentinelWatcher&) = delete;

  void start();
  void stop();
  bool subscribed() const noexcept { return subscribed_; }

 private:
  static void on_connect(const redisAsyncContext* ctx, int status);
  static void on_disconnect(const redisAsyncContext* ctx, int status);
  static void on_message(redisAsyncContext* ctx, void* reply, void* privdata);
  void connect();
  void gone();
  void close_context();

  EventLoop& loop_;
  RedisSettings settings_;
  std::string name_;
  OnSwitch on_switch_;
  redisAsyncContext* ctx_ = nullptr;
  std::size_t next_ = 0;  // the sentinel the next attempt asks
  bool stopped_ = true;
  bool subscribed_ = false;
  RedisAddress switched_to_;
  Timer retry_;
  Timer notify_;  // leaves hiredis's callback before calling on_switch
};

// "<name> <old-ip> <old-port> <new-ip> <new-port>" (a +switch-master message)
// -> the new address when <name> is `master_name`.
std::optional<RedisAddress> parse_switch_master(std::string_view message, const std::string& master_name);

}  // namespace boxgate::redis
