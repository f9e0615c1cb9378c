// Redis credentials on a real redis-server started with
// the shipped config/redis-users.acl: the gateway and the bridge AUTH as
// their own users and run a command end to end with nothing but their grants
// (Redis's ACL LOG records no denial), each user is refused every command and
// key outside its grant, and a wrong password leaves a daemon not ready
// without the password appearing anywhere.

#include <gtest/gtest.h>

#include "itest_env.hpp"
#include "sse_client.hpp"
#include "support/redis_monitor.hpp"

namespace boxgate::itest {
namespace {

using test::RedisClient;
using test::RedisCredentials;
using test::RespValue;

class RedisAclTest : public StackTest {
 protected:
  RedisAclTest() : StackTest(StackOptions{.tag = "redis-acl", .redis_acl = true}) {}

  const test::BoxgateRedisUsers& users() const { return stack->redis_users(); }
  std::vector<std::string> credentials_flags(const RedisCredentials& c) {
    return {"--redis-username", c.user, "--redis-password", c.password};
  }
  // Denials Redis recorded since the start (ACL LOG), one line each.
  std::vector<std::string> acl_denials() {
    RespValue log = stack->redis().client().command({"ACL", "LOG"});
    std::vector<std::string> out;
    for (const auto& entry : log.elements) {
      // Alternating field names and values; the strings say what was refused.
      std::string text;
      for (std::size_t i = 0; i + 1 < entry.elements.size(); i += 2) {
        const std::string& name = entry.elements[i].str;
        if (name == "reason" || name == "object" || name == "username") text += name + "=" + entry.elements[i + 1].str + " ";
      }
      out.push_back(text);
    }
    return out;
  }
};

std::string denial_list(const std::vector<std::string>& denials) {
  std::string out;
  for (const auto& d : denials) out += d + "\n";
  return out;
}

TEST_F(RedisAclTest, GatewayAndBridgeWorkEndToEndWithinTheirGrants) {
  std::vector<std::string> gateway_flags = credentials_flags(users().gateway());
  gateway_flags.insert(gateway_flags.end(), {"--queue-sweep-ms", "200"});  // the sweep runs within the test
  int gw = stack->add_gateway(gateway_flags, /*wait_ready=*/false);
  int br = stack->add_bridge(credentials_flags(users().bridge()), /*wait_ready=*/false);
  Process& gateway = stack->gateway();
  Process& bridge = stack->bridge();
  ASSERT_TRUE(test::wait_ready(gw)) << gateway.log_tail();
  ASSERT_TRUE(test::wait_ready(br)) << bridge.log_tail();
  ProbeDevice device(stack->mqtt_port(), "dev/box-1/request/+", ProbeDevice::echo());

  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1", "timeout_ms=5000"), R"({"method":"ping"})",
                      {{"X-Request-Id", "acl-1"}});
  ASSERT_EQ(r.status, 200) << r.body << r.error << "\n" << gateway.log_tail() << bridge.log_tail();
  EXPECT_EQ(r.json().value("id", ""), "acl-1");
  // The retry is answered from the result key: the gateway's GET.
  HttpResult again = post(*c, command_path("box-1"), R"({"method":"ping"})", {{"X-Request-Id", "acl-1"}});
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.body, r.body);
  // A timeout reads the result key before answering 504: GET once more.
  HttpResult timeout = post(*c, command_path("silent-box", "timeout_ms=300"), R"({"method":"ping"})");
  EXPECT_EQ(timeout.status, 504) << timeout.body;

  // Presence: the bridge's script (EVALSHA, then EVAL after NOSCRIPT on a
  // fresh Redis) and the gateway's HMGET.
  MqttProbe status(stack->mqtt_port());
  test::MqttPublishOptions retained;
  retained.retained = true;
  status.publish("dev/box-1/status", "online", 1, retained);
  auto box_online = [&] { return get(gw, "/v1/devices/box-1").json().value("online", false); };
  EXPECT_TRUE(test::eventually(box_online, 5s)) << bridge.log_tail();
  // Once more, the script now cached: EVALSHA alone.
  status.publish("dev/box-1/status", "offline", 1, retained);
  EXPECT_TRUE(test::eventually([&] { return !box_online(); }, 5s)) << bridge.log_tail();

  // Queued commands: the gateway's queue scripts, list, cancel and sweep;
  // the bridge's wake when the box comes back.
  httplib::Headers async{{"Prefer", "respond-async"}};
  for (const char* id : {"acl-q1", "acl-q2"}) {
    async.erase("X-Request-Id");
    async.emplace("X-Request-Id", id);
    HttpResult queued = post(*c, command_path("box-1", "ttl_ms=60000"), R"({"method":"ping"})", async);
    EXPECT_EQ(queued.status, 202) << queued.body << gateway.log_tail();
  }
  EXPECT_EQ(get(gw, command_path("box-1", "state=queued")).json().at("commands").size(), 2u);
  EXPECT_EQ(c->Delete(command_path("box-1") + "/acl-q2")->status, 200);
  status.publish("dev/box-1/status", "online", 1, retained);
  EXPECT_TRUE(test::eventually(
      [&] { return get(gw, command_path("box-1") + "/acl-q1").json().value("state", "") == "succeeded"; }, 10s))
      << gateway.log_tail() << bridge.log_tail();

  // The data plane: the bridge's EVAL (XADD to both streams), SET and
  // PUBLISH; the gateway's GET, XRANGE, and its event tail's XREVRANGE and XREAD.
  {
    SseClient live(gw, "/v1/devices/box-1/events?after=0");
    ASSERT_EQ(live.status(), 200) << gateway.log_tail();
    MqttProbe sender(stack->mqtt_port());
    sender.publish("dev/box-1/event/boot", R"({"v":1})");
    sender.publish("dev/box-1/state", R"({"on":true})");
    ASSERT_TRUE(live.wait_events(1, 5s)) << bridge.log_tail() << gateway.log_tail();
    EXPECT_TRUE(test::eventually([&] { return get(gw, "/v1/devices/box-1/state").status == 200; }, 5s));
    EXPECT_EQ(get(gw, "/v1/devices/box-1/events").status, 200);
    sender.publish("dev/box-1/event/second", "2");  // now through the tail's XREAD
    EXPECT_TRUE(live.wait_events(2, 5s)) << gateway.log_tail();
  }

  // Both daemons did all of it with their grants: Redis refused nothing.
  std::vector<std::string> denials = acl_denials();
  EXPECT_TRUE(denials.empty()) << denial_list(denials);

  // Who did what, seen by Redis: each connection is its own user.
  RespValue clients = stack->redis().client().command({"CLIENT", "LIST"});
  EXPECT_NE(clients.str.find("user=boxgate-gateway"), std::string::npos) << clients.str;
  EXPECT_NE(clients.str.find("user=boxgate-bridge"), std::string::npos) << clients.str;
  EXPECT_EQ(clients.str.find("user=default"), std::string::npos) << clients.str;

  // The passwords were never written anywhere the daemons write.
  for (const Process* p : {&gateway, &bridge}) {
    std::string log = p->log();
    EXPECT_EQ(log.find(users().gateway_password), std::string::npos) << p->name();
    EXPECT_EQ(log.find(users().bridge_password), std::string::npos) << p->name();
    EXPECT_NE(log.find(R"("redis_password":"***")"), std::string::npos) << p->name();
  }
}

TEST_F(RedisAclTest, EachUserIsRefusedEverythingOutsideItsGrant) {
  struct Case {
    RedisCredentials who;
    std::vector<std::string> command;
    bool allowed;
  };
  const std::vector<Case> cases = {
      // The gateway: GET under the prefix, SET/DEL of command records, DEL of
      // a stored reply no record claims, SUBSCRIBE/UNSUBSCRIBE, PING.
      {users().gateway(), {"GET", "dev/box-1/response/r"}, true},
      {users().gateway(), {"PING"}, true},
      {users().gateway(), {"SET", "dev/box-1/command/r", "{}", "NX", "PX", "1000"}, true},
      {users().gateway(), {"SET", "dev/box-1/command/r", "{}", "XX", "KEEPTTL"}, true},
      {users().gateway(), {"DEL", "dev/box-1/command/r"}, true},
      {users().gateway(), {"DEL", "dev/box-1/response/r"}, true},
      {users().gateway(), {"GET", "other/box-1/response/r"}, false},
      {users().gateway(), {"SET", "dev/box-1/response/r", "forged"}, false},
      {users().gateway(), {"PUBLISH", "dev/box-1/response/r", "forged"}, false},
      {users().gateway(), {"DEL", "other/box-1/command/r"}, false},
      {users().gateway(), {"SET", "other/x", "1"}, false},
      {users().gateway(), {"KEYS", "*"}, false},
      {users().gateway(), {"CONFIG", "GET", "*"}, false},
      {users().gateway(), {"FLUSHALL"}, false},
      {users().gateway(), {"PSUBSCRIBE", "dev/*"}, false},
      // ... and reads the event streams and state.
      {users().gateway(), {"XRANGE", "dev/box-1/events", "-", "+", "COUNT", "10"}, true},
      {users().gateway(), {"XREVRANGE", "dev/events", "+", "-", "COUNT", "1"}, true},
      {users().gateway(), {"XREAD", "COUNT", "1", "STREAMS", "dev/events", "0"}, true},
      {users().gateway(), {"GET", "dev/box-1/state"}, true},
      {users().gateway(), {"XADD", "dev/events", "*", "box", "forged"}, false},
      // Outcomes and webhooks: the gateway appends outcomes and dead letters,
      // reads the streams through its webhook groups, deletes only dead letters.
      {users().gateway(), {"XADD", "dev/commands", "MAXLEN", "~", "10", "*", "box", "b"}, true},
      {users().gateway(), {"XADD", "dev/presence", "*", "box", "forged"}, false},
      {users().gateway(), {"XGROUP", "CREATE", "dev/events", "webhook:x", "$", "MKSTREAM"}, true},
      {users().gateway(), {"XREADGROUP", "GROUP", "webhook:x", "gw", "COUNT", "1", "STREAMS", "dev/events", ">"}, true},
      {users().gateway(), {"XAUTOCLAIM", "dev/events", "webhook:x", "gw", "1000", "0-0", "COUNT", "1"}, true},
      {users().gateway(), {"XGROUP", "DESTROY", "dev/events", "webhook:x"}, false},
      {users().gateway(), {"XDEL", "dev/commands", "1-0"}, false},
      {users().gateway(), {"XDEL", "dev/_webhooks/dead", "1-0"}, true},
      {users().gateway(), {"XRANGE", "other/events", "-", "+"}, false},
      // The per-token rate limit: its script on the token buckets only (an
      // ACL cannot refuse a script without keys; inside one, every call is
      // still held to the user's grant).
      {users().gateway(), {"EVAL", "return redis.call('TIME')[1]", "1", "dev/_tokens/ci/rate"}, true},
      {users().gateway(), {"HSET", "dev/_tokens/ci/rate", "l", "0"}, true},
      {users().gateway(), {"HSET", "dev/box-1/state", "l", "0"}, false},
      // The bridge: SET and PUBLISH under the prefix, PING.
      {users().bridge(), {"SET", "dev/box-1/response/r", "{}", "PX", "1000"}, true},
      {users().bridge(), {"PUBLISH", "dev/box-1/response/r", "{}"}, true},
      {users().bridge(), {"GET", "dev/box-1/response/r"}, false},
      {users().bridge(), {"SET", "other/x", "1"}, false},
      {users().bridge(), {"SET", "dev/box-1/response/r", "{}", "GET"}, false},
      {users().bridge(), {"PUBLISH", "other/x", "1"}, false},
      {users().bridge(), {"SUBSCRIBE", "dev/box-1/response/r"}, false},
      // Presence: the bridge's script on presence hashes only; inside it,
      // each command is checked against the same grants.
      {users().bridge(), {"EVAL", "return redis.call('HSET', KEYS[1], 'online', '1')", "1", "dev/box-1/presence"}, true},
      {users().bridge(), {"HGET", "dev/box-1/presence", "online"}, true},
      {users().bridge(), {"EVAL", "return 1", "1", "dev/box-1/state"}, false},
      // Replies: stored only under an id a gateway issued (EXISTS of its
      // record), which the bridge may test but not read.
      {users().bridge(), {"EXISTS", "dev/box-1/command/r"}, true},
      {users().bridge(), {"GET", "dev/box-1/command/r"}, false},
      {users().bridge(), {"EXISTS", "dev/box-1/response/r"}, false},
      {users().bridge(), {"EXISTS", "other/box-1/command/r"}, false},
      {users().bridge(), {"EVAL", "return redis.call('GET', KEYS[1])", "1", "dev/box-1/presence"}, false},
      {users().bridge(), {"EVAL", "return redis.call('DEL', 'dev/box-1/presence')", "0"}, false},
      {users().bridge(), {"HSET", "dev/box-1/response/r", "a", "1"}, false},
      {users().bridge(), {"HSET", "other/box-1/presence", "online", "1"}, false},
      {users().bridge(), {"SCRIPT", "FLUSH"}, false},
      {users().bridge(), {"HGETALL", "dev/box-1/presence"}, false},
      {users().gateway(), {"HMGET", "dev/box-1/presence", "online", "since"}, true},
      {users().gateway(), {"HMGET", "dev/box-1/response/r", "online"}, false},
      {users().gateway(), {"HSET", "dev/box-1/presence", "online", "0"}, false},
      {users().gateway(), {"EVAL", "return 1", "1", "dev/box-1/presence"}, false},
      // Events: EVAL (the two XADDs in one script) and XADD on the streams;
      // the trim reads the oldest entries' sizes and keeps a byte count.
      {users().bridge(), {"EVAL", "return 1", "0"}, true},
      {users().bridge(), {"XADD", "dev/events", "MAXLEN", "~", "10", "*", "box", "b"}, true},
      {users().bridge(), {"XADD", "dev/box-1/events", "*", "box", "b"}, true},
      {users().bridge(), {"SET", "dev/box-1/state", "{}"}, true},
      {users().bridge(), {"XADD", "other/events", "*", "box", "b"}, false},
      {users().bridge(), {"XADD", "dev/commands", "MAXLEN", "~", "10", "*", "box", "b"}, true},
      {users().bridge(), {"XADD", "dev/presence", "MAXLEN", "~", "10", "*", "box", "b"}, true},
      {users().bridge(), {"XADD", "dev/_webhooks/dead", "*", "box", "b"}, false},
      {users().bridge(), {"XRANGE", "dev/events", "-", "+", "COUNT", "1"}, true},
      {users().bridge(), {"XTRIM", "dev/box-1/events", "MAXLEN", "10"}, true},
      {users().bridge(), {"HSET", "dev/events/bytes{dev/events}", "bytes", "1"}, true},
      {users().bridge(), {"HMGET", "dev/box-1/events/bytes{dev/box-1/events}", "bytes", "first"}, true},
      {users().bridge(), {"HSET", "dev/box-1/state", "bytes", "1"}, false},
      {users().bridge(), {"XRANGE", "other/events", "-", "+"}, false},
      {users().bridge(), {"XREAD", "STREAMS", "dev/events", "0"}, false},
      {users().bridge(), {"FLUSHALL"}, false},
      // Sentinel mode's handshake and heartbeat: ROLE, and no other admin command.
      {users().gateway(), {"ROLE"}, true},
      {users().bridge(), {"ROLE"}, true},
      {users().gateway(), {"REPLICAOF", "NO", "ONE"}, false},
      {users().bridge(), {"INFO", "replication"}, false},
  };
  for (const auto& tc : cases) {
    std::string label = tc.who.user;
    for (const auto& a : tc.command) label += " " + a;
    SCOPED_TRACE(label);
    RedisClient conn(stack->redis().port(), 5s, tc.who);
    RespValue reply = conn.command(tc.command);
    if (tc.allowed) {
      EXPECT_NE(reply.type, RespValue::Type::error) << reply.str;
    } else {
      ASSERT_EQ(reply.type, RespValue::Type::error);
      // A command refused inside a script fails the script with its own error.
      bool refused = reply.str.rfind("NOPERM", 0) == 0 ||
                     reply.str.find("The user executing the script can't run this command") != std::string::npos;
      EXPECT_TRUE(refused) << reply.str;
    }
  }
  // A script runs with the bridge's grants, no more: what the user may not
  // do directly, it may not do from Lua either.
  {
    RedisClient br(stack->redis().port(), 5s, users().bridge());
    for (const char* script : {"return redis.call('GET', KEYS[1])", "return redis.call('FLUSHALL')",
                               "return redis.call('XADD', KEYS[1], '*', 'a', 'b')"}) {
      SCOPED_TRACE(script);
      RespValue reply = br.command({"EVAL", script, "1", std::string(script).find("XADD") != std::string::npos ? "other/events" : "dev/x"});
      EXPECT_EQ(reply.type, RespValue::Type::error) << reply.str;
    }
  }
  // A subscription outside the prefix is refused too (its own reply shape).
  RedisClient gw(stack->redis().port(), 5s, users().gateway());
  RespValue sub = gw.command({"SUBSCRIBE", "other/box-1/response/r"});
  EXPECT_EQ(sub.type, RespValue::Type::error) << sub.str;
  // Without credentials, nothing.
  RedisClient anonymous(stack->redis().port());
  RespValue ping = anonymous.command({"PING"});
  ASSERT_EQ(ping.type, RespValue::Type::error);
  EXPECT_EQ(ping.str.rfind("NOAUTH", 0), 0u) << ping.str;
}

TEST_F(RedisAclTest, WrongPasswordIsNotReadyAndNeverLogged) {
  const std::string wrong = "not-the-gateway-password-5kq";
  // The password from the environment, as docs/security.md recommends.
  int gw = stack->add_gateway({"--redis-username", "boxgate-gateway"}, /*wait_ready=*/false,
                              {"BOXGATE_REDIS_PASSWORD=" + wrong});
  Process& gateway = stack->gateway();
  ASSERT_TRUE(gateway.wait_for_log("Redis refused AUTH as 'boxgate-gateway': WRONGPASS", 10s)) << gateway.log_tail();
  HttpResult ready = get(gw, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(ready.json().value("redis", ""), "down") << ready.body;
  auto c = client(gw);
  EXPECT_EQ(post(*c, command_path("box-1"), R"({"method":"ping"})").error_code(), "redis_unavailable");
  EXPECT_EQ(gateway.log().find(wrong), std::string::npos) << gateway.log_tail();
  EXPECT_EQ(ready.body.find(wrong), std::string::npos);

  // --help shows no secret either, whatever the environment holds.
  Process help("gateway-help", {test::gateway_binary(), "--help"}, stack->tmp().path(), {"BOXGATE_REDIS_PASSWORD=" + wrong});
  EXPECT_EQ(help.wait_exit(10s), 0);
  EXPECT_NE(help.log().find("--redis-password  (secret, not shown"), std::string::npos) << help.log();
  EXPECT_EQ(help.log().find(wrong), std::string::npos);
}

}  // namespace
}  // namespace boxgate::itest
