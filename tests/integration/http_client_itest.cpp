// http::Client (libcurl's multi-socket interface on the EventLoop) against
// real receivers: cpp-httplib servers on 127.0.0.1, each on its own thread,
// https with certificates made by openssl at test time. The client's loop
// runs on the test thread until the callbacks came (bounded).

#include <event2/event.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <httplib.h>

#include "boxgate/http/client.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "support/http_receiver.hpp"
#include "support/net.hpp"
#include "support/tempdir.hpp"
#include "support/test_pki.hpp"

namespace {

using namespace std::chrono_literals;
using boxgate::EventLoop;
using boxgate::Timer;
using boxgate::http::Client;
using boxgate::http::ClientSettings;
using boxgate::http::kMaxResponseBody;
using boxgate::http::Request;
using boxgate::http::Response;
using boxgate::test::CertFiles;
using boxgate::test::make_cert;
using boxgate::test::Receiver;
using boxgate::test::Seen;
using Clock = std::chrono::steady_clock;

// The certificates, made once per test process (each test runs in its own).
struct Certs {
  boxgate::test::TempDir dir{"http-client"};
  CertFiles ca = make_cert(dir, "ca", "/CN=boxgate test CA");
  // For 127.0.0.1 and localhost, signed by ca.
  CertFiles server = make_cert(dir, "server", "/CN=127.0.0.1", &ca,
                               "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  // For 127.0.0.1, signed by a CA the client does not know.
  CertFiles other_ca = make_cert(dir, "other-ca", "/CN=boxgate unknown CA");
  CertFiles stranger = make_cert(dir, "stranger", "/CN=127.0.0.1", &other_ca,
                                 "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n");
  // Signed by ca, but for another name only.
  CertFiles misnamed = make_cert(dir, "misnamed", "/CN=elsewhere.test", &ca,
                                 "subjectAltName=DNS:elsewhere.test\nextendedKeyUsage=serverAuth\n");
};

const Certs& certs() {
  static Certs made;
  return made;
}

// Runs the loop on this thread until done() holds or `limit` passed (a
// timer checks every 2 ms); returns done().
bool run_until(EventLoop& loop, const std::function<bool()>& done, std::chrono::milliseconds limit = 20s) {
  const auto deadline = Clock::now() + limit;
  Timer check(loop, [&] {
    if (done() || Clock::now() >= deadline) loop.stop();
  });
  check.start(2ms, true);
  loop.run();
  return done();
}

// One post(): how often its Done ran, and with what.
struct Outcome {
  int calls = 0;
  Response response;
  Clock::time_point at;
};

void post(Client& client, Request request, Outcome& out) {
  client.post(std::move(request), [&out](Response response) {
    ++out.calls;
    out.response = std::move(response);
    out.at = Clock::now();
  });
}

Request to(std::string url, std::string body = "{}") {
  Request request;
  request.url = std::move(url);
  request.body = std::move(body);
  request.timeout = 10s;
  return request;
}

std::string header(const Seen& seen, const std::string& name) {
  auto it = seen.headers.find(name);
  return it == seen.headers.end() ? "<absent>" : it->second;
}

class HttpClientTest : public ::testing::Test {
 protected:
  ClientSettings trusting_test_ca() {
    ClientSettings settings;
    settings.ca_file = certs().ca.cert;
    return settings;
  }
  // Posts one request and runs the loop until its Done ran.
  Outcome post_and_wait(Client& client, Request request) {
    Outcome out;
    post(client, std::move(request), out);
    EXPECT_EQ(out.calls, 0) << "Done ran inside post()";
    EXPECT_TRUE(run_until(loop_, [&] { return out.calls > 0; }));
    EXPECT_EQ(out.calls, 1);
    return out;
  }
  // Posts to `receiver`'s "/hook", which TLS must refuse: status 0, a
  // certificate error, the handler never ran. Returns the error.
  std::string refused_in_handshake(Client& client, const Receiver& receiver) {
    Outcome out = post_and_wait(client, to(receiver.url("/hook")));
    EXPECT_EQ(out.response.status, 0);
    EXPECT_NE(out.response.error.find("certificate"), std::string::npos) << out.response.error;
    EXPECT_EQ(receiver.handled(), 0u);
    return out.response.error;
  }

  EventLoop loop_;
};

// 1. The signed-webhook case: https with the test CA; the receiver sees
//    exactly what was sent.
TEST_F(HttpClientTest, HttpsPostArrivesExactly) {
  Receiver receiver(&certs().server);
  receiver.on("/hooks/box-1", [](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(R"({"accepted":true})", "application/json");
  });
  receiver.start();
  Client client(loop_, trusting_test_ca());

  // Over 1 KiB: curl would otherwise send "Expect: 100-continue" and wait.
  const std::string body = R"({"event":"box.online","box":"box-1","pad":")" + std::string(2000, 'x') + "\"}";
  Request request = to(receiver.url("/hooks/box-1"), body);
  request.headers = {{"Content-Type", "application/json"},
                     {"X-Boxgate-Signature", "sha256=0123456789abcdef"},
                     {"X-Boxgate-Delivery", "d-42"}};
  Outcome out = post_and_wait(client, std::move(request));

  EXPECT_EQ(out.response.status, 200) << out.response.error;
  EXPECT_EQ(out.response.error, "");
  EXPECT_EQ(out.response.body, R"({"accepted":true})");
  EXPECT_FALSE(out.response.body_truncated);
  ASSERT_EQ(receiver.handled(), 1u);
  const Seen seen = receiver.seen()[0];
  EXPECT_EQ(seen.method, "POST");
  EXPECT_EQ(seen.path, "/hooks/box-1");
  EXPECT_EQ(seen.body, body);
  EXPECT_EQ(header(seen, "Content-Type"), "application/json");
  EXPECT_EQ(header(seen, "X-Boxgate-Signature"), "sha256=0123456789abcdef");
  EXPECT_EQ(header(seen, "X-Boxgate-Delivery"), "d-42");
  EXPECT_EQ(header(seen, "User-Agent"), "boxgate");
  EXPECT_EQ(header(seen, "Content-Length"), std::to_string(body.size()));
  EXPECT_EQ(header(seen, "Expect"), "<absent>");
  EXPECT_EQ(client.in_flight(), 0u);
}

// 2. A certificate from a CA the client does not trust: refused before a
//    byte of the request is sent.
TEST_F(HttpClientTest, UnknownCaIsRefused) {
  Receiver receiver(&certs().stranger);
  receiver.on("/hook");
  receiver.start();
  Client client(loop_, trusting_test_ca());
  refused_in_handshake(client, receiver);

  // The per-request CA overrides the client's: trusting the other CA works.
  Request trusting = to(receiver.url("/hook"));
  trusting.ca_file = certs().other_ca.cert;
  Outcome ok = post_and_wait(client, std::move(trusting));
  EXPECT_EQ(ok.response.status, 200) << ok.response.error;
  EXPECT_EQ(receiver.handled(), 1u);
}

// 3. The trusted CA signed it, but for another name: refused.
TEST_F(HttpClientTest, HostNameMismatchIsRefused) {
  Receiver receiver(&certs().misnamed);
  receiver.on("/hook");
  receiver.start();
  Client client(loop_, trusting_test_ca());
  const std::string error = refused_in_handshake(client, receiver);
  EXPECT_NE(error.find("127.0.0.1"), std::string::npos) << error;
}

// 4. The receiver's status is the answer, whatever it is.
TEST_F(HttpClientTest, ServerStatusesAreReturned) {
  Receiver receiver(&certs().server);
  receiver.on("/fail", [](const httplib::Request&, httplib::Response& res) {
    res.status = 500;
    res.set_content(R"({"error":"internal"})", "application/json");
  });
  receiver.on("/empty", [](const httplib::Request&, httplib::Response& res) { res.status = 204; });
  receiver.start();
  Client client(loop_, trusting_test_ca());

  Outcome failed = post_and_wait(client, to(receiver.url("/fail")));
  EXPECT_EQ(failed.response.status, 500);
  EXPECT_EQ(failed.response.error, "");
  EXPECT_EQ(failed.response.body, R"({"error":"internal"})");
  Outcome empty = post_and_wait(client, to(receiver.url("/empty")));
  EXPECT_EQ(empty.response.status, 204);
  EXPECT_EQ(empty.response.body, "");
  EXPECT_EQ(receiver.handled(), 2u);
}

// 5. A receiver that answers too late: the timeout ends the exchange, on time.
TEST_F(HttpClientTest, SlowServerTimesOut) {
  Receiver receiver(&certs().server);
  receiver.on("/slow", [&receiver](const httplib::Request&, httplib::Response& res) {
    receiver.hold();  // until the test ends
    res.status = 200;
  });
  receiver.start();
  Client client(loop_, trusting_test_ca());

  Request request = to(receiver.url("/slow"));
  request.timeout = 300ms;
  const auto sent = Clock::now();
  Outcome out = post_and_wait(client, std::move(request));
  const auto waited = out.at - sent;
  EXPECT_EQ(out.response.status, 0);
  EXPECT_NE(out.response.error.find("Timeout"), std::string::npos) << out.response.error;
  EXPECT_EQ(receiver.handled(), 1u);  // it got there, the answer did not come back
  // libevent's coarse clock may fire up to kTimerSlack early (curl then waits again).
  EXPECT_GE(waited, 300ms - boxgate::kTimerSlack);
  EXPECT_LT(waited, 300ms + 700ms);
  EXPECT_GE(out.response.elapsed, 300ms - boxgate::kTimerSlack);
  EXPECT_LT(out.response.elapsed, 300ms + 700ms);
}

// 6. Nobody listens.
TEST_F(HttpClientTest, ConnectionRefused) {
  Client client(loop_, trusting_test_ca());
  const int port = boxgate::test::free_port();
  Outcome out = post_and_wait(client, to("http://127.0.0.1:" + std::to_string(port) + "/hook"));
  EXPECT_EQ(out.response.status, 0);
  EXPECT_NE(out.response.error.find("connect"), std::string::npos) << out.response.error;
  EXPECT_LT(out.response.elapsed, 5s);
}

// 7. Plain http works (and a JSON content type is the default); other
//    schemes fail without a connection; redirects are answers, not followed.
TEST_F(HttpClientTest, PlainHttpOnlyHttpSchemesNoRedirects) {
  Receiver receiver;
  receiver.on("/hook");
  receiver.on("/moved", [&receiver](const httplib::Request&, httplib::Response& res) {
    res.set_redirect(receiver.url("/hook"), 302);
  });
  receiver.start();
  Client client(loop_, trusting_test_ca());

  Outcome plain = post_and_wait(client, to(receiver.url("/hook"), R"({"n":1})"));
  EXPECT_EQ(plain.response.status, 200) << plain.response.error;
  EXPECT_EQ(plain.response.body, "ok");
  ASSERT_EQ(receiver.handled(), 1u);
  EXPECT_EQ(header(receiver.seen()[0], "Content-Type"), "application/json");
  EXPECT_EQ(receiver.seen()[0].body, R"({"n":1})");

  Outcome file = post_and_wait(client, to("file:///etc/passwd"));
  EXPECT_EQ(file.response.status, 0);
  EXPECT_NE(file.response.error.find("Unsupported protocol"), std::string::npos) << file.response.error;
  EXPECT_EQ(file.response.body, "");

  boxgate::test::SilentListener ftp_server;  // a connection would wait in its backlog
  Outcome ftp = post_and_wait(client, to("ftp://127.0.0.1:" + std::to_string(ftp_server.port()) + "/upload"));
  EXPECT_EQ(ftp.response.status, 0);
  EXPECT_NE(ftp.response.error.find("Unsupported protocol"), std::string::npos) << ftp.response.error;
  EXPECT_FALSE(ftp_server.pending_connection());

  Outcome moved = post_and_wait(client, to(receiver.url("/moved")));
  EXPECT_EQ(moved.response.status, 302) << moved.response.error;
  EXPECT_EQ(receiver.handled(), 2u);  // /moved, not /hook again
  EXPECT_EQ(receiver.seen().back().path, "/moved");
}

// A header that would smuggle a second header (or request) is refused from
// the loop, like any request that cannot start; nothing reaches the receiver.
TEST_F(HttpClientTest, HeaderInjectionIsRefused) {
  Receiver receiver;
  receiver.on("/hook");
  receiver.start();
  Client client(loop_, trusting_test_ca());

  Request request = to(receiver.url("/hook"));
  request.headers = {{"X-Note", "a\r\nX-Injected: yes"}};
  Outcome out = post_and_wait(client, std::move(request));
  EXPECT_EQ(out.response.status, 0);
  EXPECT_NE(out.response.error.find("invalid header"), std::string::npos) << out.response.error;

  Request zero = to(receiver.url("/hook"));
  zero.timeout = 0ms;
  Outcome no_timeout = post_and_wait(client, std::move(zero));
  EXPECT_EQ(no_timeout.response.status, 0);
  EXPECT_EQ(receiver.handled(), 0u);
  EXPECT_EQ(client.in_flight(), 0u);
}

// 8. Many at once over a few connections: each Done once, with its own answer.
TEST_F(HttpClientTest, TwoHundredInFlight) {
  Receiver receiver(&certs().server);
  receiver.on("/echo", [](const httplib::Request& req, httplib::Response& res) {
    res.status = 200;
    res.set_content(req.body, "application/json");
  });
  receiver.start();
  ClientSettings settings = trusting_test_ca();
  settings.max_connections = 4;
  Client client(loop_, settings);

  constexpr int kRequests = 200;
  std::vector<Outcome> outcomes(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    post(client, to(receiver.url("/echo"), R"({"i":)" + std::to_string(i) + "}"), outcomes[i]);
  }
  EXPECT_EQ(client.in_flight(), static_cast<std::size_t>(kRequests));
  auto all_done = [&] {
    for (const auto& o : outcomes) {
      if (o.calls == 0) return false;
    }
    return true;
  };
  EXPECT_TRUE(run_until(loop_, all_done, 60s));
  for (int i = 0; i < kRequests; ++i) {
    EXPECT_EQ(outcomes[i].calls, 1) << i;
    EXPECT_EQ(outcomes[i].response.status, 200) << i << ": " << outcomes[i].response.error;
    EXPECT_EQ(outcomes[i].response.body, R"({"i":)" + std::to_string(i) + "}") << i;
  }
  EXPECT_EQ(client.in_flight(), 0u);
  EXPECT_EQ(receiver.handled(), static_cast<std::size_t>(kRequests));
  std::set<int> connections;
  for (const auto& seen : receiver.seen()) connections.insert(seen.remote_port);
  EXPECT_LE(connections.size(), 4u);
}

// 9. A body over the cap: the first kMaxResponseBody bytes are kept, the rest
//    read and dropped.
TEST_F(HttpClientTest, LargeResponseBodyIsCapped) {
  std::string big(1 << 20, '\0');
  for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
  Receiver receiver(&certs().server);
  receiver.on("/big", [&big](const httplib::Request&, httplib::Response& res) {
    res.status = 200;
    res.set_content(big, "text/plain");
  });
  receiver.start();
  Client client(loop_, trusting_test_ca());

  Outcome out = post_and_wait(client, to(receiver.url("/big")));
  EXPECT_EQ(out.response.status, 200) << out.response.error;
  EXPECT_TRUE(out.response.body_truncated);
  EXPECT_EQ(out.response.body.size(), kMaxResponseBody);
  EXPECT_EQ(out.response.body, big.substr(0, kMaxResponseBody));
  EXPECT_LE(out.response.body.capacity(), 2 * kMaxResponseBody);
}

// 10. The Client goes while requests wait for their answers: none of their
//     Done functions runs, then or later, and each is released; no event is
//     left on the loop.
TEST_F(HttpClientTest, DestroyedWithRequestsInFlight) {
  Receiver receiver(&certs().server);
  receiver.on("/held", [&receiver](const httplib::Request&, httplib::Response& res) {
    receiver.hold();  // until the test ends
    res.status = 200;
  });
  receiver.start();
  const int events_before = event_base_get_num_events(loop_.base(), EVENT_BASE_COUNT_ADDED);

  auto calls = std::make_shared<int>(0);
  auto client = std::make_unique<Client>(loop_, trusting_test_ca());
  for (int i = 0; i < 20; ++i) {
    client->post(to(receiver.url("/held")), [calls](Response) { ++*calls; });
  }
  EXPECT_EQ(calls.use_count(), 21);
  // Some are at the receiver (its thread pool holds a few), the rest sent or connecting.
  EXPECT_TRUE(run_until(loop_, [&] { return receiver.handled() >= 4; }));
  EXPECT_EQ(client->in_flight(), 20u);
  client.reset();

  EXPECT_EQ(*calls, 0);
  EXPECT_EQ(calls.use_count(), 1);  // every Done destroyed
  EXPECT_EQ(event_base_get_num_events(loop_.base(), EVENT_BASE_COUNT_ADDED | EVENT_BASE_COUNT_ACTIVE),
            events_before);
  // Give a stray callback a chance to show: run the loop a little (bounded).
  Timer end(loop_, [this] { loop_.stop(); });
  end.start(200ms);
  loop_.run();
  EXPECT_EQ(*calls, 0);
}

// A Done may post again (a retry, the next delivery): that post() starts
// from the loop like any other.
TEST_F(HttpClientTest, DoneMayPostAgain) {
  Receiver receiver;
  receiver.on("/hook");
  receiver.start();
  Client client(loop_, trusting_test_ca());
  std::vector<long> statuses;
  std::function<void(Response)> next = [&](Response response) {
    statuses.push_back(response.status);
    if (statuses.size() < 3) client.post(to(receiver.url("/hook")), next);
  };
  client.post(to(receiver.url("/hook")), next);
  EXPECT_TRUE(run_until(loop_, [&] { return statuses.size() == 3; }));
  EXPECT_EQ(statuses, (std::vector<long>{200, 200, 200}));
  EXPECT_EQ(receiver.handled(), 3u);
  EXPECT_EQ(client.in_flight(), 0u);
}

// A Done may destroy the Client; the other requests are dropped with it.
TEST_F(HttpClientTest, DoneMayDestroyTheClient) {
  Receiver receiver;
  receiver.on("/hook");
  receiver.start();
  auto client = std::make_unique<Client>(loop_, trusting_test_ca());
  int calls = 0;
  for (int i = 0; i < 5; ++i) {
    client->post(to(receiver.url("/hook")), [&](Response response) {
      ++calls;
      EXPECT_EQ(response.status, 200) << response.error;
      client.reset();
    });
  }
  EXPECT_TRUE(run_until(loop_, [&] { return calls > 0; }));
  Timer end(loop_, [this] { loop_.stop(); });
  end.start(200ms);  // a stray callback would show within this (bounded)
  loop_.run();
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(client, nullptr);
}

}  // namespace
