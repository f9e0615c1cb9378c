// What keeps a browser from being used against the API, on a real gateway
// (docs/contract.md, "Browsers"): a POST must declare application/json (a page
// on any site can send text/plain, form and multipart bodies without a CORS
// preflight) or it is 415 and nothing is published; a cross-site Origin is
// 403 unless allowed_origins lists it; with allowed_hosts, another Host is 421
// (DNS rebinding); /console cannot be framed. Raw HTTP, so each header is
// exactly what the test writes.

#include <gtest/gtest.h>

#include <sys/socket.h>
#include <unistd.h>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

struct BrowserReply {
  int status = -1;
  std::string head;
  std::string body;

  std::string error() const {
    auto doc = nlohmann::json::parse(body, nullptr, false);
    return doc.is_object() ? doc.value("error", "") : "";
  }
};

// One request on its own connection (Connection: close; read to EOF). A
// Host header is added unless `headers` has one; a POST gets its length.
BrowserReply browser_call(int port, const std::string& method, const std::string& path,
                          const std::vector<std::string>& headers, const std::string& body = "") {
  std::string request = method + " " + path + " HTTP/1.1\r\nConnection: close\r\n";
  bool host = false;
  for (const std::string& h : headers) {
    request += h + "\r\n";
    host = host || h.rfind("Host:", 0) == 0;
  }
  if (!host) request += "Host: 127.0.0.1:" + std::to_string(port) + "\r\n";
  if (method == "POST") request += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  request += "\r\n" + body;
  int fd = test::connect_loopback(port, "browser call");
  BrowserReply reply;
  if (::send(fd, request.data(), request.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(request.size())) {
    timeval tv{10, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    char buf[8192];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, static_cast<std::size_t>(n));
    auto end = got.find("\r\n\r\n");
    if (got.rfind("HTTP/1.1 ", 0) == 0 && end != std::string::npos) {
      reply.status = std::atoi(got.substr(9, 3).c_str());
      reply.head = got.substr(0, end);
      reply.body = got.substr(end + 4);
    }
  }
  ::close(fd);
  test::record_http(method, path.substr(0, path.find('?')), reply.status, reply.error());
  return reply;
}

class BrowserTest : public StackTest {
 protected:
  BrowserTest() : StackTest("browser") {}
};

TEST_F(BrowserTest, PostsNotDeclaredJsonAre415AndNothingIsPublished) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  MqttProbe messages(stack->mqtt_port());
  messages.subscribe("dev/+/message/+");

  const std::string commands = command_path("box-1", "timeout_ms=5000");
  const std::string message_path = "/v1/devices/box-1/messages";
  for (const std::string& type :
       {std::string(), std::string("Content-Type: text/plain"), std::string("Content-Type: text/plain; charset=utf-8"),
        std::string("Content-Type: application/x-www-form-urlencoded"),
        std::string("Content-Type: multipart/form-data; boundary=x"), std::string("Content-Type: application/jsonp"),
        std::string("Content-Type: text/plain; application/json")}) {
    std::vector<std::string> headers;
    if (!type.empty()) headers.push_back(type);
    for (const std::string& path : {commands, message_path}) {
      BrowserReply r = browser_call(gw, "POST", path, headers, kPing);
      EXPECT_EQ(r.status, 415) << path << " with '" << type << "': " << r.body;
      EXPECT_EQ(r.error(), "unsupported_media_type") << r.body;
    }
  }

  // Declared JSON, parameters and case as a client may write them: served.
  BrowserReply command = browser_call(gw, "POST", commands, {"Content-Type: Application/JSON; charset=utf-8"}, kPing);
  EXPECT_EQ(command.status, 200) << command.body << "\n" << stack->logs();
  BrowserReply message = browser_call(gw, "POST", message_path, {"Content-Type: application/json"}, kPing);
  EXPECT_EQ(message.status, 202) << message.body;

  // The gateway publishes in order on one connection: had any refused call
  // been published, it would have arrived before these.
  ASSERT_TRUE(messages.wait_for(1, 5s));
  EXPECT_EQ(device.commands().size(), 1u);
  EXPECT_EQ(messages.count(), 1u);
}

TEST_F(BrowserTest, CrossSiteOriginIs403UnlessListedAndSameOriginPasses) {
  int gw = stack->add_gateway({"--allowed-origins", "https://app.example.com"});
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  const std::string self = "127.0.0.1:" + std::to_string(gw);
  const std::string commands = command_path("box-1", "timeout_ms=5000");
  const std::string json = "Content-Type: application/json";

  for (const std::string& origin : {std::string("https://evil.example"), std::string("null"),
                                    std::string("http://127.0.0.1:" + std::to_string(gw + 1)),
                                    std::string("https://app.example.com.evil.example"), std::string("http://" + self + "/x")}) {
    BrowserReply post = browser_call(gw, "POST", commands, {json, "Origin: " + origin}, kPing);
    EXPECT_EQ(post.status, 403) << origin << ": " << post.body;
    EXPECT_EQ(post.error(), "origin_not_allowed") << post.body;
    BrowserReply read = browser_call(gw, "GET", "/v1/devices/box-1/commands/no-such", {"Origin: " + origin});
    EXPECT_EQ(read.status, 403) << origin << ": " << read.body;
  }
  ASSERT_EQ(device.commands().size(), 0u);

  // Listed, same origin (the Origin's host:port is the Host header, also
  // under another name), and no Origin at all (not a browser): served.
  for (const std::vector<std::string>& headers :
       {std::vector<std::string>{json, "Origin: https://app.example.com"},
        std::vector<std::string>{json, "Origin: HTTPS://APP.EXAMPLE.COM"},
        std::vector<std::string>{json, "Origin: http://" + self},
        std::vector<std::string>{json, "Origin: http://gw.example:8080", "Host: gw.example:8080"},
        std::vector<std::string>{json, "Origin: https://gw.example", "Host: gw.example:443"},
        std::vector<std::string>{json}}) {
    BrowserReply r = browser_call(gw, "POST", commands, headers, kPing);
    EXPECT_EQ(r.status, 200) << headers.back() << ": " << r.body;
  }
  EXPECT_EQ(device.commands().size(), 6u);
}

TEST_F(BrowserTest, HostNotInAllowedHostsIs421) {
  int gw = stack->add_gateway({"--allowed-hosts", "gw.example.com,127.0.0.1"});
  const std::string path = "/v1/devices/box-1/commands/no-such";
  for (const std::string& host : {std::string("rebound.example"), std::string("gw.example.com.rebound.example"),
                                  std::string("127.0.0.2:" + std::to_string(gw))}) {
    BrowserReply r = browser_call(gw, "GET", path, {"Host: " + host});
    EXPECT_EQ(r.status, 421) << host << ": " << r.body;
    EXPECT_EQ(r.error(), "host_not_allowed") << r.body;
    EXPECT_NE(r.head.find("421 Misdirected Request"), std::string::npos) << r.head;
  }
  // Listed names, any port and any case: they reach the endpoint.
  for (const std::string& host :
       {std::string("gw.example.com"), std::string("GW.Example.com:8080"), "127.0.0.1:" + std::to_string(gw)}) {
    BrowserReply r = browser_call(gw, "GET", path, {"Host: " + host});
    EXPECT_EQ(r.status, 404) << host << ": " << r.body;
    EXPECT_EQ(r.error(), "unknown_command") << r.body;
  }
  // The console too: a rebound name must not serve the page either.
  EXPECT_EQ(browser_call(gw, "GET", "/console", {"Host: rebound.example"}).status, 421);
}

TEST_F(BrowserTest, ConsoleRefusesToBeFramed) {
  int gw = stack->add_gateway();
  BrowserReply page = browser_call(gw, "GET", "/console", {});
  ASSERT_EQ(page.status, 200) << page.head;
  EXPECT_NE(page.head.find("\r\nX-Frame-Options: DENY"), std::string::npos) << page.head;
  // One policy: frame-ancestors merged into the page's own.
  auto at = page.head.find("\r\nContent-Security-Policy: ");
  ASSERT_NE(at, std::string::npos) << page.head;
  EXPECT_EQ(page.head.find("\r\nContent-Security-Policy: ", at + 1), std::string::npos) << page.head;
  std::string policy = page.head.substr(at, page.head.find("\r\n", at + 2) - at);
  EXPECT_NE(policy.find("frame-ancestors 'none'"), std::string::npos) << policy;
  EXPECT_NE(policy.find("connect-src 'self'"), std::string::npos) << policy;
  EXPECT_NE(policy.find("default-src 'none'"), std::string::npos) << policy;
}

}  // namespace
}  // namespace boxgate::itest
