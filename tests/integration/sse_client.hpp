#pragma once
// A Server-Sent Events client for the integration tests: one HTTP/1.1 GET on
// a raw loopback socket, the chunked body decoded and parsed into events
// (id, event, data joined with LF) and comments, on its own reader thread.
//
// Callers: the test thread constructs it and reads events()/comments() (a
// mutex guards them); the reader thread only appends. `read` false: the
// client never reads the socket (a stalled reader, with a small receive
// buffer) until resume(). The destructor closes the socket and joins.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace boxgate::itest {

struct SseEvent {
  std::string id;
  std::string event;
  std::string data;
};

class SseClient {
 public:
  SseClient(int port, const std::string& path, std::map<std::string, std::string> headers = {}, bool read = true);
  ~SseClient();
  SseClient(const SseClient&) = delete;
  SseClient& operator=(const SseClient&) = delete;

  // The status line's code once the headers came (0 before; -1 on failure).
  int status(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  std::string headers() const;
  std::string body() const;  // a non-streaming answer's body, decoded
  bool wait_events(std::size_t count, std::chrono::milliseconds timeout);
  bool wait_comments(std::size_t count, std::chrono::milliseconds timeout);
  bool wait_closed(std::chrono::milliseconds timeout);
  std::vector<SseEvent> events() const;
  std::size_t comments() const;
  bool closed() const;
  void resume();  // start reading (a client made with read = false)

 private:
  void run();
  void feed(const std::string& bytes);  // the decoded body
  void parse_lines();
  void record() const;  // into the tests' HTTP log (test::record_http)

  int fd_ = -1;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::atomic<bool> reading_;
  std::string path_;
  std::atomic<bool> stop_{false};
  int status_ = 0;
  std::string head_;
  std::string raw_;    // bytes after the headers, still chunked
  std::string body_;   // decoded, not yet parsed
  std::string all_body_;
  std::vector<SseEvent> events_;
  SseEvent pending_;
  bool has_data_ = false;
  std::size_t comments_ = 0;
  bool closed_ = false;
  bool chunked_ = false;
  std::thread thread_;
};

}  // namespace boxgate::itest
