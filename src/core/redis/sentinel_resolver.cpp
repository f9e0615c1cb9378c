// Thread ownership: loop thread only (see sentinel_resolver.hpp). One hiredis
// context at a time, to the sentinel being asked; hiredis callbacks only
// record what happened and arm step_, which acts on it from the loop.
#include "boxgate/redis/sentinel_resolver.hpp"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <charconv>

#include "boxgate/logging.hpp"

namespace boxgate::redis {

SentinelResolver::SentinelResolver(EventLoop& loop, const RedisSettings& settings, std::string name)
    : loop_(loop),
      settings_(settings),
      name_(std::move(name)),
      order_(settings.sentinels),
      deadline_(loop,
                [this] {
                  answered(Outcome::failed,
                           "no answer within " + std::to_string(settings_.sentinel_timeout_ms) + " ms");
                }),
      step_(loop, [this] { step(); }) {}

SentinelResolver::~SentinelResolver() { cancel(); }

void SentinelResolver::resolve(Done done) {
  bool running = busy();
  done_ = std::move(done);
  if (running) return;
  problems_.clear();
  any_answered_ = false;
  if (order_.empty()) return finish({std::nullopt, "no sentinel answered: none configured"});
  ask(0);
}

void SentinelResolver::cancel() {
  deadline_.cancel();
  step_.cancel();
  close_context();
  done_ = nullptr;
}

void SentinelResolver::ask(std::size_t index) {
  index_ = index;
  outcome_ = Outcome::none;
  master_.reset();
  const RedisAddress& sentinel = order_[index];
  redisAsyncContext* ctx = redisAsyncConnect(sentinel.host.c_str(), sentinel.port);
  if (!ctx || ctx->err) {
    std::string why = ctx ? ctx->errstr : "out of memory";
    if (ctx) redisAsyncFree(ctx);  // never connected: no callback of ours runs
    return answered(Outcome::failed, why);
  }
  ctx->data = this;
  redisLibeventAttach(ctx, loop_.base());
  redisAsyncSetConnectCallback(ctx, &SentinelResolver::on_connect);
  redisAsyncSetDisconnectCallback(ctx, &SentinelResolver::on_disconnect);
  ctx_ = ctx;
  // Queued before the TCP connect completes: hiredis sends them once it does.
  const std::string& user = settings_.sentinel_username;
  const std::string& password = settings_.sentinel_password;
  if (!password.empty() && user.empty()) {
    redisAsyncCommand(ctx, &SentinelResolver::on_auth, nullptr, "AUTH %b", password.data(), password.size());
  } else if (!password.empty()) {
    redisAsyncCommand(ctx, &SentinelResolver::on_auth, nullptr, "AUTH %b %b", user.data(), user.size(),
                      password.data(), password.size());
  }
  const std::string& master = settings_.master_name;
  redisAsyncCommand(ctx, &SentinelResolver::on_answer, nullptr, "SENTINEL get-master-addr-by-name %b",
                    master.data(), master.size());
  deadline_.start(std::chrono::milliseconds(settings_.sentinel_timeout_ms));
}

void SentinelResolver::on_connect(const redisAsyncContext* ctx, int status) {
  auto* self = static_cast<SentinelResolver*>(ctx->data);
  if (!self || status == REDIS_OK) return;
  self->ctx_ = nullptr;  // hiredis frees it after this callback
  self->answered(Outcome::failed, ctx->errstr);
}

void SentinelResolver::on_disconnect(const redisAsyncContext* ctx, int status) {
  auto* self = static_cast<SentinelResolver*>(ctx->data);
  if (!self) return;
  self->ctx_ = nullptr;  // hiredis frees it after this callback
  self->answered(Outcome::failed, status == REDIS_OK ? "closed the connection" : ctx->errstr);
}

void SentinelResolver::on_auth(redisAsyncContext* ctx, void* r, void*) {
  auto* self = static_cast<SentinelResolver*>(ctx->data);
  auto* reply = static_cast<redisReply*>(r);
  if (!self || !reply || reply->type != REDIS_REPLY_ERROR) return;
  // Sentinel's text (e.g. WRONGPASS) never repeats the password.
  self->answered(Outcome::failed, "refused AUTH: " + std::string(reply->str, reply->len));
}

void SentinelResolver::on_answer(redisAsyncContext* ctx, void* r, void*) {
  auto* self = static_cast<SentinelResolver*>(ctx->data);
  auto* reply = static_cast<redisReply*>(r);
  if (!self || !reply) return;  // the connection went: on_disconnect tells
  if (reply->type == REDIS_REPLY_NIL) return self->answered(Outcome::no_master, "knows no master");
  if (reply->type == REDIS_REPLY_ERROR) return self->answered(Outcome::failed, std::string(reply->str, reply->len));
  bool pair = reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
              reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_STRING;
  int port = 0;
  if (pair) {
    const redisReply* text = reply->element[1];
    auto [end, error] = std::from_chars(text->str, text->str + text->len, port);
    pair = error == std::errc() && end == text->str + text->len && port > 0 && port <= 65535 &&
           reply->element[0]->len > 0;
  }
  if (!pair) return self->answered(Outcome::failed, "answered something that is not host, port");
  self->master_ = RedisAddress{std::string(reply->element[0]->str, reply->element[0]->len), port};
  self->answered(Outcome::master, "");
}

// The first outcome of the current sentinel counts; the rest (a late reply
// after the deadline, the disconnect that follows an error) are ignored.
void SentinelResolver::answered(Outcome outcome, std::string detail) {
  if (outcome_ != Outcome::none || !busy()) return;
  outcome_ = outcome;
  if (outcome != Outcome::master) {
    if (outcome == Outcome::no_master) any_answered_ = true;
    problems_ += (problems_.empty() ? "" : "; ") + to_string(order_[index_]) + " " + detail;
  }
  step_.start(std::chrono::milliseconds(0));
}

void SentinelResolver::step() {
  deadline_.cancel();
  close_context();
  if (outcome_ == Outcome::master) {
    // The spec: the sentinel that answered goes first next time.
    RedisAddress sentinel = order_[index_];
    order_.erase(order_.begin() + static_cast<std::ptrdiff_t>(index_));
    order_.insert(order_.begin(), sentinel);
    return finish({master_, ""});
  }
  log::get("redis")->debug("{}: sentinel {}", name_, problems_.substr(problems_.rfind("; ") + 1));
  if (index_ + 1 < order_.size()) return ask(index_ + 1);
  std::string error = any_answered_ ? "sentinels know no master " + settings_.master_name
                                    : "no sentinel answered: " + problems_;
  finish({std::nullopt, std::move(error)});
}

void SentinelResolver::close_context() {
  if (!ctx_) return;
  redisAsyncContext* ctx = ctx_;
  ctx_ = nullptr;
  ctx->data = nullptr;  // our callbacks ignore a context we let go
  redisAsyncFree(ctx);
}

void SentinelResolver::finish(Result result) {
  Done done = std::move(done_);
  done_ = nullptr;
  if (done) done(result);
}

}  // namespace boxgate::redis
