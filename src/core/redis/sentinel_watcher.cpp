// Thread ownership: loop thread only (see sentinel_watcher.hpp). hiredis
// callbacks only record and arm a timer; the context is freed only by
// stop() or by hiredis itself after its disconnect callback.
#include "boxgate/redis/sentinel_watcher.hpp"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <charconv>
#include <cstring>

#include "boxgate/logging.hpp"

namespace boxgate::redis {

namespace {
constexpr auto kRetry = std::chrono::milliseconds(1000);  // per sentinel tried: no tight loop
}

std::optional<RedisAddress> parse_switch_master(std::string_view message, const std::string& master_name) {
  std::string_view words[5];
  for (std::string_view& word : words) {
    std::size_t start = message.find_first_not_of(' ');
    if (start == std::string_view::npos) return std::nullopt;
    message.remove_prefix(start);
    std::size_t end = message.find(' ');
    word = message.substr(0, end);
    message.remove_prefix(end == std::string_view::npos ? message.size() : end);
  }
  if (message.find_first_not_of(' ') != std::string_view::npos || words[0] != master_name) return std::nullopt;
  int port = 0;
  auto [end, error] = std::from_chars(words[4].data(), words[4].data() + words[4].size(), port);
  if (error != std::errc() || end != words[4].data() + words[4].size() || port < 1 || port > 65535) {
    return std::nullopt;
  }
  return RedisAddress{std::string(words[3]), port};
}

SentinelWatcher::SentinelWatcher(EventLoop& loop, const RedisSettings& settings, std::string name, OnSwitch on_switch)
    : loop_(loop),
      settings_(settings),
      name_(std::move(name)),
      on_switch_(std::move(on_switch)),
      retry_(loop, [this] { connect(); }),
      notify_(loop, [this] {
        if (on_switch_) on_switch_(switched_to_);
      }) {}

SentinelWatcher::~SentinelWatcher() { stop(); }

void SentinelWatcher::start() {
  stopped_ = false;
  connect();
}

void SentinelWatcher::stop() {
  stopped_ = true;
  retry_.cancel();
  notify_.cancel();
  close_context();
}

void SentinelWatcher::close_context() {
  subscribed_ = false;
  if (!ctx_) return;
  redisAsyncContext* ctx = ctx_;
  ctx_ = nullptr;
  ctx->data = nullptr;  // our callbacks ignore a context we let go
  redisAsyncFree(ctx);
}

void SentinelWatcher::connect() {
  if (stopped_ || ctx_ || settings_.sentinels.empty()) return;
  const RedisAddress& sentinel = settings_.sentinels[next_++ % settings_.sentinels.size()];
  redisAsyncContext* ctx = redisAsyncConnect(sentinel.host.c_str(), sentinel.port);
  if (!ctx || ctx->err) {
    if (ctx) redisAsyncFree(ctx);  // never connected: no callback of ours runs
    retry_.start(kRetry);
    return;
  }
  ctx->data = this;
  redisLibeventAttach(ctx, loop_.base());
  redisAsyncSetConnectCallback(ctx, &SentinelWatcher::on_connect);
  redisAsyncSetDisconnectCallback(ctx, &SentinelWatcher::on_disconnect);
  ctx_ = ctx;
  const std::string& user = settings_.sentinel_username;
  const std::string& password = settings_.sentinel_password;
  // AUTH's reply is not needed: a refused one makes the SUBSCRIBE fail, and
  // the resolver already reports refused AUTH on the same sentinels.
  if (!password.empty() && user.empty()) {
    redisAsyncCommand(ctx, nullptr, nullptr, "AUTH %b", password.data(), password.size());
  } else if (!password.empty()) {
    redisAsyncCommand(ctx, nullptr, nullptr, "AUTH %b %b", user.data(), user.size(), password.data(),
                      password.size());
  }
  redisAsyncCommand(ctx, &SentinelWatcher::on_message, nullptr, "SUBSCRIBE +switch-master");
}

void SentinelWatcher::on_connect(const redisAsyncContext* ctx, int status) {
  auto* self = static_cast<SentinelWatcher*>(ctx->data);
  if (!self || status == REDIS_OK) return;
  self->ctx_ = nullptr;  // hiredis frees it after this callback
  self->gone();
}

void SentinelWatcher::on_disconnect(const redisAsyncContext* ctx, int) {
  auto* self = static_cast<SentinelWatcher*>(ctx->data);
  if (!self) return;
  self->ctx_ = nullptr;  // hiredis frees it after this callback
  self->gone();
}

void SentinelWatcher::gone() {
  subscribed_ = false;
  if (!stopped_) retry_.start(kRetry);
}

void SentinelWatcher::on_message(redisAsyncContext* ctx, void* r, void*) {
  auto* self = static_cast<SentinelWatcher*>(ctx->data);
  auto* reply = static_cast<redisReply*>(r);
  if (!self || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  const redisReply* kind = reply->element[0];
  const redisReply* payload = reply->element[2];
  if (kind->type != REDIS_REPLY_STRING) return;
  if (std::strcmp(kind->str, "subscribe") == 0) {
    self->subscribed_ = true;
    return;
  }
  if (std::strcmp(kind->str, "message") != 0 || payload->type != REDIS_REPLY_STRING) return;
  auto address = parse_switch_master(std::string_view(payload->str, payload->len), self->settings_.master_name);
  if (!address) return;
  log::get("redis")->info("{}: sentinel says master {} switched to {}", self->name_, self->settings_.master_name,
                          to_string(*address));
  self->switched_to_ = *address;
  self->notify_.start(std::chrono::milliseconds(0));
}

}  // namespace boxgate::redis
