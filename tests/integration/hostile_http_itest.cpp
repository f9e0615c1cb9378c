// Hostile HTTP input, one test per class, on raw sockets:
// conflicting Content-Length/Transfer-Encoding, repeated Content-Length,
// chunked framing outside RFC 9112 (alone and pipelined behind good requests),
// chunked bodies over the limit, header floods, very long request lines, NUL
// and CR/LF/control bytes in header values, percent-encoded '/ + # NUL' in the
// box id, and requests pipelined behind a waiting command. Each gets a clean
// 4xx or a close; nothing reaches MQTT or Redis (a '#' observer and MONITOR,
// checked against a valid command sent last); the gateway keeps serving; and
// no caller byte comes back in a response header or raw in the log.

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>

#include "faults_support.hpp"
#include "support/redis_monitor.hpp"

namespace boxgate::itest {
namespace {

using faults::RawConnection;

const std::string kFourteenBytes = R"({"method":"m"})";  // 14 bytes

// A request head for POST /v1/devices/<box>/commands with the given extra
// header lines (each ending in CRLF); the blank line is added.
std::string post_head(const std::string& box, const std::string& headers, const std::string& query = "timeout_ms=300") {
  return "POST /v1/devices/" + box + "/commands?" + query + " HTTP/1.1\r\nHost: gw\r\nContent-Type: application/json\r\n" +
         headers + "\r\n";
}
std::string post_with_length(const std::string& box, const std::string& headers = "") {
  return post_head(box, headers + "Content-Length: 14\r\n") + kFourteenBytes;
}

struct RawReply {
  std::string bytes;    // everything the gateway sent
  bool closed = false;  // it closed the connection

  int status() const {
    if (bytes.rfind("HTTP/1.", 0) != 0 || bytes.size() < 12) return -1;
    return std::atoi(bytes.substr(9, 3).c_str());
  }
  std::string head() const { return bytes.substr(0, bytes.find("\r\n\r\n")); }
  std::string body() const {
    auto end = bytes.find("\r\n\r\n");
    return end == std::string::npos ? "" : bytes.substr(end + 4);
  }
  std::string error_code() const {
    auto doc = nlohmann::json::parse(body(), nullptr, false);
    return doc.is_object() ? doc.value("error", "") : "";
  }
};

// True once `bytes` holds one whole response (head + Content-Length body).
bool complete_response(const std::string& bytes) {
  auto end = bytes.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string head = bytes.substr(0, end);
  std::transform(head.begin(), head.end(), head.begin(), [](unsigned char c) { return std::tolower(c); });
  auto at = head.find("\r\ncontent-length:");
  if (at == std::string::npos) return true;
  return bytes.size() >= end + 4 + std::stoul(head.substr(at + 17));
}

// Sends `request` on a new connection; reads until the gateway closes it or,
// unless `until_close`, until one whole response arrived (3 s at most).
RawReply exchange(int port, const std::string& request, bool until_close) {
  RawConnection conn(port);
  conn.send(request);
  RawReply reply;
  auto deadline = faults::Clock::now() + 3s;
  while (faults::Clock::now() < deadline) {
    if (conn.closed_by_peer(50ms)) {
      reply.closed = true;
      break;
    }
    if (!until_close && complete_response(conn.received())) break;
  }
  reply.bytes = conn.received();
  // For tests/docs/openapi_check.py: the first request line's method and path.
  std::string line = request.substr(0, request.find("\r\n"));
  auto sp1 = line.find(' ');
  auto sp2 = line.find(' ', sp1 == std::string::npos ? 0 : sp1 + 1);
  if (sp1 != std::string::npos && sp2 != std::string::npos) {
    test::record_http(line.substr(0, sp1), line.substr(sp1 + 1, sp2 - sp1 - 1), reply.status(), reply.error_code());
  }
  return reply;
}

// The response header names this gateway ever sends: no caller byte is
// copied into a header.
void expect_only_known_headers(const RawReply& reply) {
  std::string head = reply.head();
  std::size_t line = head.find("\r\n");
  while (line != std::string::npos) {
    std::size_t next = head.find("\r\n", line + 2);
    std::string field = head.substr(line + 2, next == std::string::npos ? std::string::npos : next - line - 2);
    std::string name = field.substr(0, field.find(':'));
    static const std::vector<std::string> known = {"Content-Type", "Content-Length", "Date", "Connection",
                                                   "X-Request-Id", "Retry-After", "Allow", "WWW-Authenticate"};
    EXPECT_NE(std::find(known.begin(), known.end(), name), known.end()) << "unexpected header: " << field;
    line = next;
  }
}

class HostileHttpTest : public StackTest {
 protected:
  HostileHttpTest() : StackTest("hostile") {}
  void SetUp() override {
    StackTest::SetUp();
    gw = stack->add_gateway({"--max-body-bytes", "1024", "--http-max-header-bytes", "4096"});
    stack->add_bridge();
    watcher = std::make_unique<MqttProbe>(stack->mqtt_port());
    watcher->subscribe("#", 1);
    device = std::make_unique<ProbeDevice>(stack->mqtt_port(), "dev/zz-sentinel/request/+", ProbeDevice::echo());
    monitor = std::make_unique<test::RedisMonitor>(stack->redis().port());
  }
  void TearDown() override {
    device.reset();
    watcher.reset();
    monitor.reset();
    // Nothing raw from a caller in the log: no control byte but the line ends.
    std::string log = stack->gateway().log();
    for (char c : log) {
      auto b = static_cast<unsigned char>(c);
      if ((b < 0x20 && c != '\n') || b >= 0x7f) {
        ADD_FAILURE() << "raw byte 0x" << std::hex << int(b) << " in the gateway log";
        break;
      }
    }
    StackTest::TearDown();
  }

  // A 4xx or a close, and the gateway still serves.
  void expect_refused(const std::string& label, const RawReply& r) {
    SCOPED_TRACE(label);
    int status = r.status();
    EXPECT_TRUE((status >= 400 && status < 500) || (status == -1 && r.closed)) << r.bytes.substr(0, 300);
    expect_only_known_headers(r);
    auto c = client(gw);
    EXPECT_EQ(get(*c, "/healthz").status, 200) << "the gateway stopped serving after: " << label;
  }

  // A valid command sent last: once the device has it and Redis has seen its
  // subscription, the observer and MONITOR have seen everything the hostile
  // requests before it caused -- which must be nothing but the valid commands
  // a test sent for the boxes in `allowed`.
  void expect_nothing_reached_mqtt_or_redis(const std::vector<std::string>& allowed = {}) {
    auto c = client(gw);
    HttpResult ok = post(*c, command_path("zz-sentinel", "timeout_ms=5000"), kFourteenBytes);
    ASSERT_EQ(ok.status, 200) << ok.body << ok.error << stack->logs();
    const std::string sentinel = "dev/zz-sentinel/";
    ASSERT_TRUE(monitor->wait_for("\"" + sentinel, 5s));
    ASSERT_TRUE(test::eventually([&] { return watcher->count() >= 2; }, 5s));
    auto expected = [&](const std::string& text, bool quoted) {
      std::vector<std::string> boxes = allowed;
      boxes.push_back("zz-sentinel");
      for (const auto& box : boxes) {
        std::string name = std::string(quoted ? "\"" : "") + "dev/" + box + "/";
        if (quoted ? text.find(name) != std::string::npos : text.rfind(name, 0) == 0) return true;
      }
      return false;
    };
    for (const auto& m : watcher->messages()) EXPECT_TRUE(expected(m.topic, false)) << m.topic;
    for (const char* command : {"subscribe", "get", "publish", "set"}) {
      for (const auto& line : monitor->commands(command)) EXPECT_TRUE(expected(line, true)) << line;
    }
  }

  int gw = 0;
  std::unique_ptr<MqttProbe> watcher;
  std::unique_ptr<ProbeDevice> device;
  std::unique_ptr<test::RedisMonitor> monitor;
};

// ---- framing ---------------------------------------------------------------

TEST_F(HostileHttpTest, ConflictingContentLengthAndTransferEncoding) {
  const std::string chunked = "e\r\n" + kFourteenBytes + "\r\n0\r\n\r\n";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"CL then TE", post_head("box-1", "Content-Length: 14\r\nTransfer-Encoding: chunked\r\n") + chunked},
      {"TE then CL", post_head("box-1", "Transfer-Encoding: chunked\r\nContent-Length: 3\r\n") + chunked},
      {"TE gzip, chunked", post_head("box-1", "Transfer-Encoding: gzip, chunked\r\n") + chunked},
      {"TE twice", post_head("box-1", "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n") + chunked},
      {"TE with a space before the colon", post_head("box-1", "Transfer-Encoding : chunked\r\nContent-Length: 14\r\n") +
                                               kFourteenBytes},
  };
  for (const auto& [label, request] : cases) {
    RawReply r = exchange(gw, request, true);
    expect_refused(label, r);
    EXPECT_EQ(r.status(), 400) << label << ": " << r.bytes.substr(0, 200);
    EXPECT_TRUE(r.closed) << label << ": the connection must not be read further";
  }
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(HostileHttpTest, RepeatedOrMalformedContentLength) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"two lengths", post_head("box-1", "Content-Length: 14\r\nContent-Length: 5\r\n") + kFourteenBytes},
      {"the same length twice", post_head("box-1", "Content-Length: 14\r\nContent-Length: 14\r\n") + kFourteenBytes},
      {"signed", post_head("box-1", "Content-Length: +14\r\n") + kFourteenBytes},
      {"hex", post_head("box-1", "Content-Length: 0xe\r\n") + kFourteenBytes},
      {"a list", post_head("box-1", "Content-Length: 14, 14\r\n") + kFourteenBytes},
      {"space before the colon", post_head("box-1", "Content-Length : 14\r\n") + kFourteenBytes},
  };
  for (const auto& [label, request] : cases) {
    RawReply r = exchange(gw, request, true);
    expect_refused(label, r);
    EXPECT_EQ(r.status(), 400) << label;
    EXPECT_TRUE(r.closed) << label;
  }
  // The smuggled request after a short Content-Length is never read.
  RawReply smuggle = exchange(
      gw, post_head("box-1", "Content-Length: 14\r\nContent-Length: 0\r\n") + kFourteenBytes + post_with_length("box-2"), true);
  EXPECT_EQ(smuggle.error_code(), "invalid_request") << smuggle.bytes;
  EXPECT_EQ(smuggle.bytes.find("HTTP/1.1", 1), std::string::npos) << "a second response: " << smuggle.bytes;
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(HostileHttpTest, ChunkedBodiesOverTheLimit) {
  auto chunked = [](const std::string& box, std::size_t size) {
    std::string body = R"({"pad":")" + std::string(size - 10, 'x') + "\"}";
    char hex[32];
    std::snprintf(hex, sizeof hex, "%zx", body.size());
    return post_head(box, "Transfer-Encoding: chunked\r\n") + hex + "\r\n" + body + "\r\n0\r\n\r\n";
  };
  // Within the limit: chunked is fine (here refused as timing out, never as framing).
  RawReply fits = exchange(gw, chunked("chunked-ok", 100), false);
  EXPECT_EQ(fits.status(), 504) << "read, published, timed out: " << fits.bytes.substr(0, 300);
  // Above max_body_bytes (1024): 413, the JSON one up to twice the limit
  // (plus 4 KiB), libevent's beyond.
  for (std::size_t size : {1500u, 8000u}) {
    RawReply r = exchange(gw, chunked("box-1", size), false);
    expect_refused("chunked " + std::to_string(size), r);
    EXPECT_EQ(r.status(), 413) << size << ": " << r.bytes.substr(0, 200);
  }
  // A chunk size no buffer could hold, and one that overflows 64 bits.
  for (const std::string& size : {std::string("7fffffffffffffff"), std::string("ffffffffffffffffffff")}) {
    RawReply r = exchange(gw, post_head("box-1", "Transfer-Encoding: chunked\r\n") + size + "\r\nab\r\n", true);
    expect_refused("chunk size " + size, r);
    EXPECT_TRUE(r.closed) << size;
  }
  expect_nothing_reached_mqtt_or_redis({"chunked-ok"});
}

// Chunked framing evhttp 2.1 reads leniently and RFC 9112 does not allow:
// each is 400 and closed, before a byte reaches a handler (old gateways
// published every one of these commands).
TEST_F(HostileHttpTest, ChunkedFramingOutsideRfc9112IsRefusedAndNothingIsPublished) {
  const std::string body = kFourteenBytes;  // 0xe bytes
  auto chunked = [](const std::string& box) { return post_head(box, "Transfer-Encoding: chunked\r\n"); };
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"size 0xe", chunked("frame-1") + "0xe\r\n" + body + "\r\n0\r\n\r\n"},
      {"size +e", chunked("frame-2") + "+e\r\n" + body + "\r\n0\r\n\r\n"},
      {"size 'e junk'", chunked("frame-3") + "e junk\r\n" + body + "\r\n0\r\n\r\n"},
      {"data without CRLF", chunked("frame-4") + "e\r\n" + body + "0\r\n\r\n"},
      {"a blank line before the size", chunked("frame-5") + "\r\ne\r\n" + body + "\r\n0\r\n\r\n"},
      {"last chunk -0", chunked("frame-6") + "e\r\n" + body + "\r\n-0\r\n\r\n"},
      {"chunked on HTTP/1.0", "POST /v1/devices/frame-7/commands?timeout_ms=300 HTTP/1.0\r\nHost: gw\r\n"
                              "Transfer-Encoding: chunked\r\n\r\ne\r\n" + body + "\r\n0\r\n\r\n"},
      {"a trailer field", chunked("frame-8") + "e\r\n" + body + "\r\n0\r\nX-Request-Id: t-1\r\n\r\n"},
      {"a chunk extension", chunked("frame-9") + "e;x=1\r\n" + body + "\r\n0\r\n\r\n"},
      {"a bare LF after the size", chunked("frame-10") + "e\n" + body + "\r\n0\r\n\r\n"},
  };
  for (const auto& [label, request] : cases) {
    RawReply r = exchange(gw, request, true);
    expect_refused(label, r);
    EXPECT_EQ(r.status(), 400) << label << ": " << r.bytes.substr(0, 200);
    EXPECT_EQ(r.error_code(), "invalid_request") << label;
    EXPECT_TRUE(r.closed) << label << ": the connection must not be read further";
  }
  // Strict chunked framing, cut into pieces, is read as ever.
  RawConnection conn(gw);
  const std::string good = chunked("frame-ok") + "4\r\n" + body.substr(0, 4) + "\r\na\r\n" + body.substr(4) + "\r\n0\r\n\r\n";
  for (std::size_t at = 0; at < good.size(); at += 5) ASSERT_TRUE(conn.send(good.substr(at, 5)));
  EXPECT_TRUE(test::eventually([&] { return complete_response(conn.received()) || conn.closed_by_peer(20ms); }, 3s));
  EXPECT_NE(conn.received().find(" 504 "), std::string::npos) << "read, published, timed out: " << conn.received();
  expect_nothing_reached_mqtt_or_redis({"frame-ok"});
}

// A request with bad framing pipelined behind good ones: the good ones are
// served and answered first, in order, then the 400, then the close.
TEST_F(HostileHttpTest, BadFramingPipelinedBehindGoodRequestsIsAnsweredInOrder) {
  RawConnection conn(gw);
  ASSERT_TRUE(conn.send(post_with_length("pipe-1", "X-Request-Id: pipe-1\r\n") +
                        post_head("pipe-2", "Transfer-Encoding: chunked\r\n") + "0x1\r\n{\r\n0\r\n\r\n" +
                        post_with_length("pipe-3", "X-Request-Id: never-3\r\n")));
  EXPECT_TRUE(test::eventually([&] { return conn.closed_by_peer(20ms); }, 5s, 0ms)) << conn.received();
  const std::string& bytes = conn.received();
  const auto first = bytes.find("X-Request-Id: pipe-1");
  const auto refused = bytes.find("invalid_request");
  ASSERT_NE(first, std::string::npos) << bytes;
  ASSERT_NE(refused, std::string::npos) << bytes;
  EXPECT_LT(first, refused);
  EXPECT_EQ(bytes.find("never-3"), std::string::npos) << bytes;
  expect_nothing_reached_mqtt_or_redis({"pipe-1"});
}

TEST_F(HostileHttpTest, HeaderFloods) {
  std::string many_small;  // within http_max_header_bytes (4096)
  for (int i = 0; i < 300; ++i) many_small.append(1, 'a').append(std::to_string(i)).append(":b\r\n");
  std::string too_many;
  for (int i = 0; i < 2000; ++i) too_many += "X-Flood-" + std::to_string(i) + ": v\r\n";
  RawReply small = exchange(gw, post_head("box-1", many_small + "X-Request-Id: bad id\r\nContent-Length: 14\r\n") + kFourteenBytes,
                            false);
  EXPECT_EQ(small.error_code(), "invalid_request_id") << "many small headers are read and judged: " << small.bytes;
  RawReply flood = exchange(gw, post_head("box-1", too_many + "Content-Length: 14\r\n") + kFourteenBytes, true);
  expect_refused("header flood", flood);
  EXPECT_TRUE(flood.closed);
  RawReply one_huge = exchange(gw, post_head("box-1", "X-Big: " + std::string(8000, 'v') + "\r\n") + kFourteenBytes, true);
  expect_refused("one huge header", one_huge);
  EXPECT_TRUE(one_huge.closed);
  // Singletons sent twice: parsers differ on which one wins.
  for (const std::string name : {"Authorization", "X-Request-Id", "Host"}) {
    RawReply twice = exchange(gw, post_with_length("box-1", name + ": a1\r\n" + name + ": a2\r\n"), true);
    expect_refused(name + " twice", twice);
    EXPECT_EQ(twice.error_code(), "invalid_request") << name;
  }
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(HostileHttpTest, VeryLongRequestLines) {
  RawReply long_box = exchange(gw, post_with_length(std::string(20000, 'b')), true);
  expect_refused("20 KB path", long_box);
  EXPECT_TRUE(long_box.closed);
  RawReply long_query =
      exchange(gw, post_head("box-1", "Content-Length: 14\r\n", "timeout_ms=1&" + std::string(9000, 'q')) + kFourteenBytes, true);
  expect_refused("9 KB query", long_query);
  // A request line that never ends is cut off once it passes the limit.
  RawConnection endless(gw);
  endless.send("POST /v1/devices/" + std::string(3000, 'a'));
  std::string more(2000, 'a');
  bool closed = test::eventually([&] { return !endless.send(more) || endless.closed_by_peer(10ms); }, 5s);
  EXPECT_TRUE(closed) << "an endless request line is cut off";
  expect_nothing_reached_mqtt_or_redis();
}

// ---- header values ---------------------------------------------------------

TEST_F(HostileHttpTest, NulBytesCloseTheConnectionUnanswered) {
  using namespace std::string_literals;
  const std::vector<std::pair<std::string, std::string>> cases = {
      // libevent would read the id as "abc" and publish it.
      {"NUL in a header value", post_with_length("box-1", "X-Request-Id: abc\0def\r\n"s)},
      // libevent would take this line for the end of the headers.
      {"NUL starting a header line", post_with_length("box-1", "\0X: y\r\n"s)},
      {"NUL in the request line", "POST /v1/devices/box-1\0/x/commands HTTP/1.1\r\nContent-Length: 14\r\n\r\n"s + kFourteenBytes},
      {"NUL in the body", post_head("box-1", "Content-Length: 14\r\n") + "{\"method\":\"\0\"}"s},
      // The valid first one may or may not be read before the NUL arrives.
      {"NUL in a pipelined request", post_with_length("pipe-ok", "X-Request-Id: ok-1\r\n") +
                                         post_with_length("box-2", "X-Request-Id: abc\0def\r\n"s)},
  };
  for (const auto& [label, request] : cases) {
    RawReply r = exchange(gw, request, true);
    expect_refused(label, r);
    EXPECT_TRUE(r.closed) << label;
    EXPECT_EQ(r.bytes.find("abc"), std::string::npos) << label << ": " << r.bytes;
  }
  expect_nothing_reached_mqtt_or_redis({"pipe-ok"});
}

TEST_F(HostileHttpTest, CrLfAndControlBytesInHeaderValues) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"bare CR", "X-Request-Id: abc\rX-Injected: yes\r\n"},
      {"CR then space", "X-Request-Id: abc\r X-Injected: yes\r\n"},
      {"ESC sequence", "User-Agent: \x1b[31mred\x1b[0m\r\n"},
      {"DEL", "User-Agent: a\x7f\r\n"},
      {"vertical tab in Authorization", "Authorization: Bearer a\x0b b\r\n"},
      {"control in a header name", "X-\x01Id: a\r\n"},
  };
  for (const auto& [label, headers] : cases) {
    RawReply r = exchange(gw, post_with_length("box-1", headers), true);
    expect_refused(label, r);
    EXPECT_EQ(r.status(), 400) << label << ": " << r.bytes.substr(0, 200);
    EXPECT_EQ(r.head().find("Injected"), std::string::npos) << r.head();
  }
  // A bare LF is no line end (RFC 9112 needs CRLF): a proxy may read the
  // "injected" line as part of the id.
  RawReply split = exchange(gw, post_with_length("split-1", "X-Request-Id: good-1\nX-Injected: yes\r\n"), true);
  expect_refused("LF-split value", split);
  EXPECT_EQ(split.status(), 400) << split.bytes.substr(0, 200);
  EXPECT_EQ(split.head().find("Injected"), std::string::npos) << split.head();
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(HostileHttpTest, CallerBytesNeverComeBackRaw) {
  // A query name of raw bytes used to make the error body's JSON encoder
  // throw (invalid UTF-8): a 500, and the URI raw in the log. A request
  // target is %x21-7E only: raw bytes there are refused with the framing.
  RawReply query = exchange(gw, post_head("box-1", "Content-Length: 14\r\n", "\xff\x1b[2J=1") + kFourteenBytes, false);
  EXPECT_EQ(query.error_code(), "invalid_request") << query.bytes;
  expect_only_known_headers(query);
  RawReply path = exchange(gw, post_with_length("a\x1b[31m\xfe"), false);
  EXPECT_EQ(path.error_code(), "invalid_request") << path.bytes;
  // Percent-encoded, they reach the query check, which quotes them as sent.
  RawReply encoded = exchange(gw, post_head("box-1", "Content-Length: 14\r\n", "%FF%1B[2J=1") + kFourteenBytes, false);
  EXPECT_EQ(encoded.error_code(), "invalid_query") << encoded.bytes;
  EXPECT_NE(encoded.body().find("Unknown query parameter '%FF%1B[2J'"), std::string::npos) << encoded.body();
  for (const RawReply* r : {&query, &path, &encoded}) {
    for (char c : r->bytes) {
      auto b = static_cast<unsigned char>(c);
      EXPECT_TRUE(b >= 0x20 || c == '\r' || c == '\n') << "raw 0x" << std::hex << int(b) << " in " << r->bytes;
    }
  }
  expect_nothing_reached_mqtt_or_redis();
}

// ---- the box id ------------------------------------------------------------

TEST_F(HostileHttpTest, PercentEncodedSeparatorsInTheBoxId) {
  const std::vector<std::string> boxes = {
      "box%2F1",   "box%2f1", "%2Fbox",  "box%2B1", "box%2b",    "box+1",   "box%231",  "box%00",  "box%001",
      "%00",       "box%2500", "box%252F", "box%", "box%zz",     "box%2",   "%2e%2e",   "..",      "box%20x",
      "box%0d%0aX-Injected:%20yes", "box%C3%A9", "box%E2%80%8B", "box%7F",
  };
  for (const auto& box : boxes) {
    RawReply r = exchange(gw, post_with_length(box), false);
    expect_refused(box, r);
    EXPECT_TRUE(r.status() == 400 || r.status() == 404) << box << ": " << r.bytes.substr(0, 200);
    if (r.status() == 400) {
      EXPECT_EQ(r.error_code(), "invalid_box_id") << box;
    }
    // An invalid id is never echoed, decoded or not.
    EXPECT_FALSE(nlohmann::json::parse(r.body(), nullptr, false).contains("box_id")) << box << ": " << r.body();
    EXPECT_EQ(r.head().find("Injected"), std::string::npos) << r.head();
  }
  // A raw '#' starts the fragment: the path no longer routes to commands
  // (it is /v1/devices/box, the GET-only presence endpoint: 405).
  RawReply fragment = exchange(gw, post_with_length("box#1"), false);
  EXPECT_TRUE(fragment.status() == 400 || fragment.status() == 404 || fragment.status() == 405)
      << fragment.bytes.substr(0, 200);
  expect_nothing_reached_mqtt_or_redis();
}

// ---- pipelining ------------------------------------------------------------

TEST_F(HostileHttpTest, RequestsPipelinedBehindAWaitingCommand) {
  // One write: a command that waits (no device answers box-a) and, behind
  // it, a valid one, a smuggling attempt and one that must never be read.
  RawConnection conn(gw);
  auto started = faults::Clock::now();
  ASSERT_TRUE(conn.send(post_head("box-a", "X-Request-Id: wait-1\r\nContent-Length: 14\r\n", "timeout_ms=2000") + kFourteenBytes +
                        post_head("box-b", "X-Request-Id: next-1\r\nContent-Length: 14\r\n", "timeout_ms=100") + kFourteenBytes +
                        post_head("box-c", "Content-Length: 14\r\nContent-Length: 0\r\n") + kFourteenBytes +
                        post_with_length("box-d", "X-Request-Id: never-1\r\n")));
  // While box-a waits, other callers are served: /healthz answers while
  // nothing has come back on the pipelined connection yet.
  HttpResult meanwhile = get(gw, "/healthz");
  EXPECT_EQ(meanwhile.status, 200);
  EXPECT_FALSE(conn.closed_by_peer(0ms));
  EXPECT_TRUE(conn.received().empty()) << "box-a answered before /healthz: " << conn.received();

  bool closed = test::eventually([&] { return conn.closed_by_peer(20ms); }, 5s, 0ms);
  EXPECT_TRUE(closed) << conn.received();
  const std::string& bytes = conn.received();
  // Answers in request order: box-a (504 after its 2 s), box-b, then the
  // 400 that closes the connection; box-d is never read.
  auto a = bytes.find("X-Request-Id: wait-1");
  auto b = bytes.find("X-Request-Id: next-1");
  auto c = bytes.find("invalid_request");
  ASSERT_NE(a, std::string::npos) << bytes;
  ASSERT_NE(b, std::string::npos) << bytes;
  ASSERT_NE(c, std::string::npos) << bytes;
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(bytes.find("never-1"), std::string::npos);
  EXPECT_GE(faults::ms_since(started), 2000);

  // Only the two valid commands were published, in order.
  ASSERT_TRUE(watcher->wait_for(2, 5s));
  auto seen = watcher->messages();
  EXPECT_EQ(seen[0].topic, "dev/box-a/request/wait-1");
  EXPECT_EQ(seen[1].topic, "dev/box-b/request/next-1");
  watcher->clear();
  // MONITOR: their channels, nothing for box-c or box-d.
  for (const auto& line : monitor->commands("subscribe")) {
    EXPECT_EQ(line.find("dev/box-c/"), std::string::npos) << line;
    EXPECT_EQ(line.find("dev/box-d/"), std::string::npos) << line;
  }
  HttpResult after = get(gw, "/healthz");
  EXPECT_EQ(after.status, 200);
}

}  // namespace
}  // namespace boxgate::itest
