// Device data plane, gateway side on real processes: the
// latest state, JSON history, SSE streams (history, then live, resumed by
// Last-Event-ID, no gap and no duplicate while events keep coming), the
// heartbeat, a slow reader cut off without harm to a fast one, the stream
// cap, and tokens with box scopes on every read, the fleet stream filtered.

#include <gtest/gtest.h>

#include <set>

#include "itest_env.hpp"
#include "sse_client.hpp"

namespace boxgate::itest {
namespace {

// As auth_itest.cpp: sha256("secret-ci"), scope box-*|lab-7.
const std::string kScopedTokens = "ci:" + kCiHash + ":box-*|lab-7";

class EventApiTest : public StackTest {
 protected:
  EventApiTest() : StackTest("event-api") {}

  // Publishes and waits until the bridge has stored them all.
  void send_events(MqttProbe& device, const std::string& box, int from, int to, int bridge_port, double& total) {
    for (int i = from; i < to; ++i) device.publish("dev/" + box + "/event/n", 'e' + std::to_string(i));
    total += to - from;
    ASSERT_TRUE(test::eventually([&] { return metric(bridge_port, "boxgate_events_forwarded_total") == total; }, 5s))
        << stack->logs();
  }

  // The gateway's reader of the fleet stream has its position (logged at
  // debug, once per gateway): from then on a stream that joins it gets every
  // later event.
  bool tail_positioned() { return stack->gateway().wait_for_log("fleet stream reader positioned", 5s); }
};

TEST_F(EventApiTest, StateIsTheLatestOr404) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  HttpResult none = get(gw, "/v1/devices/box-1/state");
  EXPECT_EQ(none.status, 404) << none.body;
  EXPECT_EQ(none.error_code(), "no_state");
  MqttProbe device(stack->mqtt_port());
  device.publish("dev/box-1/state", R"({"fw":"1.0"})");
  device.publish("dev/box-1/state", R"({"fw":"2.0"})");
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_states_forwarded_total") == 2.0; }, 5s));
  HttpResult state = get(gw, "/v1/devices/box-1/state");
  ASSERT_EQ(state.status, 200) << state.body;
  EXPECT_EQ(state.json()["state"]["fw"], "2.0");
  EXPECT_TRUE(state.json()["received_ms"].is_number_integer());
  EXPECT_EQ(get(gw, "/v1/devices/box-1/state?x=1").error_code(), "invalid_query");
  EXPECT_EQ(get(gw, "/v1/devices/bad%20id/state").error_code(), "invalid_box_id");
}

TEST_F(EventApiTest, HistoryPagesWithAfterAndLimit) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.publish("dev/box-1/event/json", R"({"a":[1,2]})");
  device.publish("dev/box-1/event/text", "plain text");
  double total = 2;
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 2.0; }, 5s));
  send_events(device, "box-1", 0, 3, br, total);

  HttpResult first = get(gw, "/v1/devices/box-1/events?limit=2");
  ASSERT_EQ(first.status, 200) << first.body;
  auto page = first.json();
  ASSERT_EQ(page["events"].size(), 2u) << first.body;
  EXPECT_EQ(page["box_id"], "box-1");
  EXPECT_EQ(page["events"][0]["name"], "json");
  EXPECT_EQ(page["events"][0]["payload"], nlohmann::json::parse(R"({"a":[1,2]})"));
  EXPECT_EQ(page["events"][1]["payload_text"], "plain text");
  ASSERT_TRUE(page.contains("next_after"));
  HttpResult rest = get(gw, "/v1/devices/box-1/events?limit=10&after=" + page["next_after"].get<std::string>());
  ASSERT_EQ(rest.status, 200) << rest.body;
  ASSERT_EQ(rest.json()["events"].size(), 3u) << rest.body;
  EXPECT_EQ(rest.json()["events"][0]["payload_text"], "e0");
  EXPECT_FALSE(rest.json().contains("next_after"));
  EXPECT_EQ(get(gw, "/v1/devices/box-9/events").json()["events"].size(), 0u);

  EXPECT_EQ(get(gw, "/v1/devices/box-1/events?after=abc").error_code(), "invalid_after");
  EXPECT_EQ(get(gw, "/v1/devices/box-1/events?limit=0").error_code(), "invalid_limit");
  EXPECT_EQ(get(gw, "/v1/devices/box-1/events?limit=1001").error_code(), "invalid_limit");
  EXPECT_EQ(get(gw, "/v1/devices/box-1/events?since=1").error_code(), "invalid_query");
}

TEST_F(EventApiTest, StreamSendsHistoryThenLiveAndResumesByLastEventId) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  double total = 0;
  send_events(device, "box-1", 0, 3, br, total);
  send_events(device, "box-2", 100, 101, br, total);  // another box's: never shown
  std::vector<SseEvent> seen;
  {
    SseClient stream(gw, "/v1/devices/box-1/events?after=0");
    ASSERT_EQ(stream.status(), 200);
    EXPECT_NE(stream.headers().find("text/event-stream"), std::string::npos) << stream.headers();
    ASSERT_TRUE(stream.wait_events(3, 5s)) << stack->logs();
    device.publish("dev/box-1/event/multi", "line 1\nline 2\r\nline 3");
    total += 1;
    send_events(device, "box-1", 3, 5, br, total);
    ASSERT_TRUE(stream.wait_events(6, 5s)) << stack->logs();
    seen = stream.events();
  }
  ASSERT_EQ(seen.size(), 6u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(seen[i].data, "e" + std::to_string(i));
  EXPECT_EQ(seen[3].event, "multi");
  EXPECT_EQ(seen[3].data, "line 1\nline 2\nline 3");
  EXPECT_EQ(seen[5].data, "e4");
  for (std::size_t i = 1; i < seen.size(); ++i) EXPECT_NE(seen[i].id, seen[i - 1].id);
  // The ids are the box stream's (and the fleet stream's) ids.
  auto history = get(gw, "/v1/devices/box-1/events?limit=100").json()["events"];
  ASSERT_EQ(history.size(), 6u);
  for (std::size_t i = 0; i < 6; ++i) EXPECT_EQ(seen[i].id, history[i]["id"]) << i;

  // Gone for a while; back with Last-Event-ID: exactly what it missed.
  send_events(device, "box-1", 5, 8, br, total);
  SseClient resumed(gw, "/v1/devices/box-1/events", {{"Last-Event-ID", seen.back().id}});
  ASSERT_TRUE(resumed.wait_events(3, 5s)) << stack->logs();
  // Without a resume point: live events only, once the gateway's reader of
  // the fleet stream has its position (a stream that joins it then is live).
  SseClient live(gw, "/v1/devices/box-1/events");
  ASSERT_EQ(live.status(), 200);
  ASSERT_TRUE(tail_positioned()) << stack->logs();
  send_events(device, "box-1", 8, 9, br, total);
  ASSERT_TRUE(live.wait_events(1, 5s));
  EXPECT_EQ(live.events().at(0).data, "e8");
  // e8 is the fence for the resumed stream: what it missed, then e8, nothing
  // twice (a repeat would have come before e8).
  ASSERT_TRUE(resumed.wait_events(4, 5s)) << stack->logs();
  auto again = resumed.events();
  ASSERT_EQ(again.size(), 4u);
  EXPECT_EQ(again[0].data, "e5");
  EXPECT_EQ(again[2].data, "e7");
  EXPECT_EQ(again[3].data, "e8");
  EXPECT_EQ(get(gw, "/metrics").status, 200);
  EXPECT_EQ(SseClient(gw, "/v1/devices/box-1/events", {{"Last-Event-ID", "x"}}).status(), 400);
}

// The join of history and live while events keep coming: every event
// once, in order, whatever the timing.
TEST_F(EventApiTest, NoGapAndNoDuplicateBetweenHistoryAndLive) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  constexpr int kEvents = 400;
  std::atomic<int> published{0};
  std::thread sender([&] {
    for (int i = 0; i < kEvents; ++i) {
      device.publish("dev/box-1/event/n", std::to_string(i), 0);
      published = i + 1;
      if (i % 20 == 0) std::this_thread::sleep_for(2ms);  // the flow's pace, so the streams join mid-flow
    }
  });
  ASSERT_TRUE(test::eventually([&] { return published >= 100; }, 10s, 1ms));
  // Two streams join mid-flow: one from the start of the stream, one from
  // the fleet stream (same ids).
  SseClient box(gw, "/v1/devices/box-1/events?after=0");
  SseClient fleet(gw, "/v1/events?box=box-1&after=0");
  sender.join();
  // One more event as a fence: a repeat from the join would come before it.
  device.publish("dev/box-1/event/n", "end", 0);
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == kEvents + 1; }, 10s));
  for (SseClient* c : {&box, &fleet}) {
    ASSERT_TRUE(c->wait_events(kEvents + 1, 10s)) << c->events().size() << "\n" << stack->logs();
    auto events = c->events();
    ASSERT_EQ(events.size(), static_cast<std::size_t>(kEvents + 1));
    for (int i = 0; i < kEvents; ++i) ASSERT_EQ(events[i].data, std::to_string(i)) << "at " << i;
    EXPECT_EQ(events.back().data, "end");
  }
  EXPECT_EQ(box.events().back().id, fleet.events().back().id);
}

TEST_F(EventApiTest, QuietStreamGetsHeartbeats) {
  int gw = stack->add_gateway({"--sse-heartbeat-ms", "100", "--http-idle-timeout-ms", "300"});
  SseClient stream(gw, "/v1/devices/box-1/events");
  ASSERT_EQ(stream.status(), 200);
  // Longer than the idle timeout: a stream is not an idle connection.
  EXPECT_TRUE(stream.wait_comments(10, 5s)) << stream.comments();
  EXPECT_FALSE(stream.closed());
}

TEST_F(EventApiTest, SlowReaderIsCutOffAndOthersKeepTheirEvents) {
  // The bound must hold a burst the fast reader takes in stride: the gateway
  // reads up to 64 events at a time (64 x 2 KiB here).
  int gw = stack->add_gateway({"--sse-max-buffer-bytes", "262144"});
  int br = stack->add_bridge();
  SseClient slow(gw, "/v1/devices/box-1/events", {}, /*read=*/false);
  SseClient fast(gw, "/v1/devices/box-1/events");
  ASSERT_EQ(fast.status(), 200);
  ASSERT_TRUE(test::eventually([&] { return metric(gw, "boxgate_streams_open") == 2.0; }, 5s));
  ASSERT_TRUE(tail_positioned()) << stack->logs();  // both joined the live tail
  MqttProbe device(stack->mqtt_port());
  const std::string payload(2 * 1024, 'x');
  constexpr int kEvents = 2000;  // ~4 MB: far beyond the slow reader's 256 KiB plus its socket buffers
  for (int i = 0; i < kEvents; ++i) device.publish("dev/box-1/event/big", payload, 0);
  ASSERT_TRUE(fast.wait_events(kEvents, 20s)) << fast.events().size() << stack->logs();
  for (int i = 0; i < kEvents; i += 499) ASSERT_EQ(fast.events()[i].data, payload);
  EXPECT_TRUE(test::eventually(
      [&] { return metric(gw, R"(boxgate_streams_closed_total{reason="slow_reader"})") == 1.0; }, 5s))
      << stack->logs();
  EXPECT_EQ(metric(gw, "boxgate_streams_open"), 1.0);
  slow.resume();
  EXPECT_TRUE(slow.wait_closed(5s));
  EXPECT_LT(slow.events().size(), static_cast<std::size_t>(kEvents));
  (void)br;
}

TEST_F(EventApiTest, StreamsAreCappedWith429) {
  int gw = stack->add_gateway({"--max-streams", "2"});
  {
    SseClient a(gw, "/v1/devices/box-1/events");
    SseClient b(gw, "/v1/events");
    ASSERT_EQ(a.status(), 200);
    ASSERT_EQ(b.status(), 200);
    SseClient c(gw, "/v1/devices/box-2/events");
    EXPECT_EQ(c.status(), 429);
    EXPECT_NE(c.body().find("too_many_streams"), std::string::npos) << c.body();
    EXPECT_EQ(metric(gw, "boxgate_streams_refused_total"), 1.0);
  }
  // Clients that leave free their slots.
  EXPECT_TRUE(test::eventually([&] { return metric(gw, "boxgate_streams_open") == 0.0; }, 5s));
  EXPECT_EQ(metric(gw, R"(boxgate_streams_closed_total{reason="client_gone"})"), 2.0);
  SseClient d(gw, "/v1/devices/box-2/events");
  EXPECT_EQ(d.status(), 200);
}

// The fleet stream's key holding another type: Redis answers the reader
// WRONGTYPE. The reader asks again about once a second, logs the error once,
// and reads again once the key is a stream: first while positioning, then
// while reading (where it used to resend XREAD at once, in a busy loop).
TEST_F(EventApiTest, FleetReaderRetriesAnErrorReplyCalmlyAndRecovers) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  test::RedisClient redis(stack->redis().port());
  auto count = [&](const std::string& needle) {
    std::string log = stack->gateway().log();
    int n = 0;
    for (auto at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    return n;
  };
  auto xread_calls = [&] {
    std::string info = redis.command({"INFO", "commandstats"}).str;
    auto at = info.find("cmdstat_xread:calls=");
    return at == std::string::npos ? 0L : std::stol(info.substr(at + 20));
  };
  MqttProbe device(stack->mqtt_port());

  // 1. Positioning fails, then works once the key is gone.
  redis.set("dev/events", "not a stream");
  SseClient fleet(gw, "/v1/events");
  ASSERT_EQ(fleet.status(), 200);
  ASSERT_TRUE(test::eventually([&] { return count("cannot read the fleet stream's position: WRONGTYPE") >= 1; }, 5s))
      << stack->logs();
  redis.del("dev/events");
  ASSERT_TRUE(test::eventually([&] { return count("fleet stream reader works again") == 1; }, 5s)) << stack->logs();
  device.publish("dev/box-1/event/tick", "first");
  ASSERT_TRUE(fleet.wait_events(1, 5s)) << stack->logs();

  // 2. Reading fails (the blocked XREAD ends within its 5 s BLOCK), then works again.
  redis.del("dev/events");
  redis.set("dev/events", "not a stream");
  ASSERT_TRUE(test::eventually([&] { return count("fleet stream read failed: WRONGTYPE") >= 1; }, 8s)) << stack->logs();
  long before = xread_calls();
  // The point of this pause: how often the reader asks within a 2 s window.
  std::this_thread::sleep_for(2s);
  EXPECT_LE(xread_calls() - before, 4) << "an error reply must not be resent at once";
  EXPECT_EQ(count("asking again every 1000 ms"), 2) << "one error line per problem, not per retry";
  redis.del("dev/events");
  device.publish("dev/box-1/event/tick", "second");
  ASSERT_TRUE(fleet.wait_events(2, 5s)) << stack->logs();
  EXPECT_EQ(fleet.events()[1].data, "second");
  EXPECT_EQ(metric(br, "boxgate_events_forwarded_total"), 2.0);
}

TEST_F(EventApiTest, FleetStreamRefusesABadPatternAndACallerNotAskingForAStream) {
  int gw = stack->add_gateway();
  SseClient bad(gw, "/v1/events?box=a%2Fb");
  EXPECT_EQ(bad.status(), 400);
  EXPECT_TRUE(test::eventually([&] { return bad.body().find("invalid_box_pattern") != std::string::npos; }, 2s))
      << bad.body();
  HttpResult plain = get(gw, "/v1/events");  // no Accept: text/event-stream
  EXPECT_EQ(plain.status, 406) << plain.body;
  EXPECT_EQ(plain.error_code(), "not_acceptable");
  EXPECT_EQ(metric(gw, "boxgate_streams_open"), 0.0);
}

TEST_F(EventApiTest, TokensAndScopesApplyToEveryRead) {
  int gw = stack->add_gateway({"--api-tokens", kScopedTokens});
  int br = stack->add_bridge();
  const std::map<std::string, std::string> ci = {{"Authorization", "Bearer secret-ci"}};
  EXPECT_EQ(get(gw, "/v1/devices/box-1/state").status, 401);
  EXPECT_EQ(get(gw, "/v1/devices/box-1/events").status, 401);
  EXPECT_EQ(SseClient(gw, "/v1/events").status(), 401);
  EXPECT_EQ(SseClient(gw, "/v1/events", {{"Authorization", "Bearer wrong"}}).status(), 401);
  auto c = client(gw);
  auto forbidden = c->Get("/v1/devices/other-1/events", httplib::Headers{{"Authorization", "Bearer secret-ci"}});
  ASSERT_TRUE(forbidden);
  EXPECT_EQ(forbidden->status, 403);
  EXPECT_EQ(SseClient(gw, "/v1/devices/other-1/events", ci).status(), 403);
  auto allowed = c->Get("/v1/devices/box-1/events", httplib::Headers{{"Authorization", "Bearer secret-ci"}});
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->status, 200);

  // The fleet stream shows only what the token's scope holds, within the pattern asked.
  SseClient all(gw, "/v1/events", ci);
  SseClient lab(gw, "/v1/events?box=lab-*", ci);
  ASSERT_EQ(all.status(), 200);
  ASSERT_EQ(lab.status(), 200);
  ASSERT_TRUE(tail_positioned()) << stack->logs();  // both joined the live tail
  MqttProbe device(stack->mqtt_port());
  for (const char* box : {"box-1", "other-1", "lab-7", "lab-8", "box-2"}) {
    device.publish(std::string("dev/") + box + "/event/n", box);
  }
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 5.0; }, 5s));
  ASSERT_TRUE(all.wait_events(3, 5s)) << stack->logs();
  ASSERT_TRUE(lab.wait_events(1, 5s));
  // The point of this pause: proving that no event outside the scope or the
  // pattern arrives within a window (there is no later event to fence with).
  std::this_thread::sleep_for(300ms);
  std::vector<std::string> boxes;
  for (const auto& e : all.events()) boxes.push_back(e.data);
  EXPECT_EQ(boxes, (std::vector<std::string>{"box-1", "lab-7", "box-2"}));
  ASSERT_EQ(lab.events().size(), 1u);
  EXPECT_EQ(lab.events()[0].data, "lab-7");
  EXPECT_EQ(SseClient(gw, "/v1/events?box=a*b", ci).status(), 400);
  auto json = c->Get("/v1/events", httplib::Headers{{"Authorization", "Bearer secret-ci"}});
  ASSERT_TRUE(json);
  EXPECT_EQ(json->status, 406);
}

}  // namespace
}  // namespace boxgate::itest
