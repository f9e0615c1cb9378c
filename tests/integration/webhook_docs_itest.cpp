// docs/webhooks.md held to real deliveries: a gateway and a bridge deliver a
// command outcome, a presence change and two events (a JSON payload and a
// non-JSON one) to a receiver; each delivery (headers and exact body) is
// written to files, and tests/docs/webhook_doc_check.py runs the doc's Python
// and Node verification snippets on it with python3 and node -- valid as
// sent, invalid with one body byte changed or a timestamp 10 minutes old --
// and validates each body against docs/schemas/webhook.schema.json (and its
// outcome.schema.json).

#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>

#include <nlohmann/json.hpp>

#include "itest_env.hpp"
#include "support/daemons.hpp"
#include "support/http_receiver.hpp"

namespace boxgate::itest::webhook_docs {
namespace {

using namespace std::chrono_literals;
using test::Receiver;
using test::Seen;

constexpr const char* kDocSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

// Debian's python3 first: python3-jsonschema installs for it, which a
// python3 earlier in PATH may not see (as device_examples_itest.cpp does).
std::string python3() {
  if (const char* env = std::getenv("BOXGATE_PYTHON3"); env && *env) return env;
  return ::access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : "python3";
}

class WebhookDocsTest : public StackTest {
 protected:
  WebhookDocsTest() : StackTest("webhook-docs") {}

  // The first delivery whose body's type is `type`, if any.
  static std::optional<Seen> first_of(const Receiver& r, const std::string& type) {
    for (const Seen& s : r.seen()) {
      auto j = nlohmann::json::parse(s.body, nullptr, false);
      if (j.is_object() && j.value("type", "") == type) return s;
    }
    return std::nullopt;
  }

  // Writes <dir>/<name>.json ({"secret", "headers"}, names lowercase) and
  // <dir>/<name>.body (the exact bytes); returns <dir>/<name>.
  std::string save(const Seen& s, const std::string& name) {
    std::string base = stack->tmp().path() + "/" + name;
    nlohmann::json headers = nlohmann::json::object();
    for (const char* h : {"webhook-id", "webhook-timestamp", "webhook-signature", "content-type"}) {
      auto it = s.headers.find(h);  // httplib's header map ignores case
      if (it != s.headers.end()) headers[h] = it->second;
    }
    std::ofstream(base + ".json") << nlohmann::json{{"secret", kDocSecret}, {"headers", headers}}.dump();
    std::ofstream(base + ".body", std::ios::binary) << s.body;
    return base;
  }
};

TEST_F(WebhookDocsTest, TheDocsSnippetsVerifyRealDeliveriesAndTheSchemasFitTheirBodies) {
  Receiver receiver;
  receiver.on("/hook");
  receiver.start();
  std::string file = stack->tmp().path() + "/webhooks.json";
  nlohmann::json endpoint = {{"name", "docs"},
                             {"url", receiver.url("/hook")},
                             {"secret", kDocSecret},
                             {"kinds", {"command.succeeded", "device.online", "event.*"}},
                             {"allow_http", true}};
  std::ofstream(file) << nlohmann::json{{"endpoints", {endpoint}}}.dump();
  int gw = stack->add_gateway({"--webhooks", file});
  stack->add_bridge();
  // The groups are created at the streams' end: wait until all three exist.
  for (const char* stream : {"dev/commands", "dev/presence", "dev/events"}) {
    ASSERT_TRUE(test::eventually(
        [&] { return stack->redis().client().command({"XINFO", "GROUPS", stream}).elements.size() == 1; }, 5s))
        << stream;
  }

  ProbeDevice box(stack->mqtt_port(), "dev/box-1/request/+", ProbeDevice::echo());
  auto c = client(gw);
  ASSERT_EQ(post(*c, command_path("box-1"), R"({"method":"noop"})", {{"X-Request-Id", "doc-1"}}).status, 200);
  set_presence("box-2", true, gw);
  MqttProbe device(stack->mqtt_port());
  device.publish("dev/box-2/event/alarm", R"({"level":3,"zone":"north"})");
  device.publish("dev/box-2/event/log", std::string("boot \xff ok\x01"));

  const std::vector<std::string> types = {"command.succeeded", "device.online", "event.alarm", "event.log"};
  ASSERT_TRUE(test::eventually(
      [&] {
        for (const std::string& t : types) {
          if (!first_of(receiver, t)) return false;
        }
        return true;
      },
      15s))
      << stack->logs();

  std::vector<std::string> argv = {python3(), BOXGATE_SOURCE_DIR "/tests/docs/webhook_doc_check.py",
                                   BOXGATE_SOURCE_DIR "/docs/webhooks.md", BOXGATE_SOURCE_DIR "/docs/schemas"};
  for (const std::string& t : types) argv.push_back(save(*first_of(receiver, t), t));

  // What the doc says of event payloads, seen here on the wire.
  auto alarm = nlohmann::json::parse(first_of(receiver, "event.alarm")->body);
  EXPECT_EQ(alarm["data"]["payload"], nlohmann::json::parse(R"({"level":3,"zone":"north"})"));
  auto text = nlohmann::json::parse(first_of(receiver, "event.log")->body);
  ASSERT_TRUE(text["data"]["payload"].is_string()) << text.dump();
  EXPECT_EQ(text["data"]["payload"].get<std::string>(), "boot \xEF\xBF\xBD ok\x01") << "invalid UTF-8 replaced";

  test::Process check("webhook-doc-check", argv, stack->tmp().path());
  auto status = check.wait_exit(90s);
  std::string out = check.log_tail(80);
  EXPECT_EQ(status, 0) << out;
  EXPECT_NE(out.find("all passed"), std::string::npos) << out;
  // Every delivery was checked by both snippets, four ways each.
  for (const std::string& t : types) {
    EXPECT_NE(out.find("ok    " + t + ": python snippet, one body byte changed: invalid"), std::string::npos) << out;
    EXPECT_NE(out.find("ok    " + t + ": node snippet, as sent: valid"), std::string::npos) << out;
  }
}

}  // namespace
}  // namespace boxgate::itest::webhook_docs
