#pragma once
// A cpp-httplib server on 127.0.0.1 for tests of boxgate's HTTP client and
// webhooks: TLS with a test certificate or plain, an ephemeral port bound in
// the constructor, serving on its own thread from start() until destroyed.
// It records every request; a handler may answer as the test needs (a
// status, a delay, hold() until release()).
//
// Thread ownership: handlers run on the server's threads; seen(), handled()
// and release() may be called from any thread.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <httplib.h>

#include "support/net.hpp"
#include "support/test_pki.hpp"

namespace boxgate::test {

using namespace std::chrono_literals;

// What a receiver's handler saw of one request.
struct Seen {
  std::string method;
  std::string path;
  std::string body;
  httplib::Headers headers;
  int remote_port = 0;
};

// A cpp-httplib server on 127.0.0.1 (an ephemeral port, bound in the
// constructor), TLS when given a certificate, serving on its own thread from
// start() until destruction. Register handlers before start().
class Receiver {
 public:
  using Reply = std::function<void(const httplib::Request&, httplib::Response&)>;

  explicit Receiver(const CertFiles* cert = nullptr) : tls_(cert != nullptr) {
    if (cert) {
      server_ = std::make_unique<httplib::SSLServer>(cert->cert.c_str(), cert->key.c_str());
    } else {
      server_ = std::make_unique<httplib::Server>();
    }
    if (!server_->is_valid()) throw std::runtime_error("httplib server: bad certificate or key");
    // One connection carries any number of requests (httplib closes after 5
    // by default), so the test sees how many connections the client opened.
    server_->set_keep_alive_max_count(100000);
    // An idle keep-alive connection holds a worker thread, and stop() waits
    // for it: 1 s rather than 5, for a client (a gateway) still running at
    // the receiver's end.
    server_->set_keep_alive_timeout(1);
    // Its header and body writes would otherwise wait for the client's
    // delayed ACK (40 ms an answer).
    server_->set_tcp_nodelay(true);
    port_ = server_->bind_to_any_port("127.0.0.1");
    if (port_ <= 0) throw std::runtime_error("httplib server: cannot bind 127.0.0.1");
  }

  ~Receiver() {
    release();
    if (thread_.joinable()) {
      server_->stop();
      thread_.join();
    }
  }

  // Records each request to `path` (any method), then lets `reply` answer.
  void on(const std::string& path, Reply reply = {}) {
    auto handler = [this, reply](const httplib::Request& req, httplib::Response& res) {
      {
        std::lock_guard lock(mu_);
        seen_.push_back(Seen{req.method, req.path, req.body, req.headers, req.remote_port});
      }
      if (reply) {
        reply(req, res);
      } else {
        res.status = 200;
        res.set_content("ok", "text/plain");
      }
    };
    server_->Post(path, handler);
    server_->Get(path, handler);
  }

  void start() {
    thread_ = std::thread([this] { server_->listen_after_bind(); });
    // stop() only stops a server that runs: wait until it does.
    if (!boxgate::test::eventually([this] { return server_->is_running(); }, 5s, 1ms)) {
      throw std::runtime_error("httplib server did not start");
    }
  }

  int port() const { return port_; }
  std::string url(const std::string& path) const {
    return std::string(tls_ ? "https" : "http") + "://127.0.0.1:" + std::to_string(port_) + path;
  }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  std::size_t handled() const {
    std::lock_guard lock(mu_);
    return seen_.size();
  }

  // For a handler that keeps its request: waits until release() (the test's
  // end at the latest), 10 s at most.
  void hold() {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, 10s, [this] { return released_; });
  }
  void release() {
    {
      std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }

 private:
  bool tls_;
  std::unique_ptr<httplib::Server> server_;
  int port_ = 0;
  std::thread thread_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool released_ = false;
  std::vector<Seen> seen_;
};

}  // namespace boxgate::test
