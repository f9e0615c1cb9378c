// Deep JSON on real processes: JSON nested far deeper than any call
// stack, with and without a top-level "id", never crashes a daemon. The
// gateway refuses such bodies (400 invalid_body, nothing published) and keeps
// serving; the bridge forwards a deep reply whose top-level id is valid,
// drops and counts the others (and one with two ids), and keeps forwarding;
// devsim answers bad_json.

#include <gtest/gtest.h>

#include <map>

#include "boxgate/stored_reply.hpp"
#include "itest_env.hpp"
#include "support/records.hpp"

namespace boxgate::itest {
namespace {

constexpr std::size_t kBodyLimit = 256 * 1024;         // max_body_bytes default
constexpr std::size_t kReplyLimit = 16 * 1024 * 1024;  // max_reply_bytes default

std::string nested(std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

// `head` + as deep an array as fits + "}", padded with spaces to `size` bytes.
std::string deep_object_of_size(const std::string& head, std::size_t size) {
  std::size_t levels = (size - head.size() - 1) / 2;
  std::string doc = head + nested(levels) + "}";
  doc.insert(head.size(), size - doc.size(), ' ');
  return doc;
}

// Where two large strings first differ, for a failure message that does not
// print megabytes.
std::string first_difference(const std::string& got, const std::string& want) {
  std::size_t at = 0;
  while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
  return "sizes " + std::to_string(got.size()) + " vs " + std::to_string(want.size()) + ", first difference at byte " +
         std::to_string(at);
}

std::string topics_of(const std::vector<MqttMessage>& messages) {
  std::string out;
  for (const auto& m : messages) out += " " + m.topic;
  return out;
}

class DeepJsonTest : public StackTest {
 protected:
  DeepJsonTest() : StackTest("deepjson") {}
};

TEST_F(DeepJsonTest, GatewayRefusesDeepBodiesAndKeepsServing) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());

  struct Case {
    std::string label;
    std::string body;
  };
  std::vector<Case> cases;
  for (std::size_t levels : {1000u, 100000u}) {
    std::string n = std::to_string(levels);
    cases.push_back({n + " levels, no id", R"({"p":)" + nested(levels) + "}"});
    cases.push_back({n + " levels, string id", R"({"id":"x","p":)" + nested(levels) + "}"});
    cases.push_back({n + " levels in the id", R"({"id":)" + nested(levels) + "}"});
  }
  cases.push_back({"body limit, no id", deep_object_of_size(R"({"p":)", kBodyLimit)});
  cases.push_back({"body limit, string id", deep_object_of_size(R"({"id":"x","p":)", kBodyLimit)});
  cases.push_back({"body limit, in the id", deep_object_of_size(R"({"id":)", kBodyLimit)});

  auto c = client(gw);
  int n = 0;
  for (const auto& tc : cases) {
    SCOPED_TRACE(tc.label);
    ASSERT_LE(tc.body.size(), kBodyLimit);
    const std::string rid = "deep-" + std::to_string(n++);
    HttpResult r = post(*c, command_path("box-1"), tc.body, {{"X-Request-Id", rid}});
    ASSERT_EQ(r.status, 400) << r.body << r.error << "\n" << stack->logs();
    EXPECT_EQ(r.error_code(), "invalid_body") << r.body;
    EXPECT_EQ(r.json().value("message", ""), "The body nests objects and arrays deeper than 64 levels.");
    EXPECT_EQ(r.json().value("request_id", ""), rid);
    EXPECT_EQ(r.header("X-Request-Id"), rid);
  }

  ASSERT_TRUE(stack->gateway().running()) << stack->gateway().log_tail();
  EXPECT_EQ(get(gw, "/healthz").status, 200);
  HttpResult ok = post(*c, command_path("box-1"), R"({"method":"ping"})", {{"X-Request-Id", "after-deep"}});
  ASSERT_EQ(ok.status, 200) << ok.body << ok.error << "\n" << stack->logs();
  EXPECT_EQ(ok.body, R"({"id":"after-deep","result":{"ok":true}})");
  // Published in order on one connection: once the device has the normal
  // command, it would have any refused one too.
  auto commands = device.commands();
  ASSERT_EQ(commands.size(), 1u) << "a refused body reached MQTT:" << topics_of(commands);
  EXPECT_EQ(commands[0].topic, "dev/box-1/request/after-deep");
}

// A body at the limit that is valid: the id value is replaced in place (here
// an object, nested to the depth limit) and every other byte goes out as sent.
TEST_F(DeepJsonTest, GatewaySplicesTheIdIntoABodyAtTheLimit) {
  int gw = stack->add_gateway();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", nullptr);
  const std::string id_value = R"({"deep":)" + nested(62) + "}";  // levels 2..64
  const std::string head = "{ \"id\" : " + id_value + " ,\"pad\":\"";
  std::string body = head + std::string(kBodyLimit - head.size() - 2, 'x') + "\"}";
  ASSERT_EQ(body.size(), kBodyLimit);
  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1", "timeout_ms=200"), body, {{"X-Request-Id", "at-limit"}});
  EXPECT_EQ(r.status, 504) << r.body << r.error;
  ASSERT_TRUE(device.probe().wait_for(1, 2s));
  std::string expected = body;
  expected.replace(std::string("{ \"id\" : ").size(), id_value.size(), "\"at-limit\"");
  const std::string published = device.commands().at(0).payload;
  EXPECT_TRUE(published == expected) << first_difference(published, expected);
}

TEST_F(DeepJsonTest, BridgeForwardsOrDropsDeepRepliesAndKeepsForwarding) {
  int br = stack->add_bridge();
  test::Subscriber replies(stack->redis().port());
  replies.psubscribe("dev/*");
  MqttProbe device(stack->mqtt_port());

  // On {prefix}/{box}/response, so the bridge must find the id in the payload.
  // One reply of max_reply_bytes, nested at nearly every byte: publishing
  // 16 MiB through the broker takes the test's paho client seconds, so one.
  const std::string deep_with_id = R"({"id":"deep-1","p":)" + nested(100000) + "}";
  const std::string huge_with_id = deep_object_of_size(R"({"id":"huge-1","p":)", kReplyLimit);
  const std::string normal = R"({"id":"ok-1","result":1})";
  for (const char* id : {"deep-1", "huge-1", "ok-1"}) test::issue_command(stack->redis(), "box-1", id);
  test::issue_command(stack->redis(), "box-2", "ok-2");
  device.publish("dev/box-1/response", R"({"p":)" + nested(100000) + "}");                // no id
  device.publish("dev/box-1/response", R"({"id":)" + nested(100000) + "}");               // id not a string
  device.publish("dev/box-1/response", R"({"id":"x","p":)" + std::string(100000, '['));  // never closed
  device.publish("dev/box-1/response", R"({"id":"dup-1","id":"dup-2"})");                 // which id? neither
  device.publish("dev/box-1/response", deep_with_id);
  device.publish("dev/box-1/response", huge_with_id);
  device.publish("dev/box-1/response", normal);

  ASSERT_TRUE(replies.wait_for(3, 20s)) << stack->logs();
  auto got = replies.messages();
  ASSERT_EQ(got.size(), 3u);
  // Both are above reply_inline_max_bytes: the channel gets a stored-reply
  // notice, the result key the reply verbatim.
  EXPECT_EQ(got[0].channel, "dev/box-1/response/deep-1");
  EXPECT_EQ(got[0].payload, stored_reply_notice(deep_with_id.size()));
  std::string stored = stack->redis().get("dev/box-1/response/deep-1").value_or("");
  EXPECT_TRUE(stored == deep_with_id) << first_difference(stored, deep_with_id);
  EXPECT_EQ(got[1].channel, "dev/box-1/response/huge-1");
  EXPECT_EQ(got[1].payload, stored_reply_notice(huge_with_id.size()));
  stored = stack->redis().get("dev/box-1/response/huge-1").value_or("");
  EXPECT_TRUE(stored == huge_with_id) << first_difference(stored, huge_with_id);
  EXPECT_EQ(got[2].channel, "dev/box-1/response/ok-1");
  EXPECT_EQ(got[2].payload, normal);

  EXPECT_TRUE(test::eventually([&] { return metric(br, "boxgate_replies_forwarded_total") == 3.0; }, 5s));
  EXPECT_EQ(metric(br, "boxgate_replies_received_total"), 7.0);
  EXPECT_EQ(metric(br, R"(boxgate_replies_dropped_total{reason="invalid_id"})"), 4.0);
  EXPECT_EQ(metric(br, R"(boxgate_replies_dropped_total{reason="too_large"})"), 0.0);
  ASSERT_TRUE(stack->bridge().running()) << stack->bridge().log_tail();

  // Still forwarding after all of it.
  device.publish("dev/box-2/response", R"({"id":"ok-2"})");
  ASSERT_TRUE(replies.wait_for(4, 5s)) << stack->logs();
  EXPECT_EQ(replies.messages().at(3).channel, "dev/box-2/response/ok-2");
}

// devsim takes commands from the broker, where anyone may publish: a deep one
// gets a bad_json reply and the fleet keeps answering.
TEST_F(DeepJsonTest, DevsimAnswersDeepCommandsBadJsonAndKeepsAnswering) {
  stack->add_devsim({"--box-list", "box-1", "--delay-ms", "0"});
  MqttProbe backend(stack->mqtt_port());
  backend.subscribe("dev/box-1/response/+");
  backend.publish("dev/box-1/request/deep-1", R"({"id":"deep-1","params":)" + nested(100000) + "}");
  backend.publish("dev/box-1/request/ok-1", R"({"id":"ok-1","method":"ping"})");
  ASSERT_TRUE(backend.wait_for(2, 5s)) << stack->logs();
  std::map<std::string, nlohmann::json> by_topic;  // replies may come in either order
  for (const auto& m : backend.messages()) by_topic[m.topic] = nlohmann::json::parse(m.payload, nullptr, false);
  ASSERT_EQ(by_topic.size(), 2u);
  EXPECT_EQ(by_topic["dev/box-1/response/deep-1"]["error"]["code"], "bad_json");
  EXPECT_EQ(by_topic["dev/box-1/response/ok-1"]["result"]["method"], "ping");
  EXPECT_TRUE(stack->devsim().running()) << stack->devsim().log_tail();
}

}  // namespace
}  // namespace boxgate::itest
