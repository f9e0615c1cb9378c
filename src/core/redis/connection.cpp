#include "boxgate/redis/connection.hpp"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <string_view>

#include "boxgate/backoff.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/redis/socket_progress.hpp"
#include "boxgate/redis/sentinel_resolver.hpp"
#include "boxgate/redis/sentinel_watcher.hpp"

namespace boxgate::redis {

namespace {
constexpr auto kConnectTimeout = std::chrono::milliseconds(2000);


}  // namespace

Connection::Connection(EventLoop& loop, const RedisSettings& settings, std::string name,
                       ops::Dependency& dependency, Events events)
    : loop_(loop),
      settings_(settings),
      name_(std::move(name)),
      dependency_(dependency),
      events_(std::move(events)),
      retry_timer_(loop, [this] { connect(); }),
      connect_deadline_(loop, [this] { force_reconnect(refused_ ? "handshake refused" : "connect timed out"); }),
      drop_timer_(loop, [this] { force_reconnect(drop_why_); }),
      target_{settings.host, static_cast<int>(settings.port)} {
  flush_event_ = event_new(loop.base(), -1, 0, &Connection::on_flush, this);
  if (settings.mode == RedisMode::sentinel) {
    resolver_ = std::make_unique<SentinelResolver>(loop, settings, name_);
    watcher_ = std::make_unique<SentinelWatcher>(loop, settings, name_,
                                                 [this](const RedisAddress& to) { master_switched(to); });
  }
}

Connection::~Connection() {
  stop();
  event_free(flush_event_);
}

int Connection::fd() const noexcept { return up_ && ctx_ ? ctx_->c.fd : -1; }

void Connection::flush_soon() { event_active(flush_event_, 0, 0); }

void Connection::on_flush(int, short, void* self) {
  auto* connection = static_cast<Connection*>(self);
  if (connection->up_ && connection->ctx_) redisAsyncHandleWrite(connection->ctx_);
}

void Connection::start() {
  stopped_ = false;
  if (watcher_) watcher_->start();
  connect();
}

// Runs from the watcher's timer, outside hiredis. Only a switch away from
// where this connection is (or is about to be) acts; the new address is not
// used as such: the reconnect resolves and checks ROLE as always.
void Connection::master_switched(const RedisAddress& to) {
  if (stopped_ || to == target_) return;
  if (ctx_) return force_reconnect("the sentinels switched the master");
  if (resolver_->busy()) return;
  retry_timer_.cancel();
  attempt_ = 0;
  connect();
}

void Connection::stop() {
  stopped_ = true;
  retry_timer_.cancel();
  connect_deadline_.cancel();
  drop_timer_.cancel();
  if (resolver_) resolver_->cancel();
  if (watcher_) watcher_->stop();
  if (ctx_) {
    redisAsyncContext* ctx = ctx_;
    ctx_ = nullptr;
    up_ = false;
    dependency_.set_up(false);
    ctx->data = nullptr;  // our callbacks ignore a context we let go
    redisAsyncFree(ctx);
  }
}

void Connection::connect() {
  if (stopped_ || ctx_) return;
  if (resolver_) return resolve_then_connect();
  open();
}

// Every attempt asks the sentinels again (the spec: a cached address may be
// the old master). Readiness carries the reason while none names a master;
// the log gets it once per change, not once per backoff step.
void Connection::resolve_then_connect() {
  resolver_->resolve([this](const SentinelResolver::Result& result) {
    if (stopped_ || ctx_) return;
    if (!result.master) {
      note_problem(result.error);
      return schedule_reconnect();
    }
    if (!(*result.master == target_) || (!ever_up_ && attempt_ == 0)) {
      log::get("redis")->info("{}: sentinels name {} as master {}", name_, to_string(*result.master),
                              settings_.master_name);
    }
    target_ = *result.master;
    open();
  });
}

void Connection::open() {
  redisAsyncContext* ctx = redisAsyncConnect(target_.host.c_str(), target_.port);
  refused_ = false;
  if (!ctx || ctx->err) {
    problem("cannot connect to " + to_string(target_) + ": " + (ctx ? ctx->errstr : "out of memory"));
    if (ctx) redisAsyncFree(ctx);
    schedule_reconnect();
    return;
  }
  ctx->data = this;
  redisLibeventAttach(ctx, loop_.base());
  redisAsyncSetConnectCallback(ctx, &Connection::on_connect);
  redisAsyncSetDisconnectCallback(ctx, &Connection::on_disconnect);
  ctx_ = ctx;
  connect_deadline_.start(kConnectTimeout);
}

void Connection::on_connect(const redisAsyncContext* ctx, int status) {
  auto* self = static_cast<Connection*>(ctx->data);
  if (!self) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback; no disconnect callback follows.
    self->ctx_ = nullptr;
    self->connect_deadline_.cancel();
    self->problem("connect to " + to_string(self->target_) + " failed: " + ctx->errstr);
    self->schedule_reconnect();
    return;
  }
  self->connected();
}

// The handshake: AUTH (when a password is configured), then PING. TCP alone
// proves little (a frozen Redis still completes the handshake in the kernel):
// the connection counts as up once Redis answers the PING. The connect
// deadline keeps running until then, so a refused AUTH or an error to PING
// drops the connection and the backoff tries again.
// Runs inside hiredis's connect callback, so a failure here must not free
// the context: the connect deadline will drop it.
void Connection::connected() {
  tune_socket(ctx_->c.fd);
  if (settings_.password.empty()) return send_ping();
  // Before the PING, never after: a PING that went first could succeed as
  // Redis's default user and count as up with the wrong identity.
  const std::string& user = settings_.username;
  const std::string& password = settings_.password;
  int sent = user.empty() ? redisAsyncCommand(ctx_, &Connection::on_auth, this, "AUTH %b", password.data(),
                                              password.size())
                          : redisAsyncCommand(ctx_, &Connection::on_auth, this, "AUTH %b %b", user.data(),
                                              user.size(), password.data(), password.size());
  if (sent != REDIS_OK) log::get("redis")->warn("{}: cannot send AUTH", name_);
}

// Sentinel mode asks ROLE instead of PING: it proves Redis answers just as
// well, and says whether this is still the master.
void Connection::send_ping() {
  const char* command = resolver_ ? "ROLE" : "PING";
  if (redisAsyncCommand(ctx_, &Connection::on_handshake, this, command) != REDIS_OK) {
    log::get("redis")->warn("{}: cannot send the handshake PING", name_);
  }
}

void Connection::on_auth(redisAsyncContext* ctx, void* reply, void*) {
  auto* self = static_cast<Connection*>(ctx->data);
  if (!self || !reply || self->ctx_ != ctx) return;  // connection already gone
  auto* answer = static_cast<redisReply*>(reply);
  if (answer->type == REDIS_REPLY_ERROR) {
    // Redis's text (e.g. WRONGPASS) never repeats the password.
    const std::string& user = self->settings_.username;
    self->problem("Redis refused AUTH as " + (user.empty() ? std::string("the default user") : "'" + user + "'") +
                  ": " + std::string(answer->str, answer->len));
    self->refused();
    return;
  }
  self->send_ping();
}

void Connection::on_handshake(redisAsyncContext* ctx, void* reply, void*) {
  auto* self = static_cast<Connection*>(ctx->data);
  if (!self || !reply || self->ctx_ != ctx) return;  // connection already gone
  auto* answer = static_cast<redisReply*>(reply);
  if (answer->type == REDIS_REPLY_ERROR) {
    // e.g. LOADING or NOAUTH: Redis is there but cannot serve; the connect
    // deadline drops this connection and the backoff tries again.
    // In sentinel mode readiness says so too (e.g. an ACL user without +role).
    std::string text(answer->str, answer->len);
    if (self->resolver_) {
      self->note_problem(to_string(self->target_) + " answered ROLE with " + text);
    } else {
      self->problem("Redis answered PING with " + text);
    }
    self->refused();
    return;
  }
  if (self->resolver_ && !self->is_master(answer)) return;
  self->handshake_done();
}

void Connection::handshake_done() {
  connect_deadline_.cancel();
  up_ = true;
  attempt_ = 0;
  if (ever_up_) dependency_.count_reconnect();
  ever_up_ = true;
  dependency_.set_up(true);
  if (auto was = problems_.resolve()) {
    log::get("redis")->info("{}: connected to {} (after '{}'{})", name_, to_string(target_), was->first,
                            was->second ? ", repeated " + std::to_string(was->second) + " more times" : "");
  } else {
    log::get("redis")->info("{}: connected to {}", name_, to_string(target_));
  }
  if (events_.on_up) events_.on_up();
}

// ROLE's first element is "master", "slave" or "sentinel". Anything but a
// master is dropped at once (not at the connect deadline) and resolved again.
bool Connection::is_master(const redisReply* answer) {
  bool named = answer->type == REDIS_REPLY_ARRAY && answer->elements > 0 &&
               answer->element[0]->type == REDIS_REPLY_STRING;
  std::string role = named ? std::string(answer->element[0]->str, answer->element[0]->len) : "unknown";
  if (role == "master") return true;
  note_problem(to_string(target_) + " is not the master (role " + role + ")");
  drop_soon("");
  return false;
}

// Readiness gets every problem; the log only a new one (a failover repeats
// the same one every backoff step until the sentinels switch).
void Connection::note_problem(const std::string& text) {
  problem(text);
  dependency_.set_down(text);
}

void Connection::problem(const std::string& text) {
  if (problems_.report(text)) {
    log::get("redis")->warn("{}: {} (retrying; logged again when it changes)", name_, text);
  } else {
    log::get("redis")->debug("{}: {} (again)", name_, text);
  }
}

// Inside a hiredis reply callback, where the context must not be freed: the
// connect deadline, moved to now, drops it on the next loop iteration.
void Connection::refused() {
  refused_ = true;
  connect_deadline_.start(std::chrono::milliseconds(0));
}

void Connection::drop_soon(const char* why) {
  drop_why_ = why;
  drop_timer_.start(std::chrono::milliseconds(0));
}

void Connection::note_reply(const redisAsyncContext* ctx, const redisReply* reply) {
  if (!reply || reply->type != REDIS_REPLY_ERROR || std::string_view(reply->str, reply->len).substr(0, 9) != "READONLY ") {
    return;
  }
  auto* self = static_cast<Connection*>(ctx->data);
  // Standalone mode has nobody to ask for another address: left as it was.
  if (!self || !self->resolver_ || self->ctx_ != ctx || self->drop_timer_.pending()) return;
  self->drop_soon("Redis answered READONLY: this node is a replica now");
}

void Connection::note_role(const redisAsyncContext* ctx, const redisReply* reply) {
  auto* self = static_cast<Connection*>(ctx->data);
  if (!reply || reply->type == REDIS_REPLY_ERROR || !self || !self->resolver_ || self->ctx_ != ctx) return;
  if (!self->drop_timer_.pending()) self->is_master(reply);
}

void Connection::on_disconnect(const redisAsyncContext* ctx, int status) {
  auto* self = static_cast<Connection*>(ctx->data);
  if (!self) return;
  self->lost(status == REDIS_OK ? "closed" : ctx->errstr);
}

void Connection::lost(const char* why) {
  // hiredis frees the context when this returns.
  bool was_up = up_;
  connect_deadline_.cancel();
  drop_timer_.cancel();  // a drop planned for this connection must not hit the next
  ctx_ = nullptr;
  up_ = false;
  dependency_.set_up(false);
  if (was_up) {
    log::get("redis")->warn("{}: connection lost: {}", name_, why);
    if (events_.on_down) events_.on_down();
  }
  schedule_reconnect();
}

void Connection::force_reconnect(const char* why) {
  if (!ctx_) return;
  redisAsyncContext* ctx = ctx_;
  if (!up_) {
    // Not up yet: if TCP is not connected either, hiredis will not call the
    // disconnect callback, so both cases are finished here.
    ctx->data = nullptr;
    ctx_ = nullptr;
    if (*why && !refused_) problem(why);  // "" or a refusal: the caller logged it
    redisAsyncFree(ctx);
    schedule_reconnect();
    return;
  }
  if (*why) log::get("redis")->warn("{}: dropping connection: {}", name_, why);
  redisAsyncFree(ctx);  // runs pending callbacks with null, then on_disconnect -> lost()
}

void Connection::schedule_reconnect() {
  if (stopped_ || retry_timer_.pending()) return;
  retry_timer_.start(jittered_backoff(attempt_++, settings_.backoff_max_ms));
}

}  // namespace boxgate::redis
