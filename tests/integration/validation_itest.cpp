// Every class of invalid input gets its status and error code, and nothing of
// it reaches MQTT or Redis: a probe subscribed to '#' sees nothing, Redis
// MONITOR shows no SUBSCRIBE/GET/PUBLISH, PUBSUB CHANNELS stays empty.

#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "itest_env.hpp"
#include "support/redis_monitor.hpp"

namespace boxgate::itest {
namespace {

struct Case {
  std::string label;
  std::string path;
  httplib::Headers headers;
  std::string body;
  int status;
  std::string error;  // "" : do not check the error body
};


class ValidationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    stack = std::make_unique<Stack>("val");
    gw = stack->add_gateway({"--max-body-bytes", "1024"});
    watcher = std::make_unique<MqttProbe>(stack->mqtt_port());
    watcher->subscribe("#", 1);
    monitor = std::make_unique<test::RedisMonitor>(stack->redis().port());
    poller = std::thread([this] { poll_channels(); });
  }

  void TearDown() override {
    stop_polling();
    watcher.reset();
    if (stack) stack->stop_daemons_and_check();
    stack.reset();
  }

  // PUBSUB CHANNELS dev/*/response/* (reply channels) while the test runs: anything but the sentinel's
  // channel is recorded.
  void poll_channels() {
    try {
      test::RedisClient redis(stack->redis().port());
      while (!stop_) {
        for (auto& channel : redis.pubsub_channels("dev/*/response/*")) {
          if (channel != sentinel_channel()) {
            std::lock_guard lock(mu);
            seen_channels.push_back(channel);
          }
        }
        std::this_thread::sleep_for(2ms);  // sampling for the whole test: proves no channel ever appears
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(mu);
      seen_channels.push_back(std::string("poller failed: ") + e.what());
    }
  }
  void stop_polling() {
    stop_ = true;
    if (poller.joinable()) poller.join();
  }

  static std::string sentinel_box() { return std::string(128, 'b'); }
  static std::string sentinel_id() { return std::string(128, 'r'); }
  static std::string sentinel_channel() { return "dev/" + sentinel_box() + "/response/" + sentinel_id(); }

  void run(const std::vector<Case>& cases) {
    auto c = client(gw);
    std::set<std::string> generated;  // each request without X-Request-Id gets a new one
    for (const auto& tc : cases) {
      SCOPED_TRACE(tc.label);
      HttpResult r = post(*c, tc.path, tc.body, tc.headers);
      ASSERT_EQ(r.status, tc.status) << tc.path << " -> " << r.body << r.error;
      if (tc.error.empty()) continue;
      auto body = r.json();
      ASSERT_TRUE(body.is_object()) << r.body;
      EXPECT_EQ(body.value("error", ""), tc.error) << r.body;
      EXPECT_TRUE(body.contains("message") && body["message"].is_string() && !body["message"].get<std::string>().empty())
          << r.body;
      EXPECT_EQ(r.header("Content-Type").rfind("application/json", 0), 0u) << r.header("Content-Type");
      if (tc.error == "invalid_request_id") {
        // The given id is not an id: it is never echoed, and no other id is
        // made up for a request refused before it has one.
        EXPECT_FALSE(body.contains("request_id")) << r.body;
        EXPECT_FALSE(r.has_header("X-Request-Id")) << r.header("X-Request-Id");
        EXPECT_FALSE(body.contains("box_id")) << r.body;
        continue;
      }
      // Every other error has a request id: in the body and the header.
      ASSERT_TRUE(body.contains("request_id")) << r.body;
      EXPECT_EQ(body["request_id"], r.header("X-Request-Id")) << r.body;
      auto given = tc.headers.find("X-Request-Id");
      if (given != tc.headers.end()) {
        EXPECT_EQ(r.header("X-Request-Id"), given->second);
      } else {
        EXPECT_TRUE(is_uuid_v4_lowercase(r.header("X-Request-Id"))) << r.header("X-Request-Id");
        EXPECT_TRUE(generated.insert(r.header("X-Request-Id")).second) << "an id generated twice";
      }
      if (tc.error == "invalid_box_id") {
        EXPECT_FALSE(body.contains("box_id")) << "an invalid box id is never echoed: " << r.body;
      } else {
        EXPECT_EQ(body.value("box_id", ""), "box-1") << r.body;
      }
    }
  }

  // A valid command at the boundaries (128-char box and request id, body of
  // exactly max_body_bytes) sent last on the same gateway: its publish comes
  // after any publish an invalid request could have caused, so once the probe
  // has it, the probe has everything.
  void expect_nothing_reached_mqtt_or_redis() {
    std::string body = R"({"pad":")";
    body += std::string(1024 - body.size() - 2, 'x') + "\"}";
    ASSERT_EQ(body.size(), 1024u);
    auto c = client(gw);
    HttpResult r = post(*c, command_path(sentinel_box(), "timeout_ms=200"), body, {{"X-Request-Id", sentinel_id()}});
    EXPECT_EQ(r.status, 504) << "the boundary values are valid: " << r.body;
    ASSERT_TRUE(watcher->wait_for(1, 2s));
    auto messages = watcher->messages();
    for (const auto& m : messages) {
      EXPECT_EQ(m.topic, "dev/" + sentinel_box() + "/request/" + sentinel_id()) << "published for an invalid request";
    }
    EXPECT_EQ(messages.size(), 1u);
    stop_polling();
    {
      std::lock_guard lock(mu);
      EXPECT_TRUE(seen_channels.empty()) << "subscribed for an invalid request: " << seen_channels.front();
    }
    std::size_t subscribes = 0;
    for (const char* cmd : {"subscribe", "psubscribe", "get", "set", "publish"}) {
      for (const auto& line : monitor->commands(cmd)) {
        // The command queue's own housekeeping (its wake channel, the
        // sweep's lease) runs whatever the requests are.
        if (line.find("dev/_queue/") != std::string::npos) continue;
        // The sentinel's own traffic: its record and its reply channel.
        bool sentinel = line.find("dev/" + sentinel_box() + "/") != std::string::npos &&
                        line.find(sentinel_id()) != std::string::npos;
        EXPECT_TRUE(sentinel) << "Redis saw for an invalid request: " << line;
        if (std::string(cmd) == "subscribe") ++subscribes;
      }
    }
    EXPECT_EQ(subscribes, 1u);
  }

  std::unique_ptr<Stack> stack;
  int gw = 0;
  std::unique_ptr<MqttProbe> watcher;
  std::unique_ptr<test::RedisMonitor> monitor;
  std::thread poller;
  std::atomic<bool> stop_{false};
  std::mutex mu;
  std::vector<std::string> seen_channels;
};

TEST_F(ValidationTest, InvalidBoxIdsAre400) {
  std::vector<std::string> boxes{"%2B", "a%2Bb", "%23", "a%23", "%2F", "a%2Fb", "%2A", "a%3F", "%5B", "a%5D",
                                 "a%20b", "%20", "a%00b", "%00", "a%0Ab", "-abc", ".abc", "_abc", "%C3%A9",
                                 "+", "a+b", "*", std::string(129, 'a')};
  std::vector<Case> cases;
  for (const auto& box : boxes) {
    cases.push_back({"box " + box.substr(0, 20), command_path(box), {}, kPing, 400, "invalid_box_id"});
  }
  // With a caller id too: the id is echoed, the box is not.
  cases.push_back({"box %2F with id", command_path("a%2Fb"), {{"X-Request-Id", "given-1"}}, kPing, 400,
                   "invalid_box_id"});
  run(cases);
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(ValidationTest, InvalidRequestIdsAre400) {
  std::vector<std::string> ids{"", "a b", "a\tb", std::string(129, 'r'), "a/b", "+", "#", "a*", "-x", "x?", "x[1]",
                               "\xC3\xA9"};
  std::vector<Case> cases;
  for (const auto& id : ids) {
    cases.push_back({"id '" + id.substr(0, 20) + "'", command_path("box-1"), {{"X-Request-Id", id}}, kPing, 400,
                     "invalid_request_id"});
  }
  run(cases);
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(ValidationTest, BodiesThatAreNotAJsonObjectAre400) {
  std::vector<std::string> bodies{"[]", "[{}]", "1", "\"s\"", "null", "true", "", " ", "{\"a\":", "{\"a\":1,}",
                                  "{'a':1}", "{}x", "{}{}", "{\"a\":\"\xff\"}"};
  std::vector<Case> cases;
  for (const auto& body : bodies) {
    cases.push_back({"body '" + body + "'", command_path("box-1"), {}, body, 400, "invalid_body"});
  }
  run(cases);
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(ValidationTest, BodyOverMaxBodyBytesIs413) {
  auto body_of = [](std::size_t size) {
    std::string body = R"({"pad":")";
    return body + std::string(size - body.size() - 2, 'x') + "\"}";
  };
  run({{"1025 bytes", command_path("box-1"), {}, body_of(1025), 413, "body_too_large"},
       {"2048 bytes", command_path("box-1"), {{"X-Request-Id", "big-1"}}, body_of(2048), 413, "body_too_large"},
       {"not JSON, 1500 bytes", command_path("box-1"), {}, std::string(1500, '['), 413, "body_too_large"}});
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(ValidationTest, HugeBodyRefusedBeforeReadingIs413) {
  // Far beyond the limit (over 2 x max_body_bytes + 4 KiB) libevent 2.1 refuses
  // the request from its Content-Length, before any handler runs, with its own
  // HTML 413: the status is right but the contract's JSON error body cannot be
  // given without reading the whole body first (a known deviation: libevent
  // answers before boxgate sees the request). Bodies up to that size get the
  // JSON body_too_large above.
  std::string body = R"({"pad":")" + std::string(100000, 'x') + "\"}";
  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1"), body);
  EXPECT_EQ(r.status, 413) << r.body << r.error;
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(ValidationTest, InvalidTimeoutsAre400) {
  std::vector<std::string> values{"0", "-1", "abc", "1.5", "60001", "", "1e3", "%2B5", "%205", "0x10", "99999999999",
                                  "5ms"};
  std::vector<Case> cases;
  for (const auto& v : values) {
    cases.push_back({"timeout_ms=" + v, command_path("box-1", "timeout_ms=" + v), {}, kPing, 400, "invalid_timeout"});
  }
  cases.push_back({"timeout with id", command_path("box-1", "timeout_ms=0"), {{"X-Request-Id", "t-1"}}, kPing, 400,
                   "invalid_timeout"});
  run(cases);
  expect_nothing_reached_mqtt_or_redis();
}

TEST_F(ValidationTest, PathsThatDoNotRouteAre404) {
  run({{"extra segment", "/v1/devices/a/b/commands", {}, kPing, 404, ""},
       {"trailing segments", "/v1/devices/box-1/commands/x/y", {}, kPing, 404, ""},
       // These route, to GET endpoints: a command's status, a device's presence.
       {"POST on a status", "/v1/devices/box-1/commands/x", {}, kPing, 405, ""},
       {"wrong suffix", "/v1/devices/box-1/command", {}, kPing, 404, ""},
       {"POST on a device", "/v1/devices/box-1", {}, kPing, 405, ""},
       {"no box", "/v1/devices/", {}, kPing, 404, ""},
       {"wrong version", "/v2/devices/box-1/commands", {}, kPing, 404, ""},
       {"root", "/", {}, kPing, 404, ""}});
  auto c = client(gw);
  auto r = c->Delete(command_path("box-1"));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405) << "DELETE on the command route: " << r->body;
  EXPECT_EQ(r->get_header_value("Allow"), "POST, GET");
  expect_nothing_reached_mqtt_or_redis();
}

}  // namespace
}  // namespace boxgate::itest
