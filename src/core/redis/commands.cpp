#include "boxgate/redis/commands.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <string_view>

#include "boxgate/logging.hpp"
#include "boxgate/redis/slot_map.hpp"
#include "cluster_commands.hpp"

namespace boxgate::redis {

namespace {
// Each privdata is a heap callback that hiredis hands back exactly once.
void answer_get(const Commands::GetCallback& done, const redisReply* reply) {
  if (!reply || reply->type == REDIS_REPLY_ERROR) {
    done(false, std::nullopt);
  } else if (reply->type == REDIS_REPLY_STRING) {
    done(true, std::string(reply->str, reply->len));
  } else {
    done(true, std::nullopt);
  }
}

void answer_done(const Commands::DoneCallback& done, const redisReply* reply) {
  if (!reply) return done(Commands::Status::lost, 0);
  if (reply->type == REDIS_REPLY_ERROR) return done(Commands::Status::error, 0);
  done(Commands::Status::ok, reply->type == REDIS_REPLY_INTEGER ? reply->integer : 0);
}

void on_get(redisAsyncContext* ctx, void* r, void* privdata) {
  std::unique_ptr<Commands::GetCallback> done(static_cast<Commands::GetCallback*>(privdata));
  auto* reply = static_cast<redisReply*>(r);
  Connection::note_reply(ctx, reply);
  answer_get(*done, reply);
}

void on_reply(redisAsyncContext* ctx, void* r, void* privdata) {
  std::unique_ptr<Commands::ReplyCallback> done(static_cast<Commands::ReplyCallback*>(privdata));
  Connection::note_reply(ctx, static_cast<const redisReply*>(r));
  (*done)(static_cast<const redisReply*>(r));
}

void on_done(redisAsyncContext* ctx, void* r, void* privdata) {
  std::unique_ptr<Commands::DoneCallback> done(static_cast<Commands::DoneCallback*>(privdata));
  auto* reply = static_cast<redisReply*>(r);
  Connection::note_reply(ctx, reply);
  answer_done(*done, reply);
}
// Sentinel mode: the SET before a PUBLISH. A -READONLY here (a demoted
// master) marks the pair lost, so the caller sends it again on the new
// master instead of counting a PUBLISH that reached nobody as delivered.
void on_set(redisAsyncContext* ctx, void* r, void* privdata) {
  std::unique_ptr<std::shared_ptr<bool>> readonly(static_cast<std::shared_ptr<bool>*>(privdata));
  auto* reply = static_cast<redisReply*>(r);
  Connection::note_reply(ctx, reply);
  if (reply && reply->type == REDIS_REPLY_ERROR && std::string_view(reply->str, reply->len).substr(0, 8) == "READONLY") {
    **readonly = true;
  }
}

// The heartbeat's reply: PING, or ROLE in sentinel mode (which also drops a
// connection whose node is no longer the master).
void on_beat(redisAsyncContext* ctx, void* r, void* privdata) {
  Connection::note_role(ctx, static_cast<const redisReply*>(r));
  on_done(ctx, r, privdata);
}
}  // namespace

Commands::Commands(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency,
                   std::function<void()> on_up, std::function<void()> on_dead)
    : connection_(loop, settings, "redis command connection", dependency,
                  {on_up, [this] {
                     ping_sent_.reset();
                     last_counters_.reset();
                   }}),
      dependency_(dependency),
      settings_(settings),
      on_dead_(std::move(on_dead)),
      heartbeat_timer_(loop, [this] { heartbeat(); }) {
  if (settings.mode == RedisMode::cluster) {
    cluster_ = std::make_unique<ClusterCommands>(loop, settings, dependency, std::move(on_up));
    return;
  }
  heartbeat_timer_.start(std::chrono::milliseconds(settings.heartbeat_ms), true);
}

Commands::~Commands() = default;

void Commands::start() {
  if (cluster_) return cluster_->start();
  connection_.start();
}

void Commands::stop() {
  if (cluster_) return cluster_->stop();
  connection_.stop();
}

bool Commands::up() const noexcept {
  if (cluster_) return cluster_->up();
  return connection_.up() && dependency_.state() != ops::Dependency::State::stalled;
}

bool Commands::get(const std::string& key, GetCallback done) {
  if (cluster_) {
    return cluster_->run({"GET", key}, [done = std::move(done)](const redisReply* reply) { answer_get(done, reply); });
  }
  redisAsyncContext* ctx = connection_.context();
  if (!ctx) return false;
  auto* owned = new GetCallback(std::move(done));
  std::string command = resp_command({"GET", key});
  if (redisAsyncFormattedCommand(ctx, on_get, owned, command.data(), command.size()) != REDIS_OK) {
    delete owned;
    return false;
  }
  connection_.flush_soon();
  return true;
}

// RESP written here rather than by redisAsyncCommandArgv: hiredis formats
// each argument with sdscatfmt, which costs more than the rest of the
// command's handling; a plain append does the same job.
std::string resp_command(const std::vector<std::string_view>& argv) {
  std::size_t size = 16;
  for (std::string_view arg : argv) size += arg.size() + 16;
  std::string out;
  out.reserve(size);
  auto number = [&out](char kind, std::size_t n) {
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, n).ptr;
    out.push_back(kind);
    out.append(digits, end);
    out.append("\r\n");
  };
  number('*', argv.size());
  for (std::string_view arg : argv) {
    number('$', arg.size());
    out.append(arg);
    out.append("\r\n");
  }
  return out;
}

bool Commands::run(const std::vector<std::string_view>& argv, ReplyCallback done) {
  if (cluster_) return cluster_->run(argv, std::move(done));
  redisAsyncContext* ctx = connection_.context();
  if (!ctx) return false;
  std::string command = resp_command(argv);
  auto* owned = done ? new ReplyCallback(std::move(done)) : nullptr;
  if (redisAsyncFormattedCommand(ctx, owned ? on_reply : nullptr, owned, command.data(), command.size()) != REDIS_OK) {
    delete owned;
    return false;
  }
  connection_.flush_soon();
  return true;
}

bool Commands::may_combine(std::string_view key_a, std::string_view key_b) const noexcept {
  return !cluster_ || key_slot(key_a) == key_slot(key_b);
}

std::optional<RedisSettings> Commands::settings_for_key(std::string_view key) const {
  if (!cluster_) return settings_;
  std::optional<NodeAddress> master = cluster_->master_of_key(key);
  if (!master) return std::nullopt;
  RedisSettings node = settings_;
  node.mode = RedisMode::standalone;
  node.mode_name = "standalone";
  node.host = master->host;
  node.port = master->port;
  return node;
}

bool Commands::set_and_publish(const std::string& key, std::string_view payload, std::string_view message,
                               std::int64_t ttl_ms, DoneCallback done) {
  if (cluster_) {
    return cluster_->set_and_publish(key, payload, message, ttl_ms,
                                     [done = std::move(done)](const redisReply* reply) { answer_done(done, reply); });
  }
  redisAsyncContext* ctx = connection_.context();
  if (!ctx) return false;
  std::string ttl = std::to_string(ttl_ms);
  // The SET's reply needs no callback: if it failed, Redis still runs the
  // PUBLISH, and the key only matters to a gateway that missed the message.
  // Except in sentinel mode, where a READONLY SET means the pair went to a
  // demoted master and must be sent again (on_set).
  std::string set = resp_command({"SET", key, payload, "PX", ttl});
  std::shared_ptr<bool> readonly;
  if (connection_.sentinel_mode()) {
    readonly = std::make_shared<bool>(false);
    auto* flag = new std::shared_ptr<bool>(readonly);
    if (redisAsyncFormattedCommand(ctx, on_set, flag, set.data(), set.size()) != REDIS_OK) {
      delete flag;
      return false;
    }
    done = [readonly, done = std::move(done)](Status status, long long receivers) {
      done(*readonly && status == Status::ok ? Status::lost : status, receivers);
    };
  } else if (redisAsyncFormattedCommand(ctx, nullptr, nullptr, set.data(), set.size()) != REDIS_OK) {
    return false;
  }
  std::string publish = resp_command({"PUBLISH", key, message});
  auto* owned = new DoneCallback(std::move(done));
  if (redisAsyncFormattedCommand(ctx, on_done, owned, publish.data(), publish.size()) != REDIS_OK) {
    delete owned;
    return false;
  }
  connection_.flush_soon();
  return true;
}

void Commands::note_progress(Clock::time_point now) {
  auto counters = tcp_progress(connection_.fd());
  if (counters && counters != last_counters_) {
    last_counters_ = counters;
    last_progress_ = now;
  }
}

void Commands::heartbeat() {
  redisAsyncContext* ctx = connection_.context();
  if (!ctx) return;
  auto now = Clock::now();
  note_progress(now);
  if (ping_sent_) {
    auto quiet = now - std::max(*ping_sent_, last_progress_);
    if (quiet > std::chrono::milliseconds(settings_.dead_after_ms)) {
      ping_sent_.reset();
      connection_.force_reconnect("no reply and no bytes moving within redis_dead_after_ms");
      if (on_dead_) on_dead_();
    } else if (quiet > std::chrono::milliseconds(settings_.stall_after_ms)) {
      if (dependency_.state() == ops::Dependency::State::up) {
        log::get("redis")->warn("Redis stalled: no reply for {} ms; new commands wait",
                                std::chrono::duration_cast<std::chrono::milliseconds>(quiet).count());
      }
      dependency_.set_stalled(true);
    } else {
      dependency_.set_stalled(false);  // bytes move again
    }
    return;
  }
  ping_sent_ = now;
  auto* done = new DoneCallback([this](Status status, long long) {
    if (status == Status::lost) return;
    ping_sent_.reset();
    if (dependency_.state() == ops::Dependency::State::stalled) log::get("redis")->info("Redis answers again");
    dependency_.set_stalled(false);
  });
  const char* beat = connection_.sentinel_mode() ? "ROLE" : "PING";
  if (redisAsyncCommand(ctx, on_beat, done, beat) != REDIS_OK) {
    delete done;
    ping_sent_.reset();
  }
}

}  // namespace boxgate::redis
