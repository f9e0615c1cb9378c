#include "boxgate/http/server.hpp"

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <event2/util.h>
#include <netdb.h>
#include <sys/queue.h>

#include <sys/socket.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "boxgate/logging.hpp"

namespace boxgate::http {

// How long a refused connection is read (and its bytes dropped) after its
// answer, before it is closed.
constexpr std::int64_t kLingerMs = 1000;

// A client connection, from accept until evhttp frees it (close callback).
// Its request deadline runs while the client owes us a complete request (after
// accept, and after each reply): evhttp's own timeout restarts on every byte,
// so a client trickling headers would otherwise hold its socket forever.
//
// Its input is read by a RequestFraming as it arrives, before evhttp parses
// it (an evbuffer callback runs as bytes are added, before the bufferevent's
// read callback hands them to evhttp). A NUL byte is never valid in a request
// to this server -- not in the request line or a header (RFC 9110 5.5;
// libevent would cut a header value at it) and not in a JSON body (control
// characters must be escaped): such a connection is closed unanswered. Bytes
// that do not frame a request per RFC 9112, and a request the admission check
// refuses, are answered (400, or the refusal) and the connection closed;
// evhttp parses none of those bytes.
struct Server::Connection : RequestFraming::Observer {
  Server* server;
  evhttp_connection* conn;
  ExchangeState* waiting = nullptr;  // the unanswered request on it, if any
  event* request_deadline = nullptr;
  evbuffer* input = nullptr;  // the socket's input, as evhttp reads it
  evbuffer_cb_entry* input_watch = nullptr;
  const char* close_reason = nullptr;  // set when closing on purpose
  RequestFraming framing;
  std::uint64_t input_end = 0;     // bytes the client sent so far
  std::uint64_t answered = 0;      // replies written whole
  std::optional<Refusal> refusal;  // the answer to a refused request, until sent
  std::uint64_t refuse_after = 0;  // ... once this many replies are written

  Connection(Server* owner, evhttp_connection* connection)
      : server(owner), conn(connection), framing(2 * static_cast<std::size_t>(owner->settings_.max_header_bytes) + 1024) {}
  ~Connection() override { event_free(request_deadline); }
  void arm(std::int64_t ms) {
    timeval tv{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
    event_add(request_deadline, &tv);
  }
  void disarm() { event_del(request_deadline); }
  // Closes from the loop, outside libevent's read path: the deadline event
  // fires at once.
  void close_soon(const char* reason) {
    close_reason = reason;
    event_active(request_deadline, EV_TIMEOUT, 1);
  }
  void watch_input() {
    bufferevent* bev = evhttp_connection_get_bufferevent(conn);
    if (!bev) return;
    input = bufferevent_get_input(bev);
    input_watch = evbuffer_add_cb(input, &Connection::on_input, this);
  }
  void unwatch_input() {
    if (input && input_watch) evbuffer_remove_cb_entry(input, input_watch);
    input_watch = nullptr;
  }
  bool on_head(const RequestHead& head) override {
    if (!head.has_body() || !server->admission_) return true;
    refusal = server->admission_(head);
    return !refusal;
  }
  static void on_input(evbuffer* buffer, const evbuffer_cb_info* info, void* arg);
  RequestFraming::Status read_new_bytes(evbuffer* buffer, std::size_t added);
  void refuse(evbuffer* buffer);
  void keep_requests_before_refused(evbuffer* buffer);
  void send_refusal_if_due();
  static void on_deadline(evutil_socket_t, short, void* arg) {
    auto* self = static_cast<Connection*>(arg);
    log::get("http")->debug("closing a connection: {}",
                            self->close_reason ? self->close_reason : "no complete request in time");
    evhttp_connection_free(self->conn);  // runs the close callback, which deletes self
  }
};

void Server::Connection::on_input(evbuffer* buffer, const evbuffer_cb_info* info, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (info->n_added == 0) return;
  self->input_end += info->n_added;
  if (self->close_reason) {
    evbuffer_drain(buffer, evbuffer_get_length(buffer));  // closing: evhttp parses nothing more
    return;
  }
  switch (self->read_new_bytes(buffer, info->n_added)) {
    case RequestFraming::Status::ok: return;
    case RequestFraming::Status::nul:
      evbuffer_drain(buffer, evbuffer_get_length(buffer));
      self->close_soon("a NUL byte in the request");
      return;
    case RequestFraming::Status::invalid:
    case RequestFraming::Status::stopped: self->refuse(buffer); return;
  }
}

// Feeds the bytes added at the end of the buffer, segment by segment, without
// copying them.
RequestFraming::Status Server::Connection::read_new_bytes(evbuffer* buffer, std::size_t added) {
  const std::size_t length = evbuffer_get_length(buffer);
  evbuffer_ptr from;
  evbuffer_ptr_set(buffer, &from, added < length ? length - added : 0, EVBUFFER_PTR_SET);
  evbuffer_iovec segments[8];
  std::size_t left = added < length ? added : length;
  while (left > 0) {
    int n = evbuffer_peek(buffer, static_cast<ev_ssize_t>(left), &from, segments, 8);
    if (n <= 0) break;
    for (int i = 0; i < n && i < 8 && left > 0; ++i) {
      std::size_t take = segments[i].iov_len < left ? segments[i].iov_len : left;
      auto status = framing.feed({static_cast<const char*>(segments[i].iov_base), take}, *this);
      if (status != RequestFraming::Status::ok) return status;
      left -= take;
      evbuffer_ptr_set(buffer, &from, take, EVBUFFER_PTR_ADD);
    }
  }
  return framing.status();
}

// The requests before the refused one are served and answered first, in
// order; then the refusal is sent (400 for bad framing, or the admission
// check's answer) and the connection closed. evhttp never reads a byte of
// the refused request's bytes still unread, nor anything after them.
void Server::Connection::refuse(evbuffer* buffer) {
  keep_requests_before_refused(buffer);
  if (!refusal) {
    nlohmann::json body = {{"error", "invalid_request"}, {"message", framing.problem()}};
    refusal = Refusal{400, body.dump(), {}};
  }
  close_reason = framing.status() == RequestFraming::Status::stopped
                     ? "the admission check refused a request before its body"
                     : framing.problem();
  refuse_after = framing.messages();
  send_refusal_if_due();
}

// Cuts the input where the refused request starts (when it starts in it).
void Server::Connection::keep_requests_before_refused(evbuffer* buffer) {
  const std::size_t length = evbuffer_get_length(buffer);
  const std::uint64_t refused_bytes = input_end - framing.message_start();
  if (refused_bytes >= length) {
    evbuffer_drain(buffer, length);
    return;
  }
  evbuffer* kept = evbuffer_new();
  evbuffer_remove_buffer(buffer, kept, length - static_cast<std::size_t>(refused_bytes));
  evbuffer_drain(buffer, evbuffer_get_length(buffer));
  evbuffer_cb_clear_flags(buffer, input_watch, EVBUFFER_CB_ENABLED);  // not new bytes
  evbuffer_add_buffer(buffer, kept);
  evbuffer_cb_set_flags(buffer, input_watch, EVBUFFER_CB_ENABLED);
  evbuffer_free(kept);
}

// Sent straight on the socket once every earlier reply is written (so
// nothing else is being written), then the connection closes lingering: our
// side is shut for writing and the client's remaining bytes are read and
// dropped for a moment, so that closing with unread input (a TCP reset) does
// not destroy the answer before the client reads it.
void Server::Connection::send_refusal_if_due() {
  if (!refusal || answered < refuse_after || waiting) return;
  bufferevent* bev = evhttp_connection_get_bufferevent(conn);
  if (!bev || evbuffer_get_length(bufferevent_get_output(bev)) != 0) return;
  const Refusal& answer = *refusal;
  std::string text = "HTTP/1.1 " + std::to_string(answer.status) + " " + reason_phrase(answer.status) +
                     "\r\nContent-Type: application/json\r\nContent-Length: " + std::to_string(answer.body.size()) +
                     "\r\nConnection: close\r\n";
  for (const auto& [name, value] : answer.headers) text += name + ": " + value + "\r\n";
  text += "\r\n" + answer.body;
  refusal.reset();
  const evutil_socket_t fd = bufferevent_getfd(bev);
  // A short answer to a socket with nothing waiting: the kernel takes it whole.
  (void)::send(fd, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
  ::shutdown(fd, SHUT_WR);
  arm(kLingerMs);
}

struct ExchangeState {
  Server* server;
  evhttp_request* req;                 // null once answered or the client left
  Server::Connection* connection;
  std::function<void()> on_disconnect;
  event* hangup_watch = nullptr;       // readable socket while a reply is deferred
  evutil_socket_t fd = -1;
  bool streaming = false;              // start_stream() sent the headers; req lives until end
  std::function<void()> on_flushed;    // the write() callback waiting for the socket
  std::string note{};                  // Exchange::set_note
  Exchange::EndCallback on_end{};      // Exchange::on_end, until it ran

  ~ExchangeState() {
    if (hangup_watch) event_free(hangup_watch);
    end(0, "");
  }
  void end(int status, const char* request_id) {
    if (!on_end) return;
    auto callback = std::move(on_end);
    on_end = nullptr;
    callback(status, note, request_id ? request_id : "");
  }
  void stop_watching() {
    if (hangup_watch) event_del(hangup_watch);
  }
  static void on_readable(evutil_socket_t fd, short, void* arg);
  static void on_reply_written(evhttp_request* req, void* connection);
  static void on_chunk_flushed(evhttp_connection*, void* state);
};

void ExchangeState::on_chunk_flushed(evhttp_connection*, void* arg) {
  auto* state = static_cast<ExchangeState*>(arg);
  if (!state->on_flushed) return;
  auto callback = std::move(state->on_flushed);
  state->on_flushed = nullptr;
  callback();  // may destroy the Exchange, and this state with it
}

// libevent 2.1 stops reading a connection while its request waits for the
// handler, so it cannot see the client leave. A one-shot read watch can: EOF
// (or an error) means the caller is gone; data means a pipelined request, and
// then the watch simply ends.
void ExchangeState::on_readable(evutil_socket_t fd, short, void* arg) {
  auto* state = static_cast<ExchangeState*>(arg);
  char byte;
  ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  bool gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  if (n < 0 && !gone) {
    event_add(state->hangup_watch, nullptr);
    return;
  }
  if (!gone || !state->req || !state->on_disconnect) return;
  // The callback may destroy the Exchange, and this state with it.
  auto callback = std::move(state->on_disconnect);
  callback();
}

// ---- Exchange -------------------------------------------------------------

Exchange::Exchange(std::unique_ptr<ExchangeState> state) : state_(std::move(state)) {
  state_->connection->waiting = state_.get();
}
Exchange::Exchange(Exchange&&) noexcept = default;
Exchange& Exchange::operator=(Exchange&& other) noexcept {
  if (this != &other) {
    if (state_ && state_->req) reply(500, R"({"error":"internal","message":"request dropped"})");
    state_ = std::move(other.state_);
  }
  return *this;
}

Exchange::~Exchange() {
  if (state_ && state_->req && state_->streaming) {
    end_stream();
  } else if (state_ && state_->req) {
    reply(500, R"({"error":"internal","message":"request dropped unanswered"})");
  }
}

bool Exchange::is_get() const { return evhttp_request_get_command(state_->req) == EVHTTP_REQ_GET; }
bool Exchange::is_post() const { return evhttp_request_get_command(state_->req) == EVHTTP_REQ_POST; }
bool Exchange::is_delete() const { return evhttp_request_get_command(state_->req) == EVHTTP_REQ_DELETE; }

std::string_view Exchange::path() const {
  const char* p = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(state_->req));
  return p ? p : "";
}

std::string_view Exchange::raw_query() const {
  const char* q = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(state_->req));
  return q ? q : "";
}

const char* Exchange::header(const char* name) const {
  return evhttp_find_header(evhttp_request_get_input_headers(state_->req), name);
}

std::string_view Exchange::body() const {
  evbuffer* in = evhttp_request_get_input_buffer(state_->req);
  std::size_t len = evbuffer_get_length(in);
  if (len == 0) return {};
  return {reinterpret_cast<const char*>(evbuffer_pullup(in, -1)), len};
}

void Exchange::discard_body() {
  evbuffer* in = evhttp_request_get_input_buffer(state_->req);
  evbuffer_drain(in, evbuffer_get_length(in));
}

void Exchange::set_header(const char* name, const std::string& value) {
  if (state_ && state_->req) evhttp_add_header(evhttp_request_get_output_headers(state_->req), name, value.c_str());
}

namespace {
// Bodies at least this large are referenced, not copied, by libevent.
constexpr std::size_t kReferenceBodyBytes = 16 * 1024;

void free_string(const void*, size_t, void* owned) { delete static_cast<std::string*>(owned); }

void add_body(evbuffer* out, std::string&& body) {
  if (body.size() < kReferenceBodyBytes) {
    evbuffer_add(out, body.data(), body.size());
    return;
  }
  auto* owned = new std::string(std::move(body));
  if (evbuffer_add_reference(out, owned->data(), owned->size(), &free_string, owned) != 0) {
    evbuffer_add(out, owned->data(), owned->size());
    delete owned;
  }
}
}  // namespace

namespace {
// The read timeout is evhttp's idle timeout; it would also run while a reply
// is written (evhttp keeps reading for close detection), and so cut a large
// reply that is still flowing to a slow reader. While writing, only the write
// timeout applies: it restarts on every write, so it cuts a reader that stopped.
void set_timeouts(evhttp_connection* conn, const timeval* read, const timeval* write) {
  if (bufferevent* bev = evhttp_connection_get_bufferevent(conn)) bufferevent_set_timeouts(bev, read, write);
}

timeval to_timeval(std::int64_t ms) {
  return {static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}
}  // namespace

// The next request is owed once this reply has been written whole, however
// long a large reply took to flow out.
void ExchangeState::on_reply_written(evhttp_request*, void* arg) {
  auto* connection = static_cast<Server::Connection*>(arg);
  timeval idle = to_timeval(connection->server->settings_.idle_timeout_ms);
  set_timeouts(connection->conn, &idle, &idle);
  connection->arm(connection->server->settings_.idle_timeout_ms);
  ++connection->answered;
  connection->send_refusal_if_due();  // a refused request pipelined behind this one
}

void Exchange::reply(int status, std::string body, const char* content_type) {
  if (!state_ || !state_->req) return;
  evhttp_request* req = state_->req;
  state_->req = nullptr;
  state_->stop_watching();
  if (Server::Connection* connection = state_->connection) {
    connection->waiting = nullptr;
    evhttp_request_set_on_complete_cb(req, &ExchangeState::on_reply_written, connection);
  }
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", content_type);
  if (state_->on_end) state_->end(status, evhttp_find_header(headers, "X-Request-Id"));
  evbuffer* out = evbuffer_new();
  add_body(out, std::move(body));
  Server::Connection* connection = state_->connection;
  evhttp_send_reply(req, status, reason_phrase(status), out);
  evbuffer_free(out);
  if (connection) {
    timeval idle = to_timeval(state_->server->settings_.idle_timeout_ms);
    set_timeouts(connection->conn, nullptr, &idle);
  }
}

void Exchange::set_note(std::string note) {
  if (state_) state_->note = std::move(note);
}

void Exchange::on_end(EndCallback callback) {
  if (state_) state_->on_end = std::move(callback);
}

void Exchange::on_disconnect(std::function<void()> callback) {
  state_->on_disconnect = std::move(callback);
  if (!state_->req || state_->hangup_watch) return;
  evhttp_connection* conn = evhttp_request_get_connection(state_->req);
  bufferevent* bev = evhttp_connection_get_bufferevent(conn);
  state_->fd = bev ? bufferevent_getfd(bev) : -1;
  if (state_->fd < 0) return;
  // Armed at once: starting it after a delay (a libevent common timeout) saved
  // two epoll_ctl calls per fast command but cost ~15 us per command with 10k
  // waiting (bench/run mixed: gateway 95-109 -> 85 us, fast p99 60-200 -> 43 ms).
  state_->hangup_watch =
      event_new(evhttp_connection_get_base(conn), state_->fd, EV_READ, &ExchangeState::on_readable, state_.get());
  event_add(state_->hangup_watch, nullptr);
}

bool Exchange::open() const { return state_ && state_->req; }

bool Exchange::streaming() const { return state_ && state_->req && state_->streaming; }

void Exchange::start_stream(int status, const char* content_type) {
  if (!state_ || !state_->req || state_->streaming) return;
  state_->stop_watching();  // evhttp itself watches for the close while it writes
  state_->streaming = true;
  evhttp_request* req = state_->req;
  evkeyvalq* headers = evhttp_request_get_output_headers(req);
  evhttp_add_header(headers, "Content-Type", content_type);
  evhttp_send_reply_start(req, status, reason_phrase(status));
  if (Server::Connection* connection = state_->connection) {
    // No read timeout (a quiet stream is not idle); the write timeout cuts
    // a reader that stopped taking bytes.
    timeval idle = to_timeval(state_->server->settings_.idle_timeout_ms);
    set_timeouts(connection->conn, nullptr, &idle);
  }
}

void Exchange::write(std::string_view chunk, std::function<void()> on_flushed) {
  if (!streaming()) return;
  evbuffer* out = evbuffer_new();
  evbuffer_add(out, chunk.data(), chunk.size());
  state_->on_flushed = std::move(on_flushed);
  if (state_->on_flushed) {
    evhttp_send_reply_chunk_with_cb(state_->req, out, &ExchangeState::on_chunk_flushed, state_.get());
  } else {
    evhttp_send_reply_chunk(state_->req, out);
  }
  evbuffer_free(out);
}

std::size_t Exchange::pending_output() const {
  if (!streaming() || !state_->connection) return 0;
  bufferevent* bev = evhttp_connection_get_bufferevent(state_->connection->conn);
  return bev ? evbuffer_get_length(bufferevent_get_output(bev)) : 0;
}

std::size_t Exchange::flush_now() {
  if (!streaming() || !state_->connection) return 0;
  bufferevent* bev = evhttp_connection_get_bufferevent(state_->connection->conn);
  if (!bev) return 0;
  evbuffer* out = bufferevent_get_output(bev);
  evutil_socket_t fd = bufferevent_getfd(bev);
  // Non-blocking socket: takes what fits; an error is evhttp's to see on its
  // next write (it closes the connection then).
  if (fd >= 0 && evbuffer_get_length(out) > 0) evbuffer_write(out, fd);
  return evbuffer_get_length(out);
}

void Exchange::end_stream() {
  if (!streaming()) return;
  evhttp_request* req = state_->req;
  state_->req = nullptr;
  state_->on_flushed = nullptr;
  if (Server::Connection* connection = state_->connection) {
    connection->waiting = nullptr;
    evhttp_request_set_on_complete_cb(req, &ExchangeState::on_reply_written, connection);
    timeval idle = to_timeval(state_->server->settings_.idle_timeout_ms);
    set_timeouts(connection->conn, nullptr, &idle);
  }
  evhttp_send_reply_end(req);
}

void Exchange::abort() {
  if (!state_ || !state_->req) return;
  Server::Connection* connection = state_->connection;
  state_->req = nullptr;
  state_->on_disconnect = nullptr;
  state_->on_flushed = nullptr;
  state_->stop_watching();
  if (!connection) return;
  connection->waiting = nullptr;  // evhttp frees the request with the connection
  // From the loop, outside whatever libevent callback we may be in.
  connection->close_soon("stream aborted by the server");
}

// ---- Server ---------------------------------------------------------------

Server::Server(EventLoop& loop, const HttpSettings& settings, std::size_t max_body_bytes)
    : loop_(loop), settings_(settings) {
  http_ = evhttp_new(loop.base());
  if (!http_) throw std::runtime_error("evhttp_new failed");
  evhttp_set_max_headers_size(http_, static_cast<ev_ssize_t>(settings.max_header_bytes));
  // Bodies up to twice the limit reach the handler, which answers a JSON 413;
  // beyond that evhttp refuses on its own without reading them.
  evhttp_set_max_body_size(http_, static_cast<ev_ssize_t>(2 * max_body_bytes + 4096));
  timeval idle{static_cast<time_t>(settings.idle_timeout_ms / 1000),
               static_cast<suseconds_t>((settings.idle_timeout_ms % 1000) * 1000)};
  evhttp_set_timeout_tv(http_, &idle);
  evhttp_set_allowed_methods(http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST | EVHTTP_REQ_DELETE | EVHTTP_REQ_HEAD);
  evhttp_set_gencb(http_, &Server::on_request, this);
  // Connections are counted from accept: evhttp asks us for each new
  // connection's bufferevent, and adopt_accepted() finds the connection that
  // wraps it once evhttp has built it (later in the same loop iteration).
  adopt_event_ = event_new(loop.base(), -1, 0, &Server::adopt_accepted, this);
  evhttp_set_bevcb(http_, &Server::new_bufferevent, this);
}

bufferevent* Server::new_bufferevent(event_base* base, void* self) {
  auto* server = static_cast<Server*>(self);
  bufferevent* bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  if (bev) {
    server->accepted_.push_back(bev);
    event_active(server->adopt_event_, 0, 0);
  }
  return bev;
}

void Server::adopt_accepted(evutil_socket_t, short, void* self) {
  auto* server = static_cast<Server*>(self);
  for (bufferevent* bev : server->accepted_) {
    // evhttp registers its connection as the bufferevent's callback argument.
    void* conn = nullptr;
    bufferevent_getcb(bev, nullptr, nullptr, nullptr, &conn);
    if (conn) server->track(static_cast<evhttp_connection*>(conn));
  }
  server->accepted_.clear();
}

Server::~Server() {
  // evhttp_free frees the listener, then every connection; their close
  // callbacks forget them (and must not touch the freed listener).
  listener_ = nullptr;
  evhttp_free(http_);
  event_free(adopt_event_);
  for (auto& [conn, connection] : connections_) delete connection;
}

void Server::route(std::string path, Handler handler) { exact_.emplace_back(std::move(path), std::move(handler)); }

void Server::route_prefix(std::string prefix, Handler handler) {
  prefixes_.emplace_back(std::move(prefix), std::move(handler));
}

std::uint16_t Server::listen() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  std::string port = std::to_string(settings_.port);
  if (getaddrinfo(settings_.host.c_str(), port.c_str(), &hints, &found) != 0 || !found) {
    throw std::runtime_error("http_host: cannot resolve '" + settings_.host + "'");
  }
  listener_ = evconnlistener_new_bind(loop_.base(), nullptr, nullptr,
                                      LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
                                      static_cast<int>(settings_.backlog), found->ai_addr,
                                      static_cast<int>(found->ai_addrlen));
  freeaddrinfo(found);
  if (!listener_) {
    throw std::runtime_error("cannot listen on " + settings_.host + ":" + port + ": " +
                             evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
  }
  evhttp_bind_listener(http_, listener_);
  sockaddr_storage bound{};
  socklen_t len = sizeof bound;
  getsockname(evconnlistener_get_fd(listener_), reinterpret_cast<sockaddr*>(&bound), &len);
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

Server::Connection* Server::track(evhttp_connection* conn) {
  if (auto it = connections_.find(conn); it != connections_.end()) return it->second;
  auto* connection = new Connection(this, conn);
  connection->request_deadline = evtimer_new(loop_.base(), &Connection::on_deadline, connection);
  connection->arm(settings_.idle_timeout_ms);
  connection->watch_input();
  connections_.emplace(conn, connection);
  evhttp_connection_set_closecb(conn, &Server::on_connection_closed, connection);
  if (listener_ && !listener_paused_ && connections_.size() >= static_cast<std::size_t>(settings_.max_connections)) {
    evconnlistener_disable(listener_);
    listener_paused_ = true;
    log::get("http")->warn("connection cap {} reached; new clients wait in the backlog", settings_.max_connections);
  }
  return connection;
}

void Server::forget(Connection* connection) {
  connections_.erase(connection->conn);
  delete connection;
  if (listener_ && listener_paused_ && connections_.size() < static_cast<std::size_t>(settings_.max_connections)) {
    evconnlistener_enable(listener_);
    listener_paused_ = false;
  }
}

void Server::on_connection_closed(evhttp_connection*, void* arg) {
  auto* connection = static_cast<Connection*>(arg);
  connection->unwatch_input();  // the buffer is freed with the connection
  if (ExchangeState* waiting = connection->waiting) {
    // evhttp frees the request with the connection: make the Exchange inert.
    // A stream the client left mid-reply was detached from the connection
    // (libevent 2.1 keeps an unfinished reply's request for its user): ending
    // it frees it.
    if (waiting->streaming && waiting->req && !evhttp_request_get_connection(waiting->req)) {
      evhttp_send_reply_end(waiting->req);
    }
    waiting->on_flushed = nullptr;
    waiting->req = nullptr;
    waiting->connection = nullptr;
    waiting->stop_watching();
    connection->waiting = nullptr;
    if (waiting->on_disconnect) {
      auto callback = std::move(waiting->on_disconnect);
      callback();
    }
  }
  connection->server->forget(connection);
}

const Handler* Server::find_handler(std::string_view path) const {
  for (const auto& [exact, handler] : exact_) {
    if (path == exact) return &handler;
  }
  const Handler* best = nullptr;
  std::size_t best_len = 0;
  for (const auto& [prefix, handler] : prefixes_) {
    if (path.substr(0, prefix.size()) == prefix && prefix.size() > best_len) {
      best = &handler;
      best_len = prefix.size();
    }
  }
  return best;
}

void Server::on_request(evhttp_request* req, void* self) {
  auto* server = static_cast<Server*>(self);
  Connection* connection = server->track(evhttp_request_get_connection(req));
  connection->disarm();  // a complete request arrived
  Exchange exchange(std::make_unique<ExchangeState>(ExchangeState{server, req, connection, {}, nullptr, -1, false, {}}));
  const Handler* handler = server->find_handler(exchange.path());
  if (!handler) {
    exchange.reply(404, R"({"error":"not_found","message":"no such endpoint"})");
    return;
  }
  try {
    (*handler)(std::move(exchange));
  } catch (const std::exception& e) {
    // A handler must not throw; if one does, the Exchange it was given answers 500.
    // The log formatter escapes the caller's bytes (logging.hpp); the path is cut short.
    log::get("http")->error("handler for {} threw: {}", std::string_view(evhttp_request_get_uri(req)).substr(0, 200),
                            e.what());
  }
}

std::string percent_decode(std::string_view segment) {
  std::string raw(segment);
  std::size_t size = 0;
  char* decoded = evhttp_uridecode(raw.c_str(), 0, &size);
  if (!decoded) return raw;
  std::string out(decoded, size);
  std::free(decoded);
  return out;
}

std::vector<QueryParam> split_query(std::string_view raw) {
  std::vector<QueryParam> params;
  while (!raw.empty()) {
    std::size_t amp = raw.find('&');
    std::string_view piece = raw.substr(0, amp);
    raw = amp == std::string_view::npos ? std::string_view() : raw.substr(amp + 1);
    if (piece.empty()) continue;
    std::size_t eq = piece.find('=');
    if (eq == std::string_view::npos) {
      params.push_back({piece, {}, false});
    } else {
      params.push_back({piece.substr(0, eq), piece.substr(eq + 1), true});
    }
  }
  return params;
}

void reply_method_not_allowed(Exchange& ex, const char* allowed) {
  ex.set_header("Allow", allowed);
  ex.reply(405, std::string(R"({"error":"method_not_allowed","message":"use )") + allowed + "\"}");
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200: return "OK";
    case 202: return "Accepted";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 406: return "Not Acceptable";
    case 409: return "Conflict";
    case 413: return "Payload Too Large";
    case 415: return "Unsupported Media Type";
    case 421: return "Misdirected Request";
    case 422: return "Unprocessable Content";
    case 429: return "Too Many Requests";
    case 500: return "Internal Server Error";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    default: return "Unknown";
  }
}

}  // namespace boxgate::http
