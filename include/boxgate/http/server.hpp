#pragma once
// HTTP server on an EventLoop, built on libevent's evhttp.
//
// Thread ownership: the loop thread owns the evhttp server, every client
// connection and every Exchange; nothing here may be touched from another
// thread. A handler may answer at once or keep the Exchange and answer later
// from the loop thread (a waiting request holds no thread).
//
// Limits: header size, body size, idle/read timeout, a deadline for each
// complete request (slow-header clients are cut off), and a cap on open
// connections (the listener pauses while the cap is reached; further clients
// wait in the kernel backlog).
//
// Hostile input (docs/contract.md, "Malformed HTTP"): every byte a client
// sends is read by RequestFraming (request_framing.hpp) before evhttp parses
// it. A connection that sends a NUL byte is closed unanswered; at the first
// byte that does not frame a request per RFC 9112 (framing or headers a proxy
// could read differently: a lenient chunk size, repeated Content-Length, a
// header name that is not a token, ...) the connection is answered 400
// invalid_request and closed, before any handler runs and before evhttp reads
// the request. A request that announces a body is put to the admission check
// (admit_bodies) before a byte of the body is read.

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "boxgate/config.hpp"
#include "boxgate/http/request_framing.hpp"
#include "boxgate/loop/event_loop.hpp"

struct evhttp;
struct evhttp_request;
struct evhttp_connection;
struct evconnlistener;
struct bufferevent;
struct event_base;
struct event;

namespace boxgate::http {

class Server;
struct ExchangeState;

// One HTTP request and its (single) response. Move-only. Loop thread only.
// @warning Exactly one reply is sent: reply() after the first is ignored, and
// an Exchange destroyed unanswered answers 500 so no client ever hangs.
class Exchange {
 public:
  explicit Exchange(std::unique_ptr<ExchangeState> state);
  Exchange(Exchange&&) noexcept;
  Exchange& operator=(Exchange&&) noexcept;
  ~Exchange();

  bool is_get() const;
  bool is_post() const;
  bool is_delete() const;
  std::string_view path() const;       // raw (percent-encoded) path
  std::string_view raw_query() const;  // after '?', as sent (not decoded); empty when none
  const char* header(const char* name) const;  // nullptr when absent
  std::string_view body() const;
  // Frees the request body (the handler keeps what it needs): a request that
  // waits for a device then holds no second copy of its command.
  void discard_body();

  void set_header(const char* name, const std::string& value);
  // Large bodies are handed to libevent without a copy.
  void reply(int status, std::string body, const char* content_type = "application/json");

  // Runs once if the client goes away before reply(); the Exchange is inert after.
  void on_disconnect(std::function<void()> callback);

  // For the access log: a word for how the call ended (an error code, an
  // outcome), given to the on_end callback.
  void set_note(std::string note);
  // Runs once when the exchange ends: with the status reply() sent, or 0 when
  // it ends unanswered (the client left first). `request_id` is the response's
  // X-Request-Id header ("" when none was set).
  using EndCallback = std::function<void(int status, const std::string& note, const std::string& request_id)>;
  void on_end(EndCallback callback);
  bool open() const;  // not answered and client still there

  // Streaming (chunked) reply, e.g. Server-Sent Events. start_stream() sends
  // the status and headers; write() adds a chunk; end_stream() sends the last
  // chunk. While streaming, the on_disconnect() callback runs when the
  // client goes away (EOF, error, or the write timeout: a reader that takes
  // nothing for http_idle_timeout_ms while bytes wait), and the idle read
  // timeout does not apply (a quiet stream is not an idle connection).
  // Memory is the caller's to bound: pending_output() is what the socket has
  // not taken yet. abort() closes the connection at once (no callback); a
  // streaming Exchange destroyed unended ends its stream.
  void start_stream(int status, const char* content_type);
  // on_flushed (optional) runs once this and everything before it has been
  // written to the socket. Only one flush callback may wait at a time: a
  // write() without one replaces it (libevent keeps one per connection).
  void write(std::string_view chunk, std::function<void()> on_flushed = {});
  std::size_t pending_output() const;
  // Writes what the socket takes now, without waiting for the loop (evhttp
  // writes only between callbacks, so a burst of chunks written in one
  // callback all shows as pending); returns pending_output() after it. For
  // a live stream only: it bypasses the flush callback of write().
  std::size_t flush_now();
  void end_stream();
  void abort();
  bool streaming() const;

 private:
  std::unique_ptr<ExchangeState> state_;
};

using Handler = std::function<void(Exchange)>;

// An answer sent in place of evhttp's, before the request's body is read.
struct Refusal {
  int status;
  std::string body;  // JSON
  std::vector<std::pair<std::string, std::string>> headers;
};
// Asked on the loop thread at the end of the header section of each request
// that announces a body. A Refusal is written at once and the connection
// closed without reading the body (so a caller that may not send one costs
// no body). The caller cannot tell it from a handler's answer, except that
// the connection closes; a connection with an earlier request still
// unanswered is closed unanswered instead (answers keep their order).
using Admission = std::function<std::optional<Refusal>(const RequestHead&)>;

class Server {
 public:
  Server(EventLoop& loop, const HttpSettings& settings, std::size_t max_body_bytes);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  void route(std::string path, Handler handler);          // exact path
  void route_prefix(std::string prefix, Handler handler);  // longest prefix wins over none
  void admit_bodies(Admission admission) { admission_ = std::move(admission); }
  // Binds host:port with the configured backlog; returns the bound port. Throws.
  std::uint16_t listen();
  std::size_t connections() const noexcept { return connections_.size(); }

 private:
  friend struct ExchangeState;
  friend class Exchange;
  struct Connection;
  static void on_request(evhttp_request* req, void* self);
  static bufferevent* new_bufferevent(event_base* base, void* self);
  static void adopt_accepted(int fd, short what, void* self);
  static void on_connection_closed(evhttp_connection* conn, void* arg);
  Connection* track(evhttp_connection* conn);
  void forget(Connection* connection);
  const Handler* find_handler(std::string_view path) const;

  EventLoop& loop_;
  HttpSettings settings_;
  evhttp* http_ = nullptr;
  evconnlistener* listener_ = nullptr;
  bool listener_paused_ = false;
  event* adopt_event_ = nullptr;
  std::vector<bufferevent*> accepted_;  // accepted this iteration, not yet tracked
  std::vector<std::pair<std::string, Handler>> exact_;
  std::vector<std::pair<std::string, Handler>> prefixes_;
  Admission admission_;
  std::unordered_map<evhttp_connection*, Connection*> connections_;
};

// Percent-decodes one path segment ("+" stays "+"); the result may hold any byte.
std::string percent_decode(std::string_view segment);

// One name=value pair of a query string, both exactly as sent (not decoded):
// a caller's %-escapes never turn into the bytes a check looks for.
struct QueryParam {
  std::string_view name;
  std::string_view value;
  bool has_value;  // an '=' was present
};
// Splits a raw query on '&' (empty pieces are skipped). Views into `raw`.
std::vector<QueryParam> split_query(std::string_view raw);

// 405 for a request with a method the path does not serve: `Allow: <allowed>`
// and the one body every daemon answers it with,
// {"error":"method_not_allowed","message":"use <allowed>"}. `allowed` is a
// single method ("GET" or "POST").
void reply_method_not_allowed(Exchange& ex, const char* allowed);

// The reason phrase of a status code ("OK", "Not Found", ...).
const char* reason_phrase(int status);

}  // namespace boxgate::http
