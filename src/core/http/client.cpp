#include "boxgate/http/client.hpp"

#include <curl/curl.h>
#include <event2/event.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <mutex>
#include <stdexcept>
#include <string_view>

#include "boxgate/logging.hpp"

namespace boxgate::http {

namespace {

using Clock = std::chrono::steady_clock;

// curl_global_init once per process, from whichever thread makes the first
// Client (curl 7.84+ makes it thread-safe too, call_once makes sure of it on
// any version). curl_global_cleanup is never called: other threads (another
// loop's Client, OpenSSL users such as the MQTT client) may still be using
// curl or OpenSSL when one Client goes, and at exit the process's memory goes
// with it (what curl keeps stays reachable from its globals, so LeakSanitizer
// does not count it).
CURLcode global_init() {
  static std::once_flag once;
  static CURLcode result = CURLE_FAILED_INIT;
  std::call_once(once, [] { result = curl_global_init(CURL_GLOBAL_DEFAULT); });
  return result;
}

timeval to_timeval(long ms) {
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
  });
}

// A header curl can send as one line: a token for a name (no ':', space or
// control byte), a value without CR, LF or NUL (no second header, no request
// smuggled behind it).
bool valid_header(const std::string& name, const std::string& value) {
  if (name.empty()) return false;
  for (unsigned char c : name) {
    if (c <= 0x20 || c >= 0x7f || c == ':') return false;
  }
  return value.find_first_of(std::string_view("\r\n\0", 3)) == std::string::npos;
}

std::chrono::milliseconds since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start);
}

}  // namespace

// One post() between curl_multi_add_handle and its CURLMSG_DONE.
struct Client::Transfer {
  CURL* easy = nullptr;
  Request request;  // body and URL stay here while curl reads them
  Done done;
  curl_slist* headers = nullptr;
  std::string body;
  bool truncated = false;
  char error[CURL_ERROR_SIZE] = {};
  Clock::time_point started;

  ~Transfer() {
    if (easy) curl_easy_cleanup(easy);  // after curl_multi_remove_handle
    curl_slist_free_all(headers);
  }

  static size_t on_write(char* data, size_t size, size_t count, void* self) {
    auto* t = static_cast<Transfer*>(self);
    const size_t n = size * count;
    const size_t room = kMaxResponseBody - t->body.size();
    t->body.append(data, std::min(n, room));
    if (n > room) t->truncated = true;
    return n;  // the rest is read and dropped: the connection stays reusable
  }
};

// The libevent event of one socket curl asked us to watch.
struct Client::Watch {
  event* ev = nullptr;
  ~Watch() {
    if (ev) event_free(ev);
  }
};

// The C callbacks: curl's socket and timer functions (hiperfifo.c's pattern)
// and libevent's events that hand the activity back to curl.
struct ClientCallbacks {
  // curl: watch `fd` for `what` (or stop watching it).
  static int on_socket(CURL*, curl_socket_t fd, int what, void* userp, void*) {
    auto* self = static_cast<Client*>(userp);
    if (what == CURL_POLL_REMOVE) {
      self->watches_.erase(fd);
      return 0;
    }
    const short kind = static_cast<short>(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                                          ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
    auto& watch = self->watches_[fd];
    if (!watch) watch = std::make_unique<Client::Watch>();
    if (watch->ev) {
      event_del(watch->ev);
      event_assign(watch->ev, self->loop_.base(), fd, kind, &on_socket_event, self);
    } else {
      watch->ev = event_new(self->loop_.base(), fd, kind, &on_socket_event, self);
      if (!watch->ev) return -1;
    }
    return event_add(watch->ev, nullptr) == 0 ? 0 : -1;
  }

  // curl: call curl_multi_socket_action(CURL_SOCKET_TIMEOUT) after timeout_ms
  // (-1: not at all). Never called back from here: curl forbids it, and a
  // 0 ms timeout would run a Done inside post().
  static int on_curl_timer(CURLM*, long timeout_ms, void* userp) {
    auto* self = static_cast<Client*>(userp);
    if (timeout_ms < 0) {
      event_del(self->timeout_);
      return 0;
    }
    const timeval tv = to_timeval(timeout_ms);
    return event_add(self->timeout_, &tv) == 0 ? 0 : -1;
  }

  static void on_socket_event(evutil_socket_t fd, short what, void* userp) {
    auto* self = static_cast<Client*>(userp);
    const int flags = ((what & EV_READ) ? CURL_CSELECT_IN : 0) | ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    self->socket_action(fd, flags);
    self->finish();
  }

  static void on_timeout(evutil_socket_t, short, void* userp) {
    auto* self = static_cast<Client*>(userp);
    self->socket_action(CURL_SOCKET_TIMEOUT, 0);
    self->finish();
  }

  // Runs the Done functions; stops when one of them destroyed the Client
  // (the rest are dropped with the Client, as its destructor drops them).
  static void deliver(const std::weak_ptr<bool>& alive, std::vector<std::pair<Client::Done, Response>>& done) {
    for (auto& [callback, response] : done) {
      if (alive.expired()) return;
      try {
        callback(std::move(response));
      } catch (const std::exception& e) {
        log::get("http")->error("http client callback threw: {}", e.what());
      }
    }
  }

  static void on_failed(evutil_socket_t, short, void* userp) {
    auto* self = static_cast<Client*>(userp);
    std::vector<std::pair<Client::Done, Response>> failed;
    failed.swap(self->failed_);
    const std::weak_ptr<bool> alive = self->alive_;
    deliver(alive, failed);
  }
};

Client::Client(EventLoop& loop, ClientSettings settings) : loop_(loop), settings_(std::move(settings)) {
  if (global_init() != CURLE_OK) throw std::runtime_error("curl_global_init failed");
  multi_ = curl_multi_init();
  if (!multi_) throw std::runtime_error("curl_multi_init failed");
  timeout_ = event_new(loop_.base(), -1, 0, &ClientCallbacks::on_timeout, this);
  failed_event_ = event_new(loop_.base(), -1, 0, &ClientCallbacks::on_failed, this);
  const long connections = static_cast<long>(std::max<std::size_t>(1, settings_.max_connections));
  const bool ok = timeout_ && failed_event_ &&
                  curl_multi_setopt(multi_, CURLMOPT_SOCKETFUNCTION, &ClientCallbacks::on_socket) == CURLM_OK &&
                  curl_multi_setopt(multi_, CURLMOPT_SOCKETDATA, this) == CURLM_OK &&
                  curl_multi_setopt(multi_, CURLMOPT_TIMERFUNCTION, &ClientCallbacks::on_curl_timer) == CURLM_OK &&
                  curl_multi_setopt(multi_, CURLMOPT_TIMERDATA, this) == CURLM_OK &&
                  curl_multi_setopt(multi_, CURLMOPT_MAX_TOTAL_CONNECTIONS, connections) == CURLM_OK &&
                  curl_multi_setopt(multi_, CURLMOPT_MAXCONNECTS, connections) == CURLM_OK;
  if (!ok) {
    if (timeout_) event_free(timeout_);
    if (failed_event_) event_free(failed_event_);
    curl_multi_cleanup(multi_);
    throw std::runtime_error("setting up the curl multi handle failed");
  }
}

Client::~Client() {
  alive_.reset();  // a Done that destroyed us: deliver() runs no more of them
  for (auto& [easy, transfer] : transfers_) curl_multi_remove_handle(multi_, easy);
  transfers_.clear();  // their Done functions are dropped uncalled
  failed_.clear();
  // May still call on_socket/on_curl_timer: the watches and timer live on.
  curl_multi_cleanup(multi_);
  watches_.clear();
  event_free(timeout_);
  event_free(failed_event_);
}

void Client::post(Request request, Done done) {
  const Clock::time_point started = Clock::now();
  auto fail = [&](std::string why) {
    Response response;
    response.error = std::move(why);
    response.elapsed = since(started);
    failed_.emplace_back(std::move(done), std::move(response));
    event_active(failed_event_, EV_TIMEOUT, 1);  // after post() returns
  };
  if (request.timeout.count() <= 0) return fail("the request timeout must be positive");
  bool content_type = false, expect = false;
  for (const auto& [name, value] : request.headers) {
    if (!valid_header(name, value)) return fail("invalid header name or value (CR, LF, NUL or not a token)");
    content_type = content_type || iequals(name, "Content-Type");
    expect = expect || iequals(name, "Expect");
  }

  auto t = std::make_unique<Transfer>();
  t->request = std::move(request);
  t->started = started;
  t->easy = curl_easy_init();
  if (!t->easy) return fail("curl_easy_init failed");
  for (const auto& [name, value] : t->request.headers) {
    // "Name;" is curl's way to send a header with an empty value.
    const std::string line = value.empty() ? name + ";" : name + ": " + value;
    curl_slist* next = curl_slist_append(t->headers, line.c_str());
    if (!next) return fail("out of memory");
    t->headers = next;
  }
  for (const char* line : {content_type ? nullptr : "Content-Type: application/json",
                           // No "Expect: 100-continue" (a wait of up to 1 s) before bodies over 1 KiB.
                           expect ? nullptr : "Expect:"}) {
    if (!line) continue;
    curl_slist* next = curl_slist_append(t->headers, line);
    if (!next) return fail("out of memory");
    t->headers = next;
  }

  CURL* easy = t->easy;
  const std::optional<std::string>& ca_file = t->request.ca_file ? t->request.ca_file : settings_.ca_file;
  const long verify = settings_.verify_peer ? 1L : 0L;
  CURLcode rc = CURLE_OK;
  auto set = [&rc](CURLcode result) {
    if (rc == CURLE_OK) rc = result;
  };
  set(curl_easy_setopt(easy, CURLOPT_PRIVATE, t.get()));
  set(curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, t->error));
  set(curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L));  // never SIGALRM in a daemon with threads
  // Only http and https, also after a redirect (which is not followed anyway).
  set(curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https"));
  set(curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L));
  set(curl_easy_setopt(easy, CURLOPT_PROXY, ""));  // "": no proxy, whatever the environment says
  set(curl_easy_setopt(easy, CURLOPT_URL, t->request.url.c_str()));
  set(curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, static_cast<long>(CURL_HTTP_VERSION_1_1)));
  set(curl_easy_setopt(easy, CURLOPT_POST, 1L));
  set(curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(t->request.body.size())));
  set(curl_easy_setopt(easy, CURLOPT_POSTFIELDS, t->request.body.data()));
  set(curl_easy_setopt(easy, CURLOPT_HTTPHEADER, t->headers));
  set(curl_easy_setopt(easy, CURLOPT_USERAGENT, settings_.user_agent.c_str()));
  set(curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, static_cast<long>(t->request.timeout.count())));
  set(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, verify));
  set(curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, verify * 2));
  if (ca_file) {
    // This bundle instead of the system's: no CA directory either.
    set(curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file->c_str()));
    set(curl_easy_setopt(easy, CURLOPT_CAPATH, nullptr));
  }
  set(curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::on_write));
  set(curl_easy_setopt(easy, CURLOPT_WRITEDATA, t.get()));
  if (rc != CURLE_OK) return fail(std::string("setting up the request failed: ") + curl_easy_strerror(rc));

  // Calls on_curl_timer (0 ms): the transfer starts from the loop.
  const CURLMcode added = curl_multi_add_handle(multi_, easy);
  if (added != CURLM_OK) return fail(std::string("curl_multi_add_handle: ") + curl_multi_strerror(added));
  t->done = std::move(done);
  transfers_.emplace(easy, std::move(t));
}

void Client::socket_action(int fd, int flags) {
  int running = 0;
  const CURLMcode rc = curl_multi_socket_action(multi_, fd, flags, &running);
  if (rc != CURLM_OK) log::get("http")->warn("curl_multi_socket_action: {}", curl_multi_strerror(rc));
}

void Client::finish() {
  std::vector<std::pair<Done, Response>> done;
  int left = 0;
  while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
    if (msg->msg != CURLMSG_DONE) continue;
    CURL* easy = msg->easy_handle;
    const CURLcode result = msg->data.result;  // msg is invalid after remove_handle
    auto it = transfers_.find(easy);
    curl_multi_remove_handle(multi_, easy);
    if (it == transfers_.end()) continue;
    std::unique_ptr<Transfer> t = std::move(it->second);
    transfers_.erase(it);

    Response response;
    response.elapsed = since(t->started);
    if (result == CURLE_OK) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
      response.body = std::move(t->body);
      response.body_truncated = t->truncated;
      if (response.status == 0) response.error = "no HTTP status in the answer";
    } else {
      response.error = curl_easy_strerror(result);
      if (t->error[0] != '\0') response.error += std::string(": ") + t->error;
    }
    done.emplace_back(std::move(t->done), std::move(response));
  }
  // Last: a Done may destroy this Client.
  const std::weak_ptr<bool> alive = alive_;
  ClientCallbacks::deliver(alive, done);
}

}  // namespace boxgate::http
