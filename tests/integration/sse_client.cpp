#include "sse_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "support/http.hpp"
#include "support/net.hpp"

namespace boxgate::itest {

SseClient::SseClient(int port, const std::string& path, std::map<std::string, std::string> headers, bool read)
    : reading_(read), path_(path) {
  // A small window when not reading: a reader that stops shows up as unsent
  // bytes in the gateway quickly, not after megabytes of kernel buffers.
  fd_ = test::connect_loopback(port, "SseClient", {.receive_buffer = read ? 0 : 4096});
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
  if (!headers.count("Accept")) headers["Accept"] = "text/event-stream";
  for (const auto& [k, v] : headers) request += k + ": " + v + "\r\n";
  request += "\r\n";
  ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  thread_ = std::thread([this] { run(); });
}

SseClient::~SseClient() {
  record();
  stop_ = true;
  ::shutdown(fd_, SHUT_RDWR);
  thread_.join();
  ::close(fd_);
}

void SseClient::resume() { reading_ = true; }

void SseClient::run() {
  char buf[16384];
  while (!stop_) {
    if (!reading_) {
      // A paused reader (the point of read=false): idle until resume().
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      continue;
    }
    pollfd p{fd_, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0) continue;
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    std::lock_guard<std::mutex> lock(mu_);
    if (n <= 0) {
      closed_ = true;
      if (status_ == 0) status_ = -1;
      cv_.notify_all();
      return;
    }
    raw_.append(buf, static_cast<std::size_t>(n));
    if (status_ == 0) {
      auto end = raw_.find("\r\n\r\n");
      if (end == std::string::npos) continue;
      head_ = raw_.substr(0, end);
      raw_.erase(0, end + 4);
      status_ = std::atoi(head_.c_str() + 9);
      chunked_ = head_.find("chunked") != std::string::npos;
    }
    if (!chunked_) {
      feed(raw_);
      raw_.clear();
    } else {
      while (true) {
        auto line_end = raw_.find("\r\n");
        if (line_end == std::string::npos) break;
        std::size_t size = std::strtoul(raw_.c_str(), nullptr, 16);
        if (raw_.size() < line_end + 2 + size + 2) break;
        feed(raw_.substr(line_end + 2, size));
        raw_.erase(0, line_end + 2 + size + 2);
        if (size == 0) {
          closed_ = true;  // the last chunk: the stream ended
        }
      }
    }
    cv_.notify_all();
  }
}

void SseClient::feed(const std::string& bytes) {
  body_ += bytes;
  all_body_ += bytes;
  parse_lines();
}

// The SSE grammar (server only ever sends LF line ends).
void SseClient::parse_lines() {
  while (true) {
    auto nl = body_.find('\n');
    if (nl == std::string::npos) return;
    std::string line = body_.substr(0, nl);
    body_.erase(0, nl + 1);
    if (line.empty()) {
      if (has_data_) events_.push_back(pending_);
      pending_ = {};
      has_data_ = false;
      continue;
    }
    if (line[0] == ':') {
      ++comments_;
      continue;
    }
    auto colon = line.find(':');
    std::string field = line.substr(0, colon);
    std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
    if (!value.empty() && value[0] == ' ') value.erase(0, 1);
    if (field == "id") pending_.id = value;
    if (field == "event") pending_.event = value;
    if (field == "data") {
      if (has_data_) pending_.data += '\n';
      pending_.data += value;
      has_data_ = true;
    }
  }
}

// What this stream was answered goes to the tests' HTTP log, as every other
// call does (tests/docs/openapi_check.py holds it against docs/openapi.yaml).
void SseClient::record() const {
  std::lock_guard<std::mutex> lock(mu_);
  if (status_ <= 0) return;
  std::string code;
  if (status_ != 200) {
    auto body = nlohmann::json::parse(all_body_, nullptr, false);
    if (body.is_object() && body.contains("error") && body["error"].is_string()) code = body["error"];
  }
  test::record_http("GET", path_, status_, code);
}

int SseClient::status(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait_for(lock, timeout, [this] { return status_ != 0; });
  return status_;
}

std::string SseClient::headers() const {
  std::lock_guard<std::mutex> lock(mu_);
  return head_;
}

std::string SseClient::body() const {
  std::lock_guard<std::mutex> lock(mu_);
  return all_body_;
}

bool SseClient::wait_events(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return events_.size() >= count; });
}

bool SseClient::wait_comments(std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return comments_ >= count; });
}

bool SseClient::wait_closed(std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] { return closed_; });
}

std::vector<SseEvent> SseClient::events() const {
  std::lock_guard<std::mutex> lock(mu_);
  return events_;
}

std::size_t SseClient::comments() const {
  std::lock_guard<std::mutex> lock(mu_);
  return comments_;
}

bool SseClient::closed() const {
  std::lock_guard<std::mutex> lock(mu_);
  return closed_;
}

}  // namespace boxgate::itest
