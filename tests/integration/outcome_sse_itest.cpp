// The outcome stream live over HTTP on real processes (docs/events.md,
// "Outcomes"; docs/contract.md): GET /v1/commands with Accept:
// text/event-stream shows each command state change as it is written, with
// the stream id as the SSE id, resumes after Last-Event-ID with nothing
// twice and nothing missing, filters by box pattern and token scope, counts
// in the one max_streams (and token share) with the event streams, and
// answers 406 to a caller that does not ask for a stream.

#include <gtest/gtest.h>

#include <csignal>
#include <set>
#include <thread>

#include <nlohmann/json.hpp>

#include "itest_env.hpp"
#include "sse_client.hpp"

namespace boxgate::itest {
namespace {
// Its own names: the test files are compiled in batches (unity build).
namespace outcome_sse {

using namespace std::chrono_literals;

// As auth_itest.cpp: sha256("secret-ci") and sha256("secret-ops").
const std::string kOpsHash = "1e626bcab8c43d59e0ea641629da784e4b3b0d7633af589ee757187cdbfa8ffd";
const std::string kSiteTokens = "ci:" + kCiHash + ":site1-*,ops:" + kOpsHash + ":*";
const std::map<std::string, std::string> kCi = {{"Authorization", "Bearer secret-ci"}};
const std::map<std::string, std::string> kOps = {{"Authorization", "Bearer secret-ops"}};

// One SSE event as the test reads it: its id, state and request id.
struct Seen {
  std::string id;
  std::string state;
  std::string request_id;
  std::string box;
  bool operator==(const Seen&) const = default;
};

std::vector<Seen> seen(const SseClient& stream) {
  std::vector<Seen> out;
  for (const SseEvent& e : stream.events()) {
    auto payload = nlohmann::json::parse(e.data);
    out.push_back({e.id, e.event, payload.value("request_id", ""), payload.value("box", "")});
  }
  return out;
}

std::ostream& operator<<(std::ostream& os, const Seen& s) {
  return os << s.id << " " << s.state << " " << s.request_id << " " << s.box;
}

class OutcomeSseTest : public StackTest {
 protected:
  OutcomeSseTest() : StackTest("outcome-sse") {}

  // The gateway's reader of the outcome stream has its position (logged at
  // debug, once): a stream that joins it from then on gets every later entry.
  bool tail_positioned() { return stack->gateway().wait_for_log("outcome stream reader positioned", 5s); }

  // A synchronous command answered by the probe device: pending, then succeeded.
  void command(int gw, const std::string& box, const std::string& request_id,
               const httplib::Headers& auth = {}) {
    auto c = client(gw);
    httplib::Headers headers = auth;
    headers.emplace("X-Request-Id", request_id);
    HttpResult r = post(*c, command_path(box), R"({"method":"noop"})", headers);
    ASSERT_EQ(r.status, 200) << r.body << stack->logs();
  }

  // The outcome stream as Redis holds it, after `after` (every entry).
  std::vector<Seen> stored(const std::string& after = "-") {
    std::vector<Seen> out;
    auto reply = stack->redis().client().command({"XRANGE", "dev/commands", after == "-" ? "-" : "(" + after, "+"});
    for (const auto& e : reply.elements) {
      Seen s{e.elements.at(0).str, {}, {}, {}};
      const auto& fields = e.elements.at(1).elements;
      for (std::size_t i = 0; i + 1 < fields.size(); i += 2) {
        if (fields[i].str == "name") s.state = fields[i + 1].str;
        if (fields[i].str == "payload") s.request_id = nlohmann::json::parse(fields[i + 1].str).value("request_id", "");
        if (fields[i].str == "box") s.box = fields[i + 1].str;
      }
      out.push_back(std::move(s));
    }
    return out;
  }

  // Waits until the outcome stream holds `count` entries (the bridge writes
  // `succeeded` after the gateway answered).
  void wait_stored(std::size_t count) {
    ASSERT_TRUE(test::eventually([&] { return stored().size() == count; }, 10s))
        << stored().size() << " entries\n" << stack->logs();
  }
};

TEST_F(OutcomeSseTest, PendingThenSucceededArriveLiveInOrderWithIds) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  SseClient stream(gw, "/v1/commands?box=box-1");
  ASSERT_EQ(stream.status(), 200);
  EXPECT_NE(stream.headers().find("text/event-stream"), std::string::npos) << stream.headers();
  ASSERT_TRUE(tail_positioned()) << stack->logs();
  command(gw, "box-2", "other-1");  // another box's: never shown
  command(gw, "box-1", "s-1");
  ASSERT_TRUE(stream.wait_events(2, 5s)) << stack->logs();
  wait_stored(4);
  std::vector<Seen> got = seen(stream);
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[0].state, "pending");
  EXPECT_EQ(got[1].state, "succeeded");
  for (const Seen& s : got) {
    EXPECT_EQ(s.request_id, "s-1");
    EXPECT_EQ(s.box, "box-1");
  }
  // The SSE ids are the outcome stream's own ids, in its order.
  std::vector<Seen> mine;
  for (const Seen& s : stored()) {
    if (s.box == "box-1") mine.push_back(s);
  }
  EXPECT_EQ(got, mine);
  EXPECT_EQ(metric(gw, R"(boxgate_streams_opened_total{kind="commands"})"), 1.0);
  EXPECT_EQ(metric(gw, R"(boxgate_event_tail_events_total{stream="commands"})"), 4.0);
  EXPECT_EQ(metric(gw, R"(boxgate_event_tail_events_total{stream="events"})").value_or(0), 0.0);
}

TEST_F(OutcomeSseTest, ResumesAfterLastEventIdWithNothingTwiceAndNothingMissing) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  command(gw, "box-1", "r-1");
  command(gw, "box-1", "r-2");
  wait_stored(4);
  std::vector<Seen> first;
  {
    SseClient stream(gw, "/v1/commands?box=box-1&after=0");
    ASSERT_TRUE(stream.wait_events(4, 5s)) << stack->logs();
    first = seen(stream);
  }
  EXPECT_EQ(first, stored());
  // Gone for a while: two more commands meanwhile.
  command(gw, "box-1", "r-3");
  command(gw, "box-1", "r-4");
  wait_stored(8);
  SseClient resumed(gw, "/v1/commands?box=box-1", {{"Last-Event-ID", first.back().id}});
  ASSERT_EQ(resumed.status(), 200);
  ASSERT_TRUE(resumed.wait_events(4, 5s)) << stack->logs();
  EXPECT_EQ(seen(resumed), stored(first.back().id));
  // Then live ones: r-5 is the fence (a repeat would come before it).
  ASSERT_TRUE(tail_positioned()) << stack->logs();
  command(gw, "box-1", "r-5");
  wait_stored(10);
  ASSERT_TRUE(resumed.wait_events(6, 5s)) << stack->logs();
  std::vector<Seen> all = seen(resumed);
  ASSERT_EQ(all.size(), 6u);
  EXPECT_EQ(all, stored(first.back().id));
  EXPECT_EQ(all[4].request_id, "r-5");
  EXPECT_EQ(all[5].state, "succeeded");
  EXPECT_EQ(SseClient(gw, "/v1/commands", {{"Last-Event-ID", "x"}}).status(), 400);
}

TEST_F(OutcomeSseTest, BoxPatternAndTokenScopeFilterWhatIsShown) {
  int gw = stack->add_gateway({"--api-tokens", kSiteTokens});
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  const httplib::Headers ops = {{"Authorization", "Bearer secret-ops"}};
  EXPECT_EQ(SseClient(gw, "/v1/commands").status(), 401);
  EXPECT_EQ(SseClient(gw, "/v1/commands", {{"Authorization", "Bearer wrong"}}).status(), 401);
  // Stored before the streams open: read by their catch-up.
  command(gw, "site1-a", "old-1", ops);
  command(gw, "site2-b", "old-2", ops);
  wait_stored(4);

  SseClient everything(gw, "/v1/commands?after=0", kOps);
  SseClient scoped(gw, "/v1/commands?after=0", kCi);           // the token sees site1-* only
  SseClient outside(gw, "/v1/commands?box=site2-*&after=0", kCi);  // a pattern outside its scope: nothing
  SseClient site2(gw, "/v1/commands?box=site2-*&after=0", kOps);
  for (SseClient* s : {&everything, &scoped, &outside, &site2}) ASSERT_EQ(s->status(), 200);
  ASSERT_TRUE(tail_positioned()) << stack->logs();
  command(gw, "site1-a", "new-1", ops);
  command(gw, "site2-b", "new-2", ops);
  wait_stored(8);
  // `everything` is the fence: once it has all 8, the others had theirs.
  ASSERT_TRUE(everything.wait_events(8, 5s)) << stack->logs();
  ASSERT_TRUE(scoped.wait_events(4, 5s)) << stack->logs();
  ASSERT_TRUE(site2.wait_events(4, 5s)) << stack->logs();
  // The point of this pause: proving that nothing outside the scope or the
  // pattern arrives within a window (there is no later entry to fence with).
  std::this_thread::sleep_for(300ms);
  auto boxes = [](const SseClient& s) {
    std::set<std::string> out;
    for (const Seen& e : seen(s)) out.insert(e.box);
    return out;
  };
  EXPECT_EQ(seen(everything), stored());
  EXPECT_EQ(scoped.events().size(), 4u);
  EXPECT_EQ(boxes(scoped), (std::set<std::string>{"site1-a"}));
  EXPECT_EQ(outside.events().size(), 0u);
  EXPECT_EQ(site2.events().size(), 4u);
  EXPECT_EQ(boxes(site2), (std::set<std::string>{"site2-b"}));
  EXPECT_EQ(SseClient(gw, "/v1/commands?box=a*b", kCi).status(), 400);
}

TEST_F(OutcomeSseTest, MaxStreamsCountsEventAndOutcomeStreamsTogether) {
  int gw = stack->add_gateway({"--max-streams", "1"});
  {
    SseClient events(gw, "/v1/events");
    ASSERT_EQ(events.status(), 200);
    SseClient outcomes(gw, "/v1/commands");
    EXPECT_EQ(outcomes.status(), 429);
    EXPECT_TRUE(test::eventually([&] { return outcomes.body().find("too_many_streams") != std::string::npos; }, 2s))
        << outcomes.body();
  }
  EXPECT_TRUE(test::eventually([&] { return metric(gw, "boxgate_streams_open") == 0.0; }, 5s));
  {
    SseClient outcomes(gw, "/v1/commands");
    ASSERT_EQ(outcomes.status(), 200);
    SseClient box(gw, "/v1/devices/box-1/events");
    EXPECT_EQ(box.status(), 429);
  }
  EXPECT_EQ(metric(gw, "boxgate_streams_refused_total"), 2.0);
}

TEST_F(OutcomeSseTest, ATokensShareOfStreamsCountsBothKinds) {
  int gw = stack->add_gateway({"--api-tokens", kSiteTokens, "--token-max-streams", "1"});
  SseClient events(gw, "/v1/events", kCi);
  ASSERT_EQ(events.status(), 200);
  SseClient outcomes(gw, "/v1/commands", kCi);
  EXPECT_EQ(outcomes.status(), 429);
  EXPECT_TRUE(test::eventually([&] { return outcomes.body().find("token_streams_full") != std::string::npos; }, 2s))
      << outcomes.body();
  SseClient other(gw, "/v1/commands", kOps);  // another token's share
  EXPECT_EQ(other.status(), 200);
}

TEST_F(OutcomeSseTest, WithoutAcceptEventStreamIs406) {
  int gw = stack->add_gateway();
  HttpResult plain = get(gw, "/v1/commands");
  EXPECT_EQ(plain.status, 406) << plain.body;
  EXPECT_EQ(plain.error_code(), "not_acceptable");
  SseClient bad(gw, "/v1/commands?box=a%2Fb");
  EXPECT_EQ(bad.status(), 400);
  EXPECT_EQ(get(gw, "/v1/commands?since=1").error_code(), "invalid_query");
  EXPECT_EQ(metric(gw, "boxgate_streams_open"), 0.0);
}

// The drain ends outcome streams as it ends event streams (their clients
// reconnect to another replica), while a command in flight still holds the
// gateway open.
TEST_F(OutcomeSseTest, DrainClosesOutcomeStreams) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/box-1/request/+");  // receives, never answers
  SseClient outcomes(gw, "/v1/commands");
  SseClient events(gw, "/v1/events");
  ASSERT_EQ(outcomes.status(), 200);
  ASSERT_EQ(events.status(), 200);
  HttpResult waited;
  std::thread caller([&] {
    auto c = client(gw);
    waited = post(*c, command_path("box-1", "timeout_ms=3000"), R"({"method":"noop"})");
  });
  ASSERT_TRUE(test::eventually([&] { return device.messages().size() == 1; }, 5s)) << stack->logs();
  stack->gateway().signal(SIGTERM);
  EXPECT_TRUE(outcomes.wait_closed(2s)) << stack->logs();
  EXPECT_TRUE(events.wait_closed(2s)) << stack->logs();
  EXPECT_TRUE(stack->gateway().running()) << "the drain waits for the command in flight";
  caller.join();
  EXPECT_GT(waited.status, 0) << waited.body;  // answered, whichever way the drain ended it
}

}  // namespace outcome_sse
}  // namespace
}  // namespace boxgate::itest
