// Event reads bounded in bytes and in Redis work, on real processes
// (docs/security.md, "Event reads"): an SSE catch-up writes a page only as
// the socket drains and never more than sse_max_buffer_bytes at once; a JSON
// history page ends at events_page_max_bytes with next_after; a stream id
// beyond 64 bits is a 400, never a Redis error; a fleet stream whose filter
// shows nothing scans the fleet stream at a bounded rate, and an exact-box
// filter reads the box's own stream.
//
// The events are written straight into Redis (as the bridge writes them):
// large payloads and many entries without a device.

#include <gtest/gtest.h>

#include <set>

#include "itest_env.hpp"
#include "sse_client.hpp"

namespace boxgate::itest {
namespace {

class EventBoundsTest : public StackTest {
 protected:
  EventBoundsTest() : StackTest("event-bounds") {}

  // `count` events of `size` bytes each on box-1's stream ("e<i>" then 'x's).
  void store_big_events(int count, std::size_t size) {
    test::RedisClient redis = stack->redis().client();
    for (int i = 0; i < count; ++i) {
      std::string payload = "e" + std::to_string(i);
      payload.resize(size, 'x');
      test::RespValue id = redis.command(
          {"XADD", "dev/box-1/events", "*", "box", "box-1", "name", "big", "payload", payload, "received_ms", "1"});
      ASSERT_EQ(id.type, test::RespValue::Type::bulk) << id.str;
    }
  }

  // `count` small events of boxes box-0 .. box-49 in the fleet stream.
  void fill_fleet(int count) {
    test::RespValue added = stack->redis().client().command(
        {"EVAL",
         "for i = 1, tonumber(ARGV[1]) do redis.call('XADD', KEYS[1], '*', 'box', 'box-' .. (i % 50), 'name', 'n', "
         "'payload', '{}', 'received_ms', '1') end return redis.call('XLEN', KEYS[1])",
         "1", "dev/events", std::to_string(count)});
    ASSERT_EQ(added.integer, count) << added.str;
  }

  // XRANGE calls Redis has answered so far (INFO commandstats).
  long long xrange_calls() {
    test::RespValue info = stack->redis().client().command({"INFO", "commandstats"});
    auto at = info.str.find("cmdstat_xrange:calls=");
    if (at == std::string::npos) return 0;
    return std::stoll(info.str.substr(at + std::string("cmdstat_xrange:calls=").size()));
  }
};

// A reader that resumes from the start and then reads nothing holds at most
// one page of sse_max_buffer_bytes (1 MiB, the default: one 1 MB event)
// until the write timeout cuts it; it used to get a whole page of 32 events
// (32 MB) at once. A reader that reads gets every event, in order.
TEST_F(EventBoundsTest, CatchUpWritesOnlyAsTheSocketDrains) {
  constexpr int kEvents = 48;
  constexpr std::size_t kSize = 1000 * 1000;
  store_big_events(kEvents, kSize);
  int gw = stack->add_gateway({"--http-idle-timeout-ms", "1500"});
  {
    SseClient stalled(gw, "/v1/devices/box-1/events", {{"Last-Event-ID", "0-0"}}, /*read=*/false);
    ASSERT_TRUE(test::eventually(
        [&] { return metric(gw, R"(boxgate_streams_closed_total{reason="client_gone"})") == 1.0; }, 10s))
        << stack->logs();
  }
  // What went to the socket: its kernel buffers' worth (a few MB on
  // loopback) plus one page, far below the 32 of one old page.
  std::optional<double> sent = metric(gw, "boxgate_stream_events_sent_total");
  ASSERT_TRUE(sent.has_value());
  EXPECT_LE(*sent, 12.0) << "events handed to a socket that read nothing";

  SseClient reader(gw, "/v1/devices/box-1/events", {{"Last-Event-ID", "0-0"}});
  ASSERT_TRUE(reader.wait_events(kEvents, 30s)) << reader.events().size() << stack->logs();
  std::vector<SseEvent> events = reader.events();
  ASSERT_EQ(events.size(), static_cast<std::size_t>(kEvents));
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(events[i].data.size(), kSize) << i;
    EXPECT_EQ(events[i].data.rfind("e" + std::to_string(i) + "x", 0), 0u) << i;
  }
}

// 5 events of 700 kB: a page of up to 1000 ends before the event that would
// take its body over events_page_max_bytes (1 MiB, the default: one event a
// page), with next_after; paging on gives the rest, each event once.
TEST_F(EventBoundsTest, HistoryPageEndsAtItsByteCap) {
  constexpr std::size_t kSize = 700 * 1000;
  store_big_events(5, kSize);
  int gw = stack->add_gateway();
  std::vector<std::string> seen;
  std::string path = "/v1/devices/box-1/events?limit=1000";
  for (int pages = 0; pages < 6; ++pages) {
    HttpResult page = get(gw, path);
    ASSERT_EQ(page.status, 200) << page.body.substr(0, 200);
    EXPECT_LE(page.body.size(), 1048576u);
    auto json = page.json();
    for (const auto& event : json["events"]) seen.push_back(event["payload_text"].get<std::string>().substr(0, 2));
    if (pages == 0) {
      EXPECT_EQ(json["events"].size(), 1u);
      ASSERT_TRUE(json.contains("next_after")) << "a page cut by bytes says where to go on";
    }
    if (!json.contains("next_after")) break;
    path = "/v1/devices/box-1/events?limit=1000&after=" + json["next_after"].get<std::string>();
  }
  EXPECT_EQ(seen, (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4"}));
  // Small events still come 1000 to a page.
  test::RedisClient redis = stack->redis().client();
  for (int i = 0; i < 1200; ++i) {
    redis.command({"XADD", "dev/box-2/events", "*", "box", "box-2", "name", "n", "payload", "{}", "received_ms", "1"});
  }
  HttpResult small = get(gw, "/v1/devices/box-2/events?limit=1000");
  ASSERT_EQ(small.status, 200);
  EXPECT_EQ(small.json()["events"].size(), 1000u);
  EXPECT_TRUE(small.json().contains("next_after"));
}

// Redis's stream ids are two unsigned 64-bit numbers: a larger part is a
// bad request (it used to reach Redis: 503 redis_unavailable, or an SSE
// stream ended by a Redis error and a warning per request).
TEST_F(EventBoundsTest, StreamIdsBeyond64BitsAre400) {
  int gw = stack->add_gateway();
  for (const char* bad : {"18446744073709551616-0", "0-18446744073709551616", "99999999999999999999",
                          "18446744073709551615-18446744073709551615"}) {
    const std::string after(bad);
    HttpResult history = get(gw, "/v1/devices/box-1/events?after=" + after);
    EXPECT_EQ(history.status, 400) << after << ' ' << history.body;
    EXPECT_EQ(history.error_code(), "invalid_after") << after;
    SseClient box(gw, "/v1/devices/box-1/events", {{"Last-Event-ID", after}});
    EXPECT_EQ(box.status(), 400) << after;
    SseClient fleet(gw, "/v1/events?after=" + after);
    EXPECT_EQ(fleet.status(), 400) << after;
  }
  HttpResult top = get(gw, "/v1/devices/box-1/events?after=18446744073709551615-18446744073709551614");
  EXPECT_EQ(top.status, 200) << top.body;
  EXPECT_EQ(top.json()["events"].size(), 0u);
  EXPECT_EQ(metric(gw, R"(boxgate_streams_closed_total{reason="redis_error"})").value_or(0), 0.0);
  EXPECT_EQ(stack->gateway().log().find("history read failed"), std::string::npos) << stack->logs();
}

// 20k fleet entries, none of box quiet-*: the catch-up of a reader filtered
// to quiet-* reads at most kScanPerSecond (2048) entries a second, then
// pauses (it used to page through all of them at once, on the connection of
// every command). An exact box reads that box's own stream: no scan.
TEST_F(EventBoundsTest, FleetFilterThatShowsNothingScansAtABoundedRate) {
  fill_fleet(20000);
  int gw = stack->add_gateway();
  long long before = xrange_calls();
  {
    SseClient exact(gw, "/v1/events?box=quiet-1", {{"Last-Event-ID", "0-0"}});
    ASSERT_EQ(exact.status(), 200);
    ASSERT_TRUE(test::eventually([&] { return xrange_calls() > before; }, 5s));
  }
  EXPECT_EQ(xrange_calls(), before + 1) << "one XRANGE of the empty dev/quiet-1/events";

  before = xrange_calls();
  SseClient pattern(gw, "/v1/events?box=quiet-*", {{"Last-Event-ID", "0-0"}});
  ASSERT_EQ(pattern.status(), 200);
  ASSERT_TRUE(test::eventually([&] { return metric(gw, "boxgate_stream_scan_pauses_total") >= 1.0; }, 5s))
      << stack->logs();
  // Each second's budget of 32-entry pages (and the page that crossed it),
  // every second so far ending in a pause.
  long long calls = xrange_calls() - before;
  double pauses = metric(gw, "boxgate_stream_scan_pauses_total").value_or(0);
  EXPECT_LE(static_cast<double>(calls), (pauses + 1) * (2048 / 32 + 2));
  EXPECT_EQ(pattern.events().size(), 0u);
}

// A token scoped to lab-* asking for box-*: no box can be shown, so its
// catch-up reads nothing (it used to page through all 20k entries).
// Heartbeats start once the catch-up is over. (A pattern that overlaps the
// scope, such as *, scans at the bounded rate above.)
TEST_F(EventBoundsTest, FleetReaderOutsideItsScopeReadsNoHistory) {
  fill_fleet(20000);
  int gw = stack->add_gateway({"--api-tokens", "ci:" + kCiHash + ":lab-*", "--sse-heartbeat-ms", "100"});
  long long before = xrange_calls();
  SseClient fleet(gw, "/v1/events?box=box-*", {{"Authorization", "Bearer secret-ci"}, {"Last-Event-ID", "0-0"}});
  ASSERT_EQ(fleet.status(), 200);
  ASSERT_TRUE(fleet.wait_comments(3, 10s)) << stack->logs();
  EXPECT_EQ(xrange_calls(), before);
  EXPECT_EQ(fleet.events().size(), 0u);
}

}  // namespace
}  // namespace boxgate::itest
