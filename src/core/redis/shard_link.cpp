#include "shard_link.hpp"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <hiredis/hiredis.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

#include "boxgate/logging.hpp"
#include "boxgate/redis/socket_progress.hpp"
#include "boxgate/redis/commands.hpp"

namespace boxgate::redis {

namespace {
constexpr auto kConnectTimeout = std::chrono::milliseconds(2000);

// PING's answer: +PONG before any subscription, ["pong", ""] after.
bool is_pong(const redisReply* r) {
  if (r->type == REDIS_REPLY_STATUS) return r->len == 4 && std::memcmp(r->str, "PONG", 4) == 0;
  return r->type == REDIS_REPLY_ARRAY && r->elements >= 1 && r->element[0]->type == REDIS_REPLY_STRING &&
         r->element[0]->len == 4 && std::memcmp(r->element[0]->str, "pong", 4) == 0;
}
}  // namespace

ShardLink::ShardLink(EventLoop& loop, const RedisSettings& settings, NodeAddress node, Events events)
    : loop_(loop),
      settings_(settings),
      node_(std::move(node)),
      events_(std::move(events)),
      connect_deadline_(loop, [this] { close("connect timed out"); }),
      heartbeat_timer_(loop, [this] { heartbeat(); }) {}

ShardLink::~ShardLink() {
  events_ = {};  // closing now tells nobody
  release();
}

void ShardLink::start() {
  if (state_ != State::idle) return;
  sockaddr_storage addr{};
  int len = sizeof addr;
  std::string text = node_.text();
  if (evutil_parse_sockaddr_port(text.c_str(), reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    // Cluster nodes announce IP literals; a name here cannot be reached
    // without blocking the loop on DNS.
    log::get("redis")->warn("redis shard link: {} is not an IP address", text);
    state_ = State::closed;
    if (events_.on_down) events_.on_down();
    return;
  }
  bev_ = bufferevent_socket_new(loop_.base(), -1, BEV_OPT_CLOSE_ON_FREE);
  reader_ = redisReaderCreate();
  if (!bev_ || !reader_) return close("out of memory");
  bufferevent_setcb(bev_, &ShardLink::on_read, nullptr, &ShardLink::on_event, this);
  state_ = State::connecting;
  connect_deadline_.start(kConnectTimeout);
  if (bufferevent_socket_connect(bev_, reinterpret_cast<sockaddr*>(&addr), len) != 0) close("connect failed");
}

void ShardLink::send(std::string_view resp) {
  if (state_ != State::up && state_ != State::handshake) return;
  bufferevent_write(bev_, resp.data(), resp.size());
}

void ShardLink::on_event(bufferevent*, short what, void* self) {
  auto* link = static_cast<ShardLink*>(self);
  if (what & BEV_EVENT_CONNECTED) return link->connected();
  if (what & BEV_EVENT_EOF) return link->close("closed by the node");
  if (what & BEV_EVENT_ERROR) return link->close(evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
}

void ShardLink::connected() {
  tune_socket(bufferevent_getfd(bev_));
  bufferevent_enable(bev_, EV_READ);
  state_ = State::handshake;
  handshake_left_ = 1;
  if (!settings_.password.empty()) {
    ++handshake_left_;
    send(settings_.username.empty() ? resp_command({"AUTH", settings_.password})
                                    : resp_command({"AUTH", settings_.username, settings_.password}));
  }
  send(resp_command({"PING"}));
}

void ShardLink::on_read(bufferevent*, void* self) { static_cast<ShardLink*>(self)->read(); }

void ShardLink::read() {
  evbuffer* input = bufferevent_get_input(bev_);
  in_callback_ = true;
  char chunk[16384];
  while (state_ != State::closed && evbuffer_get_length(input) > 0) {
    int n = evbuffer_remove(input, chunk, sizeof chunk);
    if (n <= 0) break;
    if (redisReaderFeed(reader_, chunk, static_cast<std::size_t>(n)) != REDIS_OK) {
      close("protocol error");
      break;
    }
    void* reply = nullptr;
    while (state_ != State::closed) {
      if (redisReaderGetReply(reader_, &reply) != REDIS_OK) {
        close("protocol error");
        break;
      }
      if (!reply) break;
      handle(static_cast<const redisReply*>(reply));
      freeReplyObject(reply);
    }
    if (state_ != State::closed && reader_->len - reader_->pos > kMaxBuffered) close("reply too large");
  }
  in_callback_ = false;
  if (state_ == State::closed) release();
}

void ShardLink::handle(const redisReply* reply) {
  if (state_ == State::handshake) {
    if (reply->type == REDIS_REPLY_ERROR) {
      // Redis's text (WRONGPASS, NOAUTH, LOADING) never repeats the password.
      log::get("redis")->warn("redis shard link {}: handshake refused: {}", node_.text(),
                              std::string(reply->str, reply->len));
      return close("handshake refused");
    }
    if (--handshake_left_ > 0) return;
    connect_deadline_.cancel();
    state_ = State::up;
    heartbeat_timer_.start(std::chrono::milliseconds(settings_.heartbeat_ms), true);
    if (events_.on_up) events_.on_up();
    return;
  }
  if (is_pong(reply)) {
    ping_sent_.reset();
    return;
  }
  if (events_.on_reply) events_.on_reply(reply);
}

void ShardLink::heartbeat() {
  if (state_ != State::up) return;
  auto now = std::chrono::steady_clock::now();
  if (ping_sent_) {
    if (now - *ping_sent_ > std::chrono::milliseconds(settings_.dead_after_ms)) {
      close("no PING reply within redis_dead_after_ms");
    }
    return;
  }
  ping_sent_ = now;
  static const std::string ping = resp_command({"PING"});
  send(ping);
}

void ShardLink::close(const char* why) {
  if (state_ == State::closed) return;
  bool was_up = state_ == State::up;
  state_ = State::closed;
  connect_deadline_.cancel();
  heartbeat_timer_.cancel();
  if (was_up) log::get("redis")->warn("redis shard link {}: {}", node_.text(), why);
  else log::get("redis")->debug("redis shard link {}: {}", node_.text(), why);
  if (!in_callback_) release();
  if (events_.on_down) events_.on_down();
}

void ShardLink::release() {
  if (bev_) bufferevent_free(bev_);
  bev_ = nullptr;
  if (reader_) redisReaderFree(reader_);
  reader_ = nullptr;
}

}  // namespace boxgate::redis
