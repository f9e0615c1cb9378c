// Per-token limits on real processes (docs/security.md, "Per-token
// limits"): one token that fills its share of the pending commands or of
// the event streams does not stop another token's; the request rate of a
// token is one bucket in Redis for every gateway (429 rate_limited with
// Retry-After, refilled over time); SIGHUP reloads the token file without
// dropping an open stream, and a bad file keeps the tokens in force.
//
// The limits are set through BOXGATE_* variables, not flags: a gateway that
// does not know them still starts, so these tests fail on what they check.

#include <gtest/gtest.h>

#include <csignal>

#include "itest_env.hpp"
#include "sse_client.hpp"

namespace boxgate::itest {
namespace {

// printf %s fair-a | sha256sum (and so on).
const std::string kFairAHash = "e82802f189634a18f43a997079bb577b8edde9b057009066e18672a4b5aa5ace";
const std::string kFairBHash = "346ba05d78e19debe3aa2ebb535bdd93bb40162ac1221a1915825f9d5b52a01e";
const std::string kFairCHash = "5245872d7fd20cb82238c0c86afdea8c1038efa5355645cc54f576379ed3713e";

std::string fair_token(const std::string& name, const std::string& hash) {
  return R"({"name":")" + name + R"(","sha256":")" + hash + R"(","scopes":["*"]})";
}

// Tokens fair-a and fair-b, both for every box.
const std::string kFairTokensAB = "[" + fair_token("a", kFairAHash) + "," + fair_token("b", kFairBHash) + "]";

httplib::Headers fair_bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }
std::map<std::string, std::string> fair_stream_headers(const std::string& token) {
  return {{"Authorization", "Bearer " + token}};
}

class FairnessTest : public StackTest {
 protected:
  FairnessTest() : StackTest("fairness") {}
  std::string token_file(const std::string& json) { return stack->tmp().write("tokens.json", json); }
};

TEST_F(FairnessTest, OneTokenFillingItsPendingShareDoesNotStopAnothersCommand) {
  // max_pending 8: each token may hold a quarter of it, 2.
  int gw = stack->add_gateway({"--api-tokens", token_file(kFairTokensAB), "--max-pending", "8"}, true,
                              {"BOXGATE_TOKEN_RATE=0"});
  ProbeDevice device(stack->mqtt_port(), "dev/b-1/request/+", ProbeDevice::echo());
  stack->add_bridge();
  auto c = client(gw);
  // Async commands to a box nobody answers: each holds a pending slot for
  // its timeout. Token a tries to take all 8.
  httplib::Headers async = fair_bearer("fair-a");
  async.emplace("Prefer", "respond-async");
  std::vector<int> statuses;
  HttpResult refused;
  for (int i = 0; i < 8; ++i) {
    HttpResult r = post(*c, command_path("a-1", "timeout_ms=60000"), kPing, async);
    statuses.push_back(r.status);
    if (r.status != 202) {
      refused = r;
      break;
    }
  }
  ASSERT_EQ(statuses, (std::vector<int>{202, 202, 429})) << refused.body << stack->logs();
  EXPECT_EQ(refused.error_code(), "token_pending_full") << refused.body;
  EXPECT_EQ(refused.header("Retry-After"), "1");
  // Token b still has its share: its command runs.
  HttpResult other = post(*c, command_path("b-1"), kPing, fair_bearer("fair-b"));
  EXPECT_EQ(other.status, 200) << other.body;
  EXPECT_EQ(metric(gw, R"(boxgate_commands_total{outcome="token_pending_full"})"), 1.0);
}

TEST_F(FairnessTest, OneTokensStreamsDoNotTakeAnothers) {
  // max_streams 4: each token may hold a quarter of them, 1.
  int gw = stack->add_gateway({"--api-tokens", token_file(kFairTokensAB), "--max-streams", "4"}, true,
                              {"BOXGATE_TOKEN_RATE=0"});
  std::vector<std::unique_ptr<SseClient>> streams;
  int refused_status = 0;
  for (int i = 0; i < 4; ++i) {
    streams.push_back(std::make_unique<SseClient>(gw, "/v1/devices/a-" + std::to_string(i) + "/events",
                                                  fair_stream_headers("fair-a")));
    refused_status = streams.back()->status();
    if (refused_status != 200) break;
  }
  ASSERT_EQ(streams.size(), 2u) << "token a opened " << streams.size() << " streams";
  EXPECT_EQ(refused_status, 429);
  EXPECT_NE(streams.back()->body().find("token_streams_full"), std::string::npos) << streams.back()->body();
  // The fleet stream counts against the same share.
  SseClient fleet(gw, "/v1/events", fair_stream_headers("fair-a"));
  EXPECT_EQ(fleet.status(), 429);
  SseClient other(gw, "/v1/devices/b-1/events", fair_stream_headers("fair-b"));
  EXPECT_EQ(other.status(), 200) << other.body();
  // A stream that ends gives its slot back.
  streams.front().reset();
  EXPECT_TRUE(test::eventually(
      [&] { return SseClient(gw, "/v1/events", fair_stream_headers("fair-a")).status() == 200; }, 5s));
}

TEST_F(FairnessTest, TheRateLimitIsSharedByTwoGatewaysAndRefills) {
  // One request a second, up to 4 at once, per token, across both gateways.
  const std::vector<std::string> env = {"BOXGATE_TOKEN_RATE=1", "BOXGATE_TOKEN_BURST=4"};
  int gw1 = stack->add_gateway({"--api-tokens", token_file(kFairTokensAB)}, true, env);
  int gw2 = stack->add_gateway({"--api-tokens", token_file(kFairTokensAB)}, true, env);
  auto c1 = client(gw1);
  auto c2 = client(gw2);
  const std::string state = "/v1/devices/a-1/state";
  // The burst, spread over both gateways (no state stored: 404 no_state).
  for (int i = 0; i < 4; ++i) {
    HttpResult r = get(i % 2 ? *c2 : *c1, state, fair_bearer("fair-a"));
    ASSERT_EQ(r.status, 404) << i << ": " << r.body;
  }
  // The bucket is empty on both.
  for (auto* c : {c1.get(), c2.get()}) {
    HttpResult r = get(*c, state, fair_bearer("fair-a"));
    ASSERT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(r.error_code(), "rate_limited");
    EXPECT_EQ(r.header("Retry-After"), "1");
    EXPECT_EQ(r.json().value("box_id", ""), "a-1");
  }
  // Another token has its own bucket.
  EXPECT_EQ(get(*c2, state, fair_bearer("fair-b")).status, 404);
  EXPECT_GE(metric(gw1, "boxgate_rate_limited_total").value_or(0), 1.0);
  // It refills: a second later a request goes through again.
  EXPECT_TRUE(test::eventually([&] { return get(*c2, state, fair_bearer("fair-a")).status == 404; }, 5s, 200ms));
  // One key per token, which expires once the bucket would be full again.
  test::RedisClient redis(stack->redis().port());
  long long ttl = redis.pttl("dev/_tokens/a/rate");
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 5000);
}

TEST_F(FairnessTest, SighupReloadsTokensWithoutDroppingAKeptTokensStream) {
  std::string file = token_file(kFairTokensAB);
  int gw = stack->add_gateway({"--api-tokens", file}, true, {"BOXGATE_SSE_HEARTBEAT_MS=50"});
  auto c = client(gw);
  const std::string state = "/v1/devices/a-1/state";
  SseClient kept(gw, "/v1/devices/a-1/events", fair_stream_headers("fair-a"));
  ASSERT_EQ(kept.status(), 200);
  EXPECT_EQ(get(*c, state, fair_bearer("fair-c")).status, 401);

  // b out, c in.
  stack->tmp().write("tokens.json", "[" + fair_token("a", kFairAHash) + "," + fair_token("c", kFairCHash) + "]");
  std::size_t from = stack->gateway().log_size();
  stack->gateway().signal(SIGHUP);
  ASSERT_TRUE(stack->gateway().wait_for_log("token file reloaded, 2 tokens", 5s, from)) << stack->logs();
  EXPECT_EQ(get(*c, state, fair_bearer("fair-c")).status, 404);
  EXPECT_EQ(get(*c, state, fair_bearer("fair-b")).status, 401);
  EXPECT_EQ(get(*c, state, fair_bearer("fair-a")).status, 404);
  // The stream opened before the reload is still served (its heartbeats go on).
  std::size_t beats = kept.comments();
  EXPECT_TRUE(kept.wait_comments(beats + 3, 5s));
  EXPECT_FALSE(kept.closed());

  // A malformed file, then one that would open the API: both keep a and c.
  for (const std::string& bad : {std::string("[{\"name\":"), std::string("[]")}) {
    SCOPED_TRACE(bad);
    stack->tmp().write("tokens.json", bad);
    from = stack->gateway().log_size();
    stack->gateway().signal(SIGHUP);
    ASSERT_TRUE(stack->gateway().wait_for_log("token file not reloaded, keeping the 2 tokens in force", 5s, from))
        << stack->logs();
    EXPECT_EQ(get(*c, state, fair_bearer("fair-c")).status, 404);
    EXPECT_EQ(get(*c, state, {}).status, 401);
  }
  EXPECT_TRUE(stack->gateway().running());
  EXPECT_FALSE(kept.closed());
}

}  // namespace
}  // namespace boxgate::itest
