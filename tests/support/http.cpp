#include "support/http.hpp"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>

namespace boxgate::test {

std::string HttpResult::header(const std::string& name) const {
  auto it = headers.find(name);
  return it == headers.end() ? std::string() : it->second;
}

nlohmann::json HttpResult::json() const { return nlohmann::json::parse(body, nullptr, false); }

std::string HttpResult::error_code() const {
  auto doc = json();
  if (!doc.is_object() || !doc.contains("error") || !doc["error"].is_string()) return {};
  return doc["error"].get<std::string>();
}

std::unique_ptr<httplib::Client> client(int port) {
  auto c = std::make_unique<httplib::Client>("127.0.0.1", port);
  c->set_connection_timeout(std::chrono::seconds(2));
  c->set_read_timeout(std::chrono::seconds(70));
  c->set_write_timeout(std::chrono::seconds(10));
  c->set_keep_alive(true);
  c->set_url_encode(false);
  c->set_tcp_nodelay(true);  // else Nagle + delayed ACK add ~40 ms to each POST (headers and body are two writes)
  return c;
}

std::string command_path(const std::string& box, const std::string& query) {
  return "/v1/devices/" + box + "/commands" + (query.empty() ? "" : "?" + query);
}

std::string device_path(const std::string& box) { return "/v1/devices/" + box; }

namespace {
HttpResult convert(httplib::Result res, std::chrono::steady_clock::time_point started) {
  HttpResult out;
  out.elapsed = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  if (!res) {
    out.error = httplib::to_string(res.error());
    return out;
  }
  out.status = res->status;
  out.body = res->body;
  out.headers = res->headers;
  return out;
}
}  // namespace

namespace {
// One write(2) with O_APPEND: lines of parallel tests never interleave.
void append_to_http_log(std::string line) {
  const char* file = std::getenv("BOXGATE_HTTP_LOG");
  if (!file || !*file) return;
  for (char& c : line) {
    if (c == '\r' || c == '\n') c = ' ';  // one line whatever a path holds
  }
  line.push_back('\n');
  int fd = ::open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return;
  ssize_t written = ::write(fd, line.data(), line.size());
  (void)written;
  ::close(fd);
}

std::string test_name(const ::testing::TestInfo& info) {
  return std::string(info.test_suite_name()) + "." + info.name();
}

// "#ran <test>" for every test started, so the check knows a whole run from
// a ctest -R one.
class RanRecorder : public ::testing::EmptyTestEventListener {
  void OnTestStart(const ::testing::TestInfo& info) override { append_to_http_log("#ran\t" + test_name(info)); }
};

[[maybe_unused]] const bool kRanRecorder = [] {
  const char* file = std::getenv("BOXGATE_HTTP_LOG");
  if (file && *file) ::testing::UnitTest::GetInstance()->listeners().Append(new RanRecorder);
  return true;
}();
}  // namespace

void record_http(const std::string& method, const std::string& path, int status, const std::string& error_code) {
  if (!std::getenv("BOXGATE_HTTP_LOG")) return;
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string bare = path.substr(0, path.find('?'));
  std::replace(bare.begin(), bare.end(), '\t', ' ');
  append_to_http_log((info ? test_name(*info) : std::string("-")) + "\t" + method + "\t" + bare + "\t" +
                     std::to_string(status) + "\t" + error_code);
}

namespace {
HttpResult recorded(const char* method, const std::string& path, HttpResult result) {
  record_http(method, path, result.status, result.status > 0 ? result.error_code() : "");
  return result;
}
}  // namespace

HttpResult post(httplib::Client& c, const std::string& path, const std::string& body,
                const httplib::Headers& headers) {
  auto started = std::chrono::steady_clock::now();
  return recorded("POST", path, convert(c.Post(path.c_str(), headers, body, "application/json"), started));
}

HttpResult get(httplib::Client& c, const std::string& path) {
  auto started = std::chrono::steady_clock::now();
  return recorded("GET", path, convert(c.Get(path.c_str()), started));
}

HttpResult get(httplib::Client& c, const std::string& path, const httplib::Headers& headers) {
  auto started = std::chrono::steady_clock::now();
  return recorded("GET", path, convert(c.Get(path.c_str(), headers), started));
}

HttpResult get(int port, const std::string& path) {
  auto c = client(port);
  c->set_read_timeout(std::chrono::seconds(5));
  return get(*c, path);
}

}  // namespace boxgate::test
