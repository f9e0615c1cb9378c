#include "boxgate/redis/connection.hpp"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "boxgate/backoff.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::redis {

namespace {
constexpr auto kConnectTimeout = std::chrono::milliseconds(2000);

// Short keepalive + user timeout so a dead peer host is noticed within ~2 s
// even on the subscriber connection, which cannot PING in hiredis 0.14.
void tune_socket(int fd) {
  int on = 1, idle = 1, interval = 1, count = 1;
  unsigned int user_timeout_ms = 2000;
  setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
  setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
  setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout_ms, sizeof user_timeout_ms);
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

}  // namespace

Connection::Connection(EventLoop& loop, const RedisSettings& settings, std::string name,
                       ops::Dependency& dependency, Events events)
    : loop_(loop),
      settings_(settings),
      name_(std::move(name)),
      dependency_(dependency),
      events_(std::move(events)),
      retry_timer_(loop, [this] { connect(); }),
      connect_deadline_(loop, [this] { force_reconnect(refused_ ? "handshake refused" : "connect timed out"); }) {
  flush_event_ = event_new(loop.base(), -1, 0, &Connection::on_flush, this);
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
  connect();
}

void Connection::stop() {
  stopped_ = true;
  retry_timer_.cancel();
  connect_deadline_.cancel();
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
  redisAsyncContext* ctx = redisAsyncConnect(settings_.host.c_str(), static_cast<int>(settings_.port));
  refused_ = false;
  if (!ctx || ctx->err) {
    problem("cannot connect to " + settings_.host + ":" + std::to_string(settings_.port) + ": " +
            (ctx ? ctx->errstr : "out of memory"));
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
    self->problem("connect to " + self->settings_.host + ":" + std::to_string(self->settings_.port) +
                  " failed: " + ctx->errstr);
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

void Connection::send_ping() {
  if (redisAsyncCommand(ctx_, &Connection::on_handshake, this, "PING") != REDIS_OK) {
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
    self->problem("Redis answered PING with " + std::string(answer->str, answer->len));
    self->refused();
    return;
  }
  self->connect_deadline_.cancel();
  self->up_ = true;
  self->attempt_ = 0;
  if (self->ever_up_) self->dependency_.count_reconnect();
  self->ever_up_ = true;
  self->dependency_.set_up(true);
  if (auto was = self->problems_.resolve()) {
    log::get("redis")->info("{}: connected to {}:{} (after '{}'{})", self->name_, self->settings_.host,
                            self->settings_.port, was->first,
                            was->second ? ", repeated " + std::to_string(was->second) + " more times" : "");
  } else {
    log::get("redis")->info("{}: connected to {}:{}", self->name_, self->settings_.host, self->settings_.port);
  }
  if (self->events_.on_up) self->events_.on_up();
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
    if (!refused_) problem(why);  // a refusal was logged as such
    redisAsyncFree(ctx);
    schedule_reconnect();
    return;
  }
  log::get("redis")->warn("{}: dropping connection: {}", name_, why);
  redisAsyncFree(ctx);  // runs pending callbacks with null, then on_disconnect -> lost()
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

void Connection::schedule_reconnect() {
  if (stopped_ || retry_timer_.pending()) return;
  retry_timer_.start(jittered_backoff(attempt_++, settings_.backoff_max_ms));
}

}  // namespace boxgate::redis
