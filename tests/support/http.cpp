#include "support/http.hpp"

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

HttpResult post(httplib::Client& c, const std::string& path, const std::string& body,
                const httplib::Headers& headers) {
  auto started = std::chrono::steady_clock::now();
  return convert(c.Post(path.c_str(), headers, body, "application/json"), started);
}

HttpResult get(httplib::Client& c, const std::string& path) {
  auto started = std::chrono::steady_clock::now();
  return convert(c.Get(path.c_str()), started);
}

HttpResult get(httplib::Client& c, const std::string& path, const httplib::Headers& headers) {
  auto started = std::chrono::steady_clock::now();
  return convert(c.Get(path.c_str(), headers), started);
}

HttpResult get(int port, const std::string& path) {
  auto c = client(port);
  c->set_read_timeout(std::chrono::seconds(5));
  return get(*c, path);
}

}  // namespace boxgate::test
