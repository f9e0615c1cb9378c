// The outcome and presence streams on real processes (docs/events.md,
// "Outcomes"): every state change of a command is one entry of
// {prefix}/commands, written by whoever changed it (the gateway: pending,
// timed_out and the queue's states; the bridge: succeeded), and every
// presence change one entry of {prefix}/presence; both capped in entries.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using namespace std::chrono_literals;

struct Entry {
  std::string id;
  std::string box;
  std::string name;
  nlohmann::json payload;
};

class OutcomeStreamTest : public StackTest {
 protected:
  OutcomeStreamTest() : StackTest("outcomes") {}

  std::vector<Entry> entries(const std::string& stream) {
    std::vector<Entry> out;
    auto reply = stack->redis().client().command({"XRANGE", stream, "-", "+"});
    for (const auto& e : reply.elements) {
      Entry entry{e.elements.at(0).str, {}, {}, {}};
      const auto& fields = e.elements.at(1).elements;
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "box") entry.box = fields[i + 1].str;
        if (fields[i].str == "name") entry.name = fields[i + 1].str;
        if (fields[i].str == "payload") entry.payload = nlohmann::json::parse(fields[i + 1].str);
      }
      out.push_back(std::move(entry));
    }
    return out;
  }

  // The states the outcome stream holds for one command, in stream order.
  std::vector<std::string> states_of(const std::string& request_id) {
    std::vector<std::string> states;
    for (const Entry& e : entries("dev/commands")) {
      if (e.payload.value("request_id", "") == request_id) states.push_back(e.name);
    }
    return states;
  }

  // Waits until the command's states in the stream are `want`.
  void wait_states(const std::string& request_id, const std::vector<std::string>& want) {
    std::vector<std::string> got;
    EXPECT_TRUE(test::eventually(
        [&] {
          got = states_of(request_id);
          return got == want;
        },
        10s))
        << request_id << ": got " << nlohmann::json(got).dump() << ", want " << nlohmann::json(want).dump() << "\n"
        << stack->logs();
  }

  std::optional<nlohmann::json> payload_of(const std::string& request_id, const std::string& state) {
    for (const Entry& e : entries("dev/commands")) {
      if (e.payload.value("request_id", "") == request_id && e.name == state) return e.payload;
    }
    return std::nullopt;
  }
};

TEST_F(OutcomeStreamTest, ASyncCommandIsPendingThenSucceededWithTheReplysSize) {
  int gw = stack->add_gateway({"--instance", "gw-a"});
  stack->add_bridge();
  ProbeDevice box(stack->mqtt_port(), "dev/box-1/request/+", ProbeDevice::echo());
  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1"), R"({"method":"noop"})", {{"X-Request-Id", "s-1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  wait_states("s-1", {"pending", "succeeded"});
  auto pending = payload_of("s-1", "pending");
  ASSERT_TRUE(pending);
  EXPECT_EQ(pending->value("box", ""), "box-1");
  EXPECT_EQ(pending->value("mode", ""), "sync");
  EXPECT_EQ(pending->value("gateway", ""), "gw-a");
  EXPECT_GT(pending->value("at_ms", std::int64_t{0}), 0);
  auto succeeded = payload_of("s-1", "succeeded");
  ASSERT_TRUE(succeeded);
  // The reply stays in its result key; the stream says how large it was.
  EXPECT_EQ(succeeded->value("reply_bytes", std::int64_t{-1}), static_cast<std::int64_t>(r.body.size()));
  EXPECT_EQ(succeeded->value("late", true), false);
  EXPECT_FALSE(succeeded->contains("result"));
  for (const Entry& e : entries("dev/commands")) EXPECT_EQ(e.box, "box-1");
}

TEST_F(OutcomeStreamTest, ATimeoutIsToldWithDeliveredAndALateReplyAsLate) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/box-2/request/+");
  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-2", "timeout_ms=300"), R"({"method":"noop"})", {{"X-Request-Id", "t-1"}});
  ASSERT_EQ(r.status, 504) << r.body;
  wait_states("t-1", {"pending", "timed_out"});
  auto timed_out = payload_of("t-1", "timed_out");
  ASSERT_TRUE(timed_out);
  EXPECT_EQ(timed_out->value("delivered", false), true) << timed_out->dump();
  // The device answers after all: the bridge stores it and tells it, late.
  device.publish("dev/box-2/response/t-1", R"({"id":"t-1","result":"late"})");
  wait_states("t-1", {"pending", "timed_out", "succeeded"});
  auto late = payload_of("t-1", "succeeded");
  ASSERT_TRUE(late);
  EXPECT_EQ(late->value("late", false), true) << late->dump();
}

TEST_F(OutcomeStreamTest, QueuedCommandsTellEveryStepOfTheirWay) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  set_presence("box-3", false, gw);
  auto c = client(gw);
  auto queue = [&](const std::string& id, const std::string& query) {
    HttpResult r = post(*c, command_path("box-3", query), R"({"method":"noop"})",
                        {{"X-Request-Id", id}, {"Prefer", "respond-async"}});
    EXPECT_EQ(r.status, 202) << r.body;
  };
  queue("q-sent", "ttl_ms=60000&timeout_ms=5000");
  queue("q-expires", "ttl_ms=200&timeout_ms=5000");
  queue("q-cancel", "ttl_ms=60000&timeout_ms=5000");
  auto cancelled = c->Delete(command_path("box-3") + "/q-cancel");
  ASSERT_TRUE(cancelled);
  EXPECT_EQ(cancelled->status, 200) << cancelled->body;
  // Past q-expires's ttl (the status says so at once), so the wake's step drops it.
  ASSERT_TRUE(test::eventually(
      [&] { return test::get(gw, command_path("box-3") + "/q-expires").json().value("state", "") == "expired"; }, 5s));
  ProbeDevice box(stack->mqtt_port(), "dev/box-3/request/+", ProbeDevice::echo());
  set_presence("box-3", true, gw);
  wait_states("q-sent", {"queued", "pending", "succeeded"});
  wait_states("q-expires", {"queued", "expired"});
  wait_states("q-cancel", {"queued", "cancelled"});
  auto sent = payload_of("q-sent", "pending");
  ASSERT_TRUE(sent);
  EXPECT_EQ(sent->value("mode", ""), "async");
}

TEST_F(OutcomeStreamTest, PresenceChangesGoToThePresenceStream) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  set_presence("box-4", true, gw);
  set_presence("box-4", false, gw);
  std::vector<std::string> names;
  ASSERT_TRUE(test::eventually(
      [&] {
        names.clear();
        for (const Entry& e : entries("dev/presence")) {
          if (e.box == "box-4") names.push_back(e.name);
        }
        return names.size() >= 2;
      },
      10s))
      << stack->logs();
  EXPECT_EQ(names, (std::vector<std::string>{"online", "offline"}));
  for (const Entry& e : entries("dev/presence")) {
    EXPECT_EQ(e.payload.value("box", ""), e.box);
    EXPECT_EQ(e.payload.value("online", false), e.name == "online");
  }
}

TEST_F(OutcomeStreamTest, TheStreamsAreCappedAndCanBeTurnedOff) {
  int gw = stack->add_gateway({"--outcome-stream-maxlen", "100"});
  stack->add_bridge({"--outcome-stream-maxlen", "0", "--presence-stream-maxlen", "0"});
  auto c = client(gw);
  // Async: answered once published, so 400 take well under a second.
  for (int i = 0; i < 400; ++i) {
    HttpResult r = post(*c, command_path("box-5"), R"({"method":"noop"})", {{"Prefer", "respond-async"}});
    ASSERT_EQ(r.status, 202) << r.body;
  }
  set_presence("box-5", false, gw);
  auto all = entries("dev/commands");
  // MAXLEN ~ trims whole nodes of 100 entries: at most the cap plus one node.
  EXPECT_LE(all.size(), 200u);
  EXPECT_GE(all.size(), 100u);
  for (const Entry& e : all) EXPECT_EQ(e.name, "pending") << "the bridge was told to write none";
  EXPECT_TRUE(entries("dev/presence").empty());
}

}  // namespace
}  // namespace boxgate::itest
