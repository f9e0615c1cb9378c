#pragma once
// RedisConnection: one hiredis async connection driven by an EventLoop, that
// reconnects by itself with jittered exponential backoff.
//
// Thread ownership: the loop thread owns the hiredis context; every method and
// callback runs there. hiredis 0.14 frees a context itself after its
// disconnect callback, so context() is only valid while up() and must not be
// kept across loop iterations. A connection that breaks runs on_down, then is
// retried after min(backoff_max_ms, 100 ms * 2^attempt) (half of it jittered).
// Each new connection is up once it has authenticated (AUTH, when
// RedisSettings has a password) and Redis has answered a PING.
//
// Sentinel mode (RedisSettings::mode): before every connection attempt the
// sentinels are asked for the master (SentinelResolver), and the handshake's
// PING is a ROLE that must say "master"; a replica (a stale answer during a
// failover) is dropped and the backoff resolves again. A -READONLY reply to
// any command (the master was demoted under a live connection) drops the
// connection the same way (note_reply). While no master can be found,
// readiness carries the resolver's reason. A `+switch-master` from a
// sentinel naming another address (SentinelWatcher) drops the connection at
// once, or starts a waiting reconnect now: a hint that saves the wait for a
// frozen old master's socket to be given up, never trusted without ROLE.

#include <functional>
#include <memory>
#include <string>

#include "boxgate/config.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/readiness.hpp"

struct redisAsyncContext;
struct redisReply;

namespace boxgate::redis {

class SentinelResolver;
class SentinelWatcher;

class Connection {
 public:
  struct Events {
    std::function<void()> on_up;    // connected (first time or again)
    std::function<void()> on_down;  // lost; hiredis already failed its pending callbacks
  };

  Connection(EventLoop& loop, const RedisSettings& settings, std::string name, ops::Dependency& dependency,
             Events events);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void start();
  // Closes for good (shutdown). Pending callbacks run with a null reply.
  void stop();
  // Drops the connection now (peer found dead) and reconnects after backoff.
  // @warning never call from inside a hiredis callback.
  void force_reconnect(const char* why);

  // Call after queueing commands: hiredis's buffer is written at the end of
  // this loop iteration rather than on the next write event. The write event
  // is then added and removed in one iteration, which the epoll changelist
  // turns into no syscall, and the commands leave one epoll round trip sooner.
  void flush_soon();

  // For command callbacks: a -READONLY error means this connection reaches a
  // demoted master (now a replica); it is dropped after the callback returns
  // and the master resolved again. Any other reply is left alone.
  static void note_reply(const redisAsyncContext* ctx, const redisReply* reply);
  // For the heartbeat's ROLE reply (sentinel mode): not "master" any more
  // drops the connection the same way.
  static void note_role(const redisAsyncContext* ctx, const redisReply* reply);
  bool sentinel_mode() const noexcept { return static_cast<bool>(resolver_); }

  bool up() const noexcept { return up_; }
  redisAsyncContext* context() const noexcept { return up_ ? ctx_ : nullptr; }
  int fd() const noexcept;  // the socket while up, else -1
  const std::string& name() const noexcept { return name_; }

 private:
  static void on_connect(const redisAsyncContext* ctx, int status);
  static void on_disconnect(const redisAsyncContext* ctx, int status);
  static void on_auth(redisAsyncContext* ctx, void* reply, void* privdata);
  static void on_handshake(redisAsyncContext* ctx, void* reply, void* privdata);
  static void on_flush(int, short, void* self);
  void connect();
  void resolve_then_connect();
  void open();
  void connected();
  void send_ping();
  void handshake_done();
  bool is_master(const redisReply* answer);
  void drop_soon(const char* why);
  void note_problem(const std::string& problem);
  void master_switched(const RedisAddress& to);
  void lost(const char* why);
  void schedule_reconnect();
  // A failed attempt's reason: warned once per change, repeats at debug.
  void problem(const std::string& text);
  // Redis answered the handshake with an error: drop the attempt at once.
  void refused();

  EventLoop& loop_;
  RedisSettings settings_;
  std::string name_;
  ops::Dependency& dependency_;
  Events events_;
  redisAsyncContext* ctx_ = nullptr;
  bool up_ = false;
  bool stopped_ = false;
  bool ever_up_ = false;
  int attempt_ = 0;
  bool refused_ = false;  // this attempt's handshake was answered with an error (already logged)
  log::ProblemLog problems_;
  Timer retry_timer_;
  Timer connect_deadline_;
  Timer drop_timer_;  // drops the connection outside hiredis's callbacks
  const char* drop_why_ = "";
  struct event* flush_event_ = nullptr;
  RedisAddress target_;                         // where the next attempt connects
  std::unique_ptr<SentinelResolver> resolver_;  // sentinel mode only
  std::unique_ptr<SentinelWatcher> watcher_;    // sentinel mode only: +switch-master hints
};

}  // namespace boxgate::redis
