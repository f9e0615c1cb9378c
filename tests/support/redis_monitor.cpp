#include "support/redis_monitor.hpp"
#include "support/net.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace boxgate::test {

namespace {
// AUTH (when given) and MONITOR as one RESP write; the reader skips the +OK of AUTH.
std::string monitor_request(const RedisCredentials& credentials) {
  // Piece by piece: GCC 12 warns falsely on a "literal" + std::string chain.
  auto bulk = [](const std::string& s) {
    std::string out = "$";
    out.append(std::to_string(s.size())).append("\r\n").append(s).append("\r\n");
    return out;
  };
  std::string out;
  if (!credentials.empty()) out += "*3\r\n" + bulk("AUTH") + bulk(credentials.user) + bulk(credentials.password);
  return out + "*1\r\n" + bulk("MONITOR");
}
}  // namespace

RedisMonitor::RedisMonitor(int port, const RedisCredentials& credentials) {
  fd_ = connect_loopback(port, "RedisMonitor");
  const std::string cmd = monitor_request(credentials);
  oks_needed_ = credentials.empty() ? 1 : 2;
  if (::send(fd_, cmd.data(), cmd.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(cmd.size())) {
    ::close(fd_);
    throw std::runtime_error("RedisMonitor: send MONITOR failed");
  }
  reader_ = std::thread([this] { run(); });
  std::unique_lock<std::mutex> lock(mu_);
  if (!cv_.wait_for(lock, 5s, [this] { return ok_ || closed_; }) || !ok_) {
    lock.unlock();
    ::shutdown(fd_, SHUT_RDWR);
    reader_.join();
    ::close(fd_);
    throw std::runtime_error("RedisMonitor: MONITOR was not acknowledged");
  }
}

RedisMonitor::~RedisMonitor() {
  ::shutdown(fd_, SHUT_RDWR);  // wakes the reader's recv()
  if (reader_.joinable()) reader_.join();
  ::close(fd_);
}

void RedisMonitor::run() {
  std::string buf;
  char chunk[16384];
  while (true) {
    ssize_t n = ::recv(fd_, chunk, sizeof chunk, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, static_cast<std::size_t>(n));
    std::size_t start = 0;
    std::lock_guard<std::mutex> lock(mu_);
    for (std::size_t crlf; (crlf = buf.find("\r\n", start)) != std::string::npos; start = crlf + 2) {
      std::string line = buf.substr(start, crlf - start);
      if (!ok_ && line == "+OK") {
        ok_ = --oks_needed_ == 0;
      } else if (!line.empty() && line[0] == '+') {
        lines_.push_back(line.substr(1));
      }
    }
    buf.erase(0, start);
    cv_.notify_all();
  }
  std::lock_guard<std::mutex> lock(mu_);
  closed_ = true;
  cv_.notify_all();
}

std::vector<std::string> RedisMonitor::lines() const {
  std::lock_guard<std::mutex> lock(mu_);
  return lines_;
}

std::vector<std::string> RedisMonitor::commands(const std::string& command) const {
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
    return s;
  };
  const std::string wanted = lower(command);
  std::vector<std::string> out;
  for (const auto& line : lines()) {
    std::size_t open = line.find("] \"");
    if (open == std::string::npos) continue;
    std::size_t begin = open + 3;
    std::size_t end = line.find('"', begin);
    if (end != std::string::npos && lower(line.substr(begin, end - begin)) == wanted) out.push_back(line);
  }
  return out;
}

bool RedisMonitor::wait_for(const std::string& needle, std::chrono::milliseconds timeout) const {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    return std::any_of(lines_.begin(), lines_.end(),
                       [&](const std::string& l) { return l.find(needle) != std::string::npos; });
  });
}

}  // namespace boxgate::test
