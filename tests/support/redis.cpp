#include "support/redis.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "support/net.hpp"

namespace boxgate::test {

namespace {
std::runtime_error redis_error(const std::string& what) {
  return std::runtime_error("redis test client: " + what);
}
}  // namespace

// ---------------------------------------------------------------- RedisClient

RedisClient::RedisClient(int port, std::chrono::milliseconds timeout, const RedisCredentials& credentials) {
  fd_ = connect_loopback(port, "redis");
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  if (timeout.count() > 0) {
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
  }
  if (!credentials.empty()) {
    RespValue v = auth(credentials);
    if (v.type == RespValue::Type::error) {
      ::close(fd_);
      fd_ = -1;
      throw redis_error("AUTH as " + credentials.user + ": " + v.str);
    }
  }
}

RespValue RedisClient::auth(const RedisCredentials& credentials) {
  if (credentials.user.empty()) return command({"AUTH", credentials.password});
  return command({"AUTH", credentials.user, credentials.password});
}

RedisClient::~RedisClient() {
  if (fd_ >= 0) ::close(fd_);
}

void RedisClient::send(const std::vector<std::string>& args) {
  // append() rather than "lit" + string: GCC 12 -O3 warns falsely (-Wrestrict) on the latter.
  std::string out;
  out.append("*").append(std::to_string(args.size())).append("\r\n");
  for (const auto& a : args) out.append("$").append(std::to_string(a.size())).append("\r\n").append(a).append("\r\n");
  std::size_t sent = 0;
  while (sent < out.size()) {
    ssize_t n = ::send(fd_, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) throw redis_error(std::string("send: ") + std::strerror(errno));
    sent += static_cast<std::size_t>(n);
  }
}

void RedisClient::fill() {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  char chunk[16384];
  while (true) {
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) throw redis_error("timed out waiting for a reply");
    if (n < 0) throw redis_error(std::string("recv: ") + std::strerror(errno));
    if (n == 0) throw redis_error("connection closed by the server");
    buf_.append(chunk, static_cast<std::size_t>(n));
    return;
  }
}

std::string RedisClient::read_line() {
  while (true) {
    std::size_t crlf = buf_.find("\r\n", pos_);
    if (crlf != std::string::npos) {
      std::string line = buf_.substr(pos_, crlf - pos_);
      pos_ = crlf + 2;
      return line;
    }
    fill();
  }
}

std::string RedisClient::read_exact(std::size_t n) {
  while (buf_.size() - pos_ < n + 2) fill();
  std::string out = buf_.substr(pos_, n);
  pos_ += n + 2;  // the payload and its CRLF
  return out;
}

RespValue RedisClient::read_reply() {
  std::string line = read_line();
  if (line.empty()) throw redis_error("empty reply line");
  RespValue v;
  const std::string rest = line.substr(1);
  switch (line[0]) {
    case '+':
      v.type = RespValue::Type::simple;
      v.str = rest;
      break;
    case '-':
      v.type = RespValue::Type::error;
      v.str = rest;
      break;
    case ':':
      v.type = RespValue::Type::integer;
      v.integer = std::stoll(rest);
      break;
    case '$': {
      long long len = std::stoll(rest);
      if (len < 0) {
        v.type = RespValue::Type::nil;
      } else {
        v.type = RespValue::Type::bulk;
        v.str = read_exact(static_cast<std::size_t>(len));
      }
      break;
    }
    case '*': {
      long long count = std::stoll(rest);
      if (count < 0) {
        v.type = RespValue::Type::nil;
      } else {
        v.type = RespValue::Type::array;
        for (long long i = 0; i < count; ++i) v.elements.push_back(read_reply());
      }
      break;
    }
    default:
      throw redis_error("unexpected reply '" + line + "'");
  }
  return v;
}

RespValue RedisClient::command(const std::vector<std::string>& args) {
  send(args);
  return read_reply();
}

namespace {
RespValue expect(RespValue v, RespValue::Type type, const std::string& cmd) {
  if (v.type == RespValue::Type::error) throw redis_error(cmd + ": " + v.str);
  if (v.type != type) throw redis_error(cmd + ": unexpected reply type");
  return v;
}
}  // namespace

bool RedisClient::ping() {
  RespValue v = command({"PING"});
  return v.type == RespValue::Type::simple && v.str == "PONG";
}

std::optional<std::string> RedisClient::get(const std::string& key) {
  RespValue v = command({"GET", key});
  if (v.is_nil()) return std::nullopt;
  return expect(std::move(v), RespValue::Type::bulk, "GET").str;
}

void RedisClient::set(const std::string& key, const std::string& value, long long px) {
  std::vector<std::string> args{"SET", key, value};
  if (px > 0) {
    args.push_back("PX");
    args.push_back(std::to_string(px));
  }
  expect(command(args), RespValue::Type::simple, "SET");
}

long long RedisClient::pttl(const std::string& key) {
  return expect(command({"PTTL", key}), RespValue::Type::integer, "PTTL").integer;
}

long long RedisClient::del(const std::string& key) {
  return expect(command({"DEL", key}), RespValue::Type::integer, "DEL").integer;
}

long long RedisClient::publish(const std::string& channel, const std::string& message) {
  return expect(command({"PUBLISH", channel, message}), RespValue::Type::integer, "PUBLISH").integer;
}

long long RedisClient::pubsub_numsub(const std::string& channel) {
  RespValue v = expect(command({"PUBSUB", "NUMSUB", channel}), RespValue::Type::array, "PUBSUB NUMSUB");
  if (v.elements.size() != 2) throw redis_error("PUBSUB NUMSUB: unexpected reply");
  return v.elements[1].integer;
}

std::vector<std::string> RedisClient::pubsub_channels(const std::string& pattern) {
  RespValue v = expect(command({"PUBSUB", "CHANNELS", pattern}), RespValue::Type::array, "PUBSUB CHANNELS");
  std::vector<std::string> out;
  for (auto& e : v.elements) out.push_back(std::move(e.str));
  return out;
}

long long RedisClient::client_kill_type(const std::string& type) {
  return expect(command({"CLIENT", "KILL", "TYPE", type}), RespValue::Type::integer, "CLIENT KILL").integer;
}

// ---------------------------------------------------------------- RedisServer

RedisServer::RedisServer(const TempDir& dir, int port, std::vector<std::string> extra_args, RedisCredentials admin)
    : port_(port > 0 ? port : free_port()), admin_(std::move(admin)) {
  std::vector<std::string> argv{"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1",
                                "--save", "", "--appendonly", "no", "--dir", dir.path()};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  process_ = Process("redis-" + std::to_string(port_), std::move(argv), dir.path());
  wait_ping();
}

void RedisServer::start() {
  process_.start();
  wait_ping();
}

void RedisServer::wait_ping() {
  bool ok = eventually(
      [this] {
        if (!process_.running()) return true;  // reported below
        try {
          return RedisClient(port_, 1s, admin_).ping();
        } catch (const std::exception&) {
          return false;
        }
      },
      10s, 20ms);
  if (!ok || !process_.running()) {
    throw std::runtime_error("redis-server on port " + std::to_string(port_) +
                             " did not answer PING; log:\n" + process_.log_tail());
  }
}

std::optional<std::string> RedisServer::get(const std::string& key) const { return client().get(key); }

void RedisServer::set(const std::string& key, const std::string& value, long long px) const {
  client().set(key, value, px);
}

long long RedisServer::publish(const std::string& channel, const std::string& message) const {
  return client().publish(channel, message);
}

long long RedisServer::pubsub_numsub(const std::string& channel) const {
  return client().pubsub_numsub(channel);
}

std::vector<std::string> RedisServer::pubsub_channels(const std::string& pattern) const {
  return client().pubsub_channels(pattern);
}

std::string redis_acl_file(const TempDir& dir, const BoxgateRedisUsers& users, const RedisCredentials& admin) {
  const std::string shipped = BOXGATE_SOURCE_DIR "/config/redis-users.acl";
  std::string text = read_file(shipped);
  if (text.empty()) throw std::runtime_error("cannot read " + shipped);
  // The shipped file's users log in with nothing until a hash is set: put a
  // password in place of each placeholder (">password" is the ACL file's
  // clear-text form; the grants around it stay exactly as shipped).
  const std::string placeholder = "#" + std::string(64, '0');
  auto set_password = [&](const std::string& user, const std::string& password) {
    std::size_t line = text.find("\nuser " + user + " ");
    std::size_t at = line == std::string::npos ? line : text.find(placeholder, line);
    if (at == std::string::npos || at > text.find('\n', line + 1)) {
      throw std::runtime_error(shipped + ": no placeholder hash on the line of user " + user);
    }
    text.replace(at, placeholder.size(), ">" + password);
  };
  set_password("boxgate-gateway", users.gateway_password);
  set_password("boxgate-bridge", users.bridge_password);
  if (!text.empty() && text.back() != '\n') text += '\n';
  text += "user " + admin.user + " on >" + admin.password + " ~* &* +@all\n";
  return dir.write("redis-users.acl", text);
}

// ----------------------------------------------------------------- Subscriber

Subscriber::Subscriber(int port) : conn_(port, 0ms) {
  reader_ = std::thread([this] { run(); });
}

Subscriber::~Subscriber() {
  ::shutdown(conn_.fd_, SHUT_RDWR);  // wakes the reader's recv()
  if (reader_.joinable()) reader_.join();
}

void Subscriber::run() {
  try {
    while (true) {
      RespValue v = conn_.read_reply();
      if (v.type != RespValue::Type::array || v.elements.empty()) continue;
      const std::string& kind = v.elements[0].str;
      std::lock_guard<std::mutex> lock(mu_);
      if (kind == "message" && v.elements.size() == 3) {
        messages_.push_back({v.elements[1].str, v.elements[2].str, ""});
      } else if (kind == "pmessage" && v.elements.size() == 4) {
        messages_.push_back({v.elements[2].str, v.elements[3].str, v.elements[1].str});
      } else if (kind == "subscribe" || kind == "psubscribe") {
        ++confirmations_;
      }
      cv_.notify_all();
    }
  } catch (const std::exception&) {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }
}

void Subscriber::wait_confirmed(std::size_t n) {
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, 5s, [&] { return confirmations_ >= n || closed_; }) || confirmations_ < n) {
    throw redis_error("subscription was not confirmed");
  }
}

void Subscriber::subscribe(const std::string& channel) {
  std::size_t n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = ++requested_;
  }
  conn_.send({"SUBSCRIBE", channel});
  wait_confirmed(n);
}

void Subscriber::psubscribe(const std::string& pattern) {
  std::size_t n;
  {
    std::lock_guard<std::mutex> lock(mu_);
    n = ++requested_;
  }
  conn_.send({"PSUBSCRIBE", pattern});
  wait_confirmed(n);
}

bool Subscriber::wait_for(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return messages_.size() >= count; });
}

std::vector<RedisMessage> Subscriber::messages() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_;
}

std::size_t Subscriber::count() const {
  std::lock_guard<std::mutex> lock(mu_);
  return messages_.size();
}

bool Subscriber::connected() const {
  std::lock_guard<std::mutex> lock(mu_);
  return !closed_;
}

}  // namespace boxgate::test
