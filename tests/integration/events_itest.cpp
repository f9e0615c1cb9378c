// Device data plane, bridge side: a device's events reach
// the box stream and the fleet stream under one id and the event channel;
// its state is stored (latest wins) and published; bad topics and oversize
// payloads are dropped and counted; events wait out a Redis outage.

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "itest_env.hpp"
#include "support/records.hpp"

namespace boxgate::itest {
namespace {

using test::RespValue;

// One stream entry: its id and its fields.
struct Entry {
  std::string id;
  std::map<std::string, std::string> fields;
};

std::vector<Entry> entries_of(const RespValue& reply) {
  std::vector<Entry> out;
  for (const RespValue& e : reply.elements) {
    Entry entry{e.elements.at(0).str, {}};
    const auto& f = e.elements.at(1).elements;
    for (std::size_t i = 0; i + 1 < f.size(); i += 2) entry.fields[f[i].str] = f[i + 1].str;
    out.push_back(std::move(entry));
  }
  return out;
}

std::vector<Entry> xrange(test::RedisServer& redis, const std::string& stream) {
  return entries_of(redis.client().command({"XRANGE", stream, "-", "+"}));
}

class EventsTest : public StackTest {
 protected:
  EventsTest() : StackTest("events") {}
};

TEST_F(EventsTest, EventGoesToBothStreamsUnderOneIdAndToItsChannel) {
  int br = stack->add_bridge();
  test::Subscriber channel(stack->redis().port());
  channel.psubscribe("dev/box-1/event/*");
  MqttProbe device(stack->mqtt_port());
  const std::string payload = "{\"t\":21.5}\nsecond line";  // verbatim, whatever it is
  device.publish("dev/box-1/event/temperature", payload);
  device.publish("dev/box-2/event/door", "open");

  ASSERT_TRUE(channel.wait_for(1, 5s)) << stack->logs();
  auto messages = channel.messages();
  EXPECT_EQ(messages[0].channel, "dev/box-1/event/temperature");
  EXPECT_EQ(messages[0].payload, payload);

  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 2.0; }, 5s))
      << stack->logs();
  auto box = xrange(stack->redis(), "dev/box-1/events");
  auto fleet = xrange(stack->redis(), "dev/events");
  ASSERT_EQ(box.size(), 1u);
  ASSERT_EQ(fleet.size(), 2u);
  EXPECT_EQ(box[0].id, fleet[0].id) << "one id names the event in both streams";
  EXPECT_EQ(box[0].fields.at("box"), "box-1");
  EXPECT_EQ(box[0].fields.at("name"), "temperature");
  EXPECT_EQ(box[0].fields.at("payload"), payload);
  auto received = std::stoll(box[0].fields.at("received_ms"));
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(received, now);
  EXPECT_GT(received, now - 60000);
  EXPECT_EQ(fleet[1].fields.at("box"), "box-2");
  EXPECT_EQ(fleet[1].fields.at("payload"), "open");
  EXPECT_EQ(xrange(stack->redis(), "dev/box-2/events").at(0).id, fleet[1].id);
}

TEST_F(EventsTest, StateIsStoredLatestWinsAndPublished) {
  int br = stack->add_bridge();
  test::Subscriber channel(stack->redis().port());
  channel.subscribe("dev/box-1/state");
  MqttProbe device(stack->mqtt_port());
  device.publish("dev/box-1/state", R"({"fw":"1.0","on":true})");
  device.publish("dev/box-1/state", R"({"fw":"1.1","on":false})");
  device.publish("dev/box-1/state", "not json \"quoted\"");

  ASSERT_TRUE(channel.wait_for(3, 5s)) << stack->logs();
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_states_forwarded_total") == 3.0; }, 5s));
  auto stored = stack->redis().get("dev/box-1/state");
  ASSERT_TRUE(stored);
  auto doc = nlohmann::json::parse(*stored);
  EXPECT_EQ(doc["state"], "not json \"quoted\"") << *stored;
  EXPECT_TRUE(doc["received_ms"].is_number_integer());
  auto first = nlohmann::json::parse(channel.messages()[0].payload);
  EXPECT_EQ(first["state"], nlohmann::json::parse(R"({"fw":"1.0","on":true})"));
  // A JSON state is stored as the device's bytes, not re-encoded.
  EXPECT_NE(channel.messages()[1].payload.find(R"({"state":{"fw":"1.1","on":false},"received_ms":)"),
            std::string::npos)
      << channel.messages()[1].payload;
  EXPECT_EQ(channel.messages()[2].payload, *stored);
}

TEST_F(EventsTest, BadTopicsAndOversizePayloadsAreDroppedAndCounted) {
  int br = stack->add_bridge({"--max-event-bytes", "100"});
  MqttProbe device(stack->mqtt_port());
  device.publish("dev/box-1/event/bad*name", "x");     // '*' is outside the id pattern
  device.publish("dev/bad box/event/ok", "x");         // so is a space
  device.publish("dev/box-1/event/big", std::string(101, 'x'));
  device.publish("dev/box-1/state", std::string(101, 'x'));
  device.publish("dev/box-1/event/fits", std::string(100, 'x'));
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 1.0; }, 5s))
      << stack->logs();
  EXPECT_EQ(metric(br, R"(boxgate_events_dropped_total{reason="invalid_topic"})"), 2.0);
  EXPECT_EQ(metric(br, R"(boxgate_events_dropped_total{reason="too_large"})"), 1.0);
  EXPECT_EQ(metric(br, R"(boxgate_states_dropped_total{reason="too_large"})"), 1.0);
  EXPECT_EQ(metric(br, "boxgate_replies_dropped_total{reason=\"invalid_topic\"}"), 0.0)
      << "an event topic is never taken for a reply";
  EXPECT_EQ(xrange(stack->redis(), "dev/events").size(), 1u);
  EXPECT_FALSE(stack->redis().get("dev/box-1/state"));
  // The bridge still forwards replies (to an id a gateway issued).
  test::issue_command(stack->redis(), "box-1", "r-1");
  device.publish("dev/box-1/response/r-1", R"({"id":"r-1"})");
  EXPECT_TRUE(test::eventually([&] { return stack->redis().get("dev/box-1/response/r-1").has_value(); }, 5s));
}

TEST_F(EventsTest, StreamsAreCappedByMaxlen) {
  int br = stack->add_bridge({"--events-box-maxlen", "10", "--events-fleet-maxlen", "50"});
  MqttProbe device(stack->mqtt_port());
  for (int i = 0; i < 400; ++i) device.publish("dev/box-1/event/tick", std::to_string(i), 0);
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") >= 390.0; }, 10s));
  device.publish("dev/box-1/event/tick", "last");  // QoS 1: after every QoS 0 before it
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") >= 391.0; }, 5s));
  // At most the cap, at least 31/32 of it (a stream over its cap is trimmed
  // to that), the newest kept.
  EXPECT_EQ(stack->redis().client().command({"XLEN", "dev/box-1/events"}).integer, 10);
  long long fleet_len = stack->redis().client().command({"XLEN", "dev/events"}).integer;
  EXPECT_LE(fleet_len, 50);
  EXPECT_GE(fleet_len, 49);
  EXPECT_EQ(xrange(stack->redis(), "dev/box-1/events").back().fields["payload"], "last");
}

// The bytes an entry counts toward a stream's cap: its values + 64.
std::size_t counted_bytes(const std::vector<Entry>& entries) {
  std::size_t n = 0;
  for (const Entry& e : entries) {
    n += 64;
    for (const auto& [name, value] : e.fields) n += value.size();
  }
  return n;
}

long long memory_usage(test::RedisServer& redis, const std::string& key) {
  return redis.client().command({"MEMORY", "USAGE", key, "SAMPLES", "0"}).integer;
}

// 64 events of 1 MB from one device: with the default caps its box stream
// keeps the newest that fit in events_box_max_bytes (1 MiB: one), not all 64
// (which took ~64 MB in each stream), and the fleet stream, under its own
// cap (256 MiB), keeps them all.
TEST_F(EventsTest, BoxStreamIsCappedInBytesByDefault) {
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  for (int i = 0; i < 64; ++i) {
    std::string payload = std::to_string(i) + ":" + std::string(1000000, 'x');
    device.publish("dev/box-1/event/big", payload);
  }
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 64.0; }, 20s))
      << metric(br, "boxgate_events_forwarded_total").value_or(-1) << stack->logs();
  std::vector<Entry> box = xrange(stack->redis(), "dev/box-1/events");
  ASSERT_FALSE(box.empty());
  EXPECT_EQ(box.back().fields["payload"].substr(0, 3), "63:") << "the newest event is kept";
  EXPECT_EQ(box.size(), 1u);
  long long box_memory = memory_usage(stack->redis(), "dev/box-1/events");
  EXPECT_LT(box_memory, 1100000) << "Redis holds the box stream in " << box_memory << " bytes";
  EXPECT_EQ(xrange(stack->redis(), "dev/events").size(), 64u);
}

// Small caps in bytes, several boxes, events of mixed sizes: every stream
// stays under its cap (counted as the bridge counts), keeps its newest
// entries, and the bridge's count of its bytes is exact.
TEST_F(EventsTest, StreamsAreCappedInBytes) {
  int br = stack->add_bridge({"--events-box-max-bytes", "20000", "--events-fleet-max-bytes", "50000"});
  MqttProbe device(stack->mqtt_port());
  int sent = 0;
  for (int i = 0; i < 300; ++i) {
    std::string box = "box-" + std::to_string(i % 3);
    std::size_t size = (i % 7 == 0) ? 9000 : 100 + (i % 50);
    device.publish("dev/" + box + "/event/e", std::to_string(i) + ":" + std::string(size, 'x'));
    ++sent;
  }
  device.publish("dev/box-0/event/e", "last");
  ++sent;
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == double(sent); }, 10s))
      << metric(br, "boxgate_events_forwarded_total").value_or(-1);
  for (const std::string stream : {"dev/box-0/events", "dev/box-1/events", "dev/box-2/events", "dev/events"}) {
    SCOPED_TRACE(stream);
    std::vector<Entry> entries = xrange(stack->redis(), stream);
    ASSERT_GT(entries.size(), 1u);
    std::size_t cap = stream == "dev/events" ? 50000 : 20000;
    std::size_t bytes = counted_bytes(entries);
    EXPECT_LE(bytes, cap);
    // Trimmed no more than needed: to 31/32 of the cap, less one event (9 kB at most).
    EXPECT_GT(bytes + 9200, cap - cap / 32);
    auto count = stack->redis().client().command({"HGET", stream + "/bytes{" + stream + "}", "bytes"});
    EXPECT_EQ(count.str, std::to_string(bytes)) << "the bridge's count of the stream's bytes";
  }
  EXPECT_EQ(xrange(stack->redis(), "dev/box-0/events").back().fields["payload"], "last");
  EXPECT_EQ(xrange(stack->redis(), "dev/events").back().fields["payload"], "last");
}

TEST_F(EventsTest, EventsWaitOutARedisOutageInABoundedQueue) {
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.publish("dev/box-1/event/before", "0");
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 1.0; }, 5s));
  stack->redis().stop();
  ASSERT_TRUE(test::eventually([&] { return test::get(br, "/readyz").status == 503; }, 5s));
  for (int i = 1; i <= 5; ++i) device.publish("dev/box-1/event/during", std::to_string(i));
  device.publish("dev/box-1/state", R"({"n":5})");
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_queued") == 6.0; }, 5s)) << stack->logs();
  stack->redis().start();  // empty again (no persistence): what is there came from the queue
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 6.0; }, 10s))
      << stack->logs();
  auto fleet = xrange(stack->redis(), "dev/events");
  ASSERT_EQ(fleet.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(fleet[i].fields.at("payload"), std::to_string(i + 1)) << "in order";
  EXPECT_TRUE(stack->redis().get("dev/box-1/state").has_value());
  EXPECT_EQ(metric(br, "boxgate_events_queued"), 0.0);
  EXPECT_EQ(metric(br, "boxgate_events_held_bytes"), 0.0);
}

}  // namespace
}  // namespace boxgate::itest

namespace boxgate::itest {
namespace {

// devsim drives the data plane: events at a rate, state on a schedule.
TEST_F(EventsTest, DevsimPublishesEventsAndStateOnASchedule) {
  int br = stack->add_bridge();
  stack->add_devsim({"--boxes", "3", "--event-rate", "100", "--event-bytes", "200", "--state-every-ms", "200"});
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total").value_or(0) >= 50; }, 5s))
      << stack->logs();
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_states_forwarded_total").value_or(0) >= 6; }, 5s));
  auto fleet = xrange(stack->redis(), "dev/events");
  ASSERT_FALSE(fleet.empty());
  EXPECT_EQ(fleet[0].fields.at("name"), "telemetry");
  EXPECT_EQ(fleet[0].fields.at("payload").size(), 200u);
  EXPECT_TRUE(nlohmann::json::parse(fleet[0].fields.at("payload")).contains("sent_us"));
  std::set<std::string> boxes;
  for (const auto& e : fleet) boxes.insert(e.fields.at("box"));
  EXPECT_EQ(boxes, (std::set<std::string>{"box-1", "box-2", "box-3"}));
  for (const char* box : {"box-1", "box-2", "box-3"}) {
    auto state = stack->redis().get(std::string("dev/") + box + "/state");
    ASSERT_TRUE(state) << box;
    EXPECT_TRUE(nlohmann::json::parse(*state)["state"].contains("seq"));
  }
}

}  // namespace
}  // namespace boxgate::itest
