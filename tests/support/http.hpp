#pragma once
// HTTP calls to the gateways and the bridges' ops ports, timed: what the
// integration tests and the chaos run (tests/chaos) send and how they read the
// answers.
//
// Callers: any thread, one httplib::Client per thread (a client is not
// thread-safe). Nothing here throws for a failed call: a transport error is an
// HttpResult with status -1 and the reason in `error`.

#include <chrono>
#include <memory>
#include <string>

#include <httplib.h>
#include <nlohmann/json.hpp>

namespace boxgate::test {

struct HttpResult {
  int status = -1;  // -1: no response (transport error, see error)
  std::string body;
  httplib::Headers headers;
  std::chrono::milliseconds elapsed{0};
  std::string error;

  bool has_header(const std::string& name) const { return headers.find(name) != headers.end(); }
  std::string header(const std::string& name) const;
  // The body parsed as JSON (discarded value when it is not JSON).
  nlohmann::json json() const;
  // The "error" field of a JSON error body, "" when there is none.
  std::string error_code() const;
};

// A keep-alive client for 127.0.0.1:port that sends paths verbatim (no URL
// re-encoding, so tests control percent-encoding byte for byte). Connect
// timeout 2 s, read 70 s (longer than the largest command timeout), write 10 s.
std::unique_ptr<httplib::Client> client(int port);

// "/v1/devices/<box>/commands" + ("?" + query when not empty). `box` is put in
// as given (already percent-encoded where the test wants it).
std::string command_path(const std::string& box, const std::string& query = "");
// "/v1/devices/<box>" (a box's presence), `box` as given.
std::string device_path(const std::string& box);

// One call; `elapsed` runs from just before the request is written to the
// answer (or the transport error).
HttpResult post(httplib::Client& c, const std::string& path, const std::string& body,
                const httplib::Headers& headers = {});
HttpResult get(httplib::Client& c, const std::string& path);
HttpResult get(httplib::Client& c, const std::string& path, const httplib::Headers& headers);
// GET on a fresh connection with a 5 s read timeout.
HttpResult get(int port, const std::string& path);

// When the environment names a file in BOXGATE_HTTP_LOG, appends one line
// "<test>\t<method>\t<path>\t<status>\t<error code>" to it (the path without
// its query; status -1 for no response). post() and get() call it for every
// call; a test that speaks raw HTTP calls it itself. tests/docs/openapi_check.py
// reads the file: every status seen for a documented path must be in
// docs/openapi.yaml, and every documented error code must be seen.
void record_http(const std::string& method, const std::string& path, int status, const std::string& error_code);

}  // namespace boxgate::test
