#pragma once
// Helpers of the fault tests (tests/integration/faults_*_itest.cpp):
// measuring and reporting times and counts, a load generator that counts
// outcomes, polling for refusals, and raw TCP connections for idle/slow
// clients.
//
// Callers: the test thread, except where a comment says otherwise. Every
// measured figure goes through report(), which prints one line
//   [ FAULT    ] <Suite.Test> <key>=<value>
// on stdout and records it as a gtest property (in --gtest_output=xml), so a
// run's figures (latencies, counts) can be compared across builds.

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <future>
#include <iostream>
#include <map>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "itest_env.hpp"

namespace boxgate::itest::faults {

using Clock = std::chrono::steady_clock;

inline long long ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

template <class T>
void report(const std::string& key, const T& value) {
  std::ostringstream text;
  text << value;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string test = info ? std::string(info->test_suite_name()) + "." + info->name() : "?";
  std::cout << "[ FAULT    ] " << test << " " << key << "=" << text.str() << std::endl;
  ::testing::Test::RecordProperty(key, text.str());
}

using test::response_topic_for;

// One command on a fresh connection, run on its own thread (std::async).
inline std::future<HttpResult> post_async(int port, std::string path, std::string body = R"({"method":"m"})",
                                          httplib::Headers headers = {}) {
  return std::async(std::launch::async, [port, path = std::move(path), body = std::move(body),
                                         headers = std::move(headers)] {
    auto c = client(port);
    return post(*c, path, body, headers);
  });
}

// Sends a command to box-1 (with `query`) every `every` until one is refused
// with 503 `code`, answered within `at_once` when that is not 0; false at the
// deadline. `last` holds the last answer, for the failure message.
inline bool eventually_refused(httplib::Client& c, const std::string& code, std::chrono::milliseconds within,
                               HttpResult& last, std::chrono::milliseconds at_once = 0ms,
                               const std::string& query = "timeout_ms=500", std::chrono::milliseconds every = 5ms) {
  return test::eventually(
      [&] {
        last = post(c, command_path("box-1", query), R"({"method":"ping"})");
        return last.status == 503 && last.error_code() == code && (at_once == 0ms || last.elapsed < at_once);
      },
      within, every);
}

// Sends `n` commands on `path`, each of which must be refused with 503
// `code` and a Retry-After; returns the slowest answer's time in ms.
inline long long slowest_of_refusals(httplib::Client& c, const std::string& path, const std::string& code, int n = 10) {
  long long slowest = 0;
  for (int i = 0; i < n; ++i) {
    HttpResult r = post(c, path, R"({"method":"ping"})");
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.error_code(), code) << r.body;
    EXPECT_FALSE(r.header("Retry-After").empty());
    slowest = std::max<long long>(slowest, r.elapsed.count());
  }
  return slowest;
}

// What a burst of load ended with: HTTP statuses by code, transport errors
// (-1), and a few example problems.
struct LoadCounts {
  std::map<int, int> by_status;
  std::vector<std::string> examples;
  int total() const {
    int n = 0;
    for (const auto& [status, count] : by_status) n += count;
    return n;
  }
  int count(int status) const {
    auto it = by_status.find(status);
    return it == by_status.end() ? 0 : it->second;
  }
  std::string summary() const {
    std::ostringstream out;
    for (const auto& [status, count] : by_status) out << (out.tellp() > 0 ? "," : "") << status << ":" << count;
    return out.str();
  }
};

// Sends commands from `threads` threads (one keep-alive client each, boxes
// box-1..box-<boxes> in turn) until `stop` becomes true. A 200 must carry the
// request's own id in its body. Thread-safe counts; call join() to collect.
class Load {
 public:
  Load(int port, int threads, int boxes, std::string query) {
    for (int t = 0; t < threads; ++t) {
      workers_.emplace_back([this, port, t, boxes, query] {
        auto c = client(port);
        c->set_read_timeout(std::chrono::seconds(10));
        for (int i = 0; !stop_; ++i) {
          const std::string box = "box-" + std::to_string((t * 7 + i) % boxes + 1);
          HttpResult r = post(*c, command_path(box, query), R"({"method":"load"})");
          record(r);
          if (r.status == -1) {
            c = client(port);  // the connection is gone: a new one, after a pause
            std::this_thread::sleep_for(50ms);
          }
        }
      });
    }
  }
  ~Load() { join(); }
  Load(const Load&) = delete;
  Load& operator=(const Load&) = delete;

  void record(const HttpResult& r) {
    std::lock_guard lock(mu_);
    int status = r.status;
    if (status == 200) {
      std::string id = r.header("X-Request-Id");
      if (id.empty() || r.json().value("id", "") != id) status = -200;  // someone else's reply
    }
    if (status != 200 && counts_.examples.size() < 5) {
      counts_.examples.push_back(std::to_string(status) + " " + r.body + r.error + " after " +
                                 std::to_string(r.elapsed.count()) + " ms");
    }
    counts_.by_status[status]++;
  }

  LoadCounts snapshot() const {
    std::lock_guard lock(mu_);
    return counts_;
  }
  LoadCounts join() {
    stop_ = true;
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
    return snapshot();
  }

 private:
  std::atomic<bool> stop_{false};
  mutable std::mutex mu_;
  LoadCounts counts_;
  std::vector<std::thread> workers_;
};

// A raw TCP connection to 127.0.0.1:port (blocking, TCP_NODELAY). Closed in
// the destructor. Throws std::runtime_error when it cannot connect.
class RawConnection {
 public:
  explicit RawConnection(int port) : fd_(test::connect_loopback(port, "RawConnection", {.no_delay = true})) {}
  ~RawConnection() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawConnection(const RawConnection&) = delete;
  RawConnection& operator=(const RawConnection&) = delete;

  // False once the peer closed or reset the connection.
  bool send(std::string_view bytes) {
    return ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size());
  }
  // True when the peer has closed (EOF or error); false while it is open
  // (nothing to read within `wait`).
  bool closed_by_peer(std::chrono::milliseconds wait = 0ms) {
    timeval tv{static_cast<time_t>(wait.count() / 1000), static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
    fd_set set;
    FD_ZERO(&set);
    FD_SET(fd_, &set);
    if (::select(fd_ + 1, &set, nullptr, nullptr, &tv) <= 0) return false;
    // Readable: an error response (e.g. 408) may come before the EOF.
    char buf[4096];
    for (int i = 0; i < 64; ++i) {
      ssize_t n = ::recv(fd_, buf, sizeof buf, MSG_DONTWAIT);
      if (n == 0) return true;
      if (n < 0) return errno != EAGAIN && errno != EWOULDBLOCK;
      received_.append(buf, static_cast<std::size_t>(n));
      std::this_thread::sleep_for(1ms);  // let the rest of a reply or the EOF come
    }
    return false;
  }
  // Bytes the peer sent so far (read by closed_by_peer).
  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

}  // namespace boxgate::itest::faults
