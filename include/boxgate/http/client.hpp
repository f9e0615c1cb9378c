#pragma once
// HTTP client on an EventLoop, built on libcurl's multi-socket interface
// (curl tells which sockets and which timeout to watch; libevent watches them
// on the loop and hands the events back with curl_multi_socket_action). Made
// for webhooks: POST a body to an operator-configured http(s):// endpoint.
//
// Callers: the loop thread only; nothing here is thread-safe. post() never
// blocks (name resolution runs on curl's resolver thread, connect, TLS and
// I/O on the loop).
//
// Callbacks: each post()'s Done runs exactly once (unless the Client is
// destroyed first, below), on the loop thread, from a loop callback, never
// from inside post() (a request that cannot even start fails from a
// zero-delay event). A Done may post() again or destroy the Client; one
// that throws is logged ("http") and the exception dropped.
// Destroying the Client drops the requests still in flight: their
// connections are closed and their Done functions destroyed without being
// called (whatever they captured is released); none runs later.
//
// Safety: only http and https are spoken (a file://, ftp://, ... URL fails
// without a connection), redirects are never followed (a 3xx is the answer),
// no proxy is used (the environment's http_proxy and friends are ignored),
// and TLS verifies the peer's chain and host name unless verify_peer is
// false. Header names and values with CR, LF or NUL are refused. No
// Accept-Encoding is sent: answers are never decompressed.
//
// Memory: per request in flight, its Request, curl's handle and at most
// kMaxResponseBody bytes of the answer's body (the rest is read and
// discarded; curl bounds the header section itself). The number in flight is
// the caller's to bound: beyond max_connections, transfers wait inside curl
// for a connection. Idle connections are kept for reuse, at most
// max_connections of them.

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "boxgate/loop/event_loop.hpp"

struct event;

namespace boxgate::http {

// Bytes of a response body kept in Response::body.
inline constexpr std::size_t kMaxResponseBody = 4096;

struct ClientSettings {
  // A CA bundle (PEM) trusted instead of the system's.
  std::optional<std::string> ca_file;
  // Verify the peer's certificate chain and host name. Off only for tests.
  bool verify_peer = true;
  // Open connections at most, all hosts together (idle ones included).
  std::size_t max_connections = 64;
  std::string user_agent = "boxgate";
};

struct Request {
  std::string url;  // http:// or https://
  // Sent as given. Without a Content-Type, "application/json" is sent.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // The whole exchange: resolve, connect, TLS, send, the answer. Must be > 0.
  std::chrono::milliseconds timeout{10000};
  // Overrides ClientSettings::ca_file for this request.
  std::optional<std::string> ca_file;
};

struct Response {
  // The HTTP status; 0 when no complete answer came (then `error` says why).
  long status = 0;
  // curl's words for the failure: "SSL peer certificate ... not OK: SSL
  // certificate problem: ...", "Timeout was reached: ...", "Couldn't connect
  // to server: ...", "Unsupported protocol: ...". Empty when status != 0.
  std::string error;
  // The first kMaxResponseBody bytes of the body.
  std::string body;
  bool body_truncated = false;
  // From post() to the end of the exchange.
  std::chrono::milliseconds elapsed{0};
};

class Client {
 public:
  using Done = std::function<void(Response)>;

  // Throws std::runtime_error when curl cannot be set up.
  Client(EventLoop& loop, ClientSettings settings);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Starts a POST of request.body to request.url; `done` gets the answer.
  void post(Request request, Done done);
  // Posts whose Done has not run yet.
  std::size_t in_flight() const noexcept { return transfers_.size() + failed_.size(); }

 private:
  struct Transfer;
  struct Watch;
  friend struct ClientCallbacks;  // curl's and libevent's callbacks (client.cpp)
  void socket_action(int fd, int flags);
  // Runs the Done of every finished transfer; `this` may be gone after it.
  void finish();

  EventLoop& loop_;
  ClientSettings settings_;
  void* multi_ = nullptr;  // CURLM*
  event* timeout_ = nullptr;
  event* failed_event_ = nullptr;
  std::unordered_map<void*, std::unique_ptr<Transfer>> transfers_;  // by CURL*
  std::unordered_map<int, std::unique_ptr<Watch>> watches_;         // by socket
  std::vector<std::pair<Done, Response>> failed_;  // could not start; reported by failed_event_
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace boxgate::http
