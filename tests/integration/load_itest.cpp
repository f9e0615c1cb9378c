// Many commands at once: none lost, none crossed, each reply forwarded once,
// also with two gateways and two bridges in a shared-subscription group.

#include <gtest/gtest.h>

#include <mutex>
#include <set>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

constexpr int kBoxes = 32;

struct Outcome {
  int status = -1;
  std::string problem;  // "" when the reply is the one for this request
};

// Sends command `i` on `c` and checks that the reply is its own: devsim
// answers {"id":<id>,"result":{"box":<box>,"echo":<params>,"method":...}}.
Outcome send_one(httplib::Client& c, int i, bool give_id) {
  const std::string box = "box-" + std::to_string(i % kBoxes + 1);
  httplib::Headers headers;
  if (give_id) headers.emplace("X-Request-Id", "load-" + std::to_string(i));
  HttpResult r = post(c, command_path(box), R"({"method":"m","params":{"i":)" + std::to_string(i) + "}}", headers);
  Outcome out{r.status, ""};
  if (r.status != 200) {
    out.problem = "command " + std::to_string(i) + ": " + std::to_string(r.status) + " " + r.body + r.error;
    return out;
  }
  auto body = r.json();
  const std::string id = r.header("X-Request-Id");
  if (give_id && id != "load-" + std::to_string(i)) out.problem = "wrong X-Request-Id " + id;
  if (!body.is_object() || body.value("id", "") != id) out.problem = "body id differs from " + id + ": " + r.body;
  if (body.is_object() && (body["result"]["box"] != box || body["result"]["echo"]["i"] != i)) {
    out.problem = "reply of another command for " + std::to_string(i) + ": " + r.body;
  }
  return out;
}

// Runs `total` commands from `threads` threads, each with its own keep-alive
// client on ports[thread % ports.size()]. Returns the problems found.
std::vector<std::string> run_load(const std::vector<int>& ports, int total, int threads) {
  std::mutex mu;
  std::vector<std::string> problems;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      auto c = client(ports[static_cast<std::size_t>(t) % ports.size()]);
      for (int i = t; i < total; i += threads) {
        Outcome o = send_one(*c, i, i % 2 == 0);
        std::lock_guard lock(mu);
        if (!o.problem.empty()) problems.push_back(o.problem);
      }
    });
  }
  for (auto& w : workers) w.join();
  return problems;
}

class LoadTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (stack) stack->stop_daemons_and_check();
    stack.reset();
  }
  std::unique_ptr<Stack> stack;
};

TEST_F(LoadTest, ThousandCommandsFrom32ClientsAllAnsweredWithTheirOwnReply) {
  stack = std::make_unique<Stack>("load");
  int gw = stack->add_gateway();
  stack->add_bridge();
  stack->add_devsim({"--boxes", std::to_string(kBoxes), "--delay-ms", "0"});

  auto started = std::chrono::steady_clock::now();
  auto problems = run_load({gw}, 1000, 32);
  auto took = std::chrono::steady_clock::now() - started;
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front() << "\n" << stack->logs();
  std::cerr << "1000 commands in " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";

  EXPECT_EQ(metric(gw, R"(boxgate_commands_total{outcome="ok"})"), 1000.0);
  EXPECT_EQ(metric(gw, "boxgate_commands_pending"), 0.0);
  // The bridge counts a reply when Redis acknowledged it, maybe after the gateway had it.
  EXPECT_TRUE(test::eventually(
      [&] { return metric(stack->bridge_port(), "boxgate_replies_forwarded_total") == 1000.0; }, 2s))
      << metric(stack->bridge_port(), "boxgate_replies_forwarded_total").value_or(-1);
}

TEST_F(LoadTest, TwoGatewaysTwoBridgesInAShareGroupForwardEachReplyOnce) {
  stack = std::make_unique<Stack>("share");
  int gw1 = stack->add_gateway();
  int gw2 = stack->add_gateway();
  int br1 = stack->add_bridge({"--share-group", "g1"});
  int br2 = stack->add_bridge({"--share-group", "g1"});
  stack->add_devsim({"--boxes", std::to_string(kBoxes), "--delay-ms", "0"});
  test::Subscriber replies(stack->redis().port());
  replies.psubscribe("dev/*/response/*");

  auto problems = run_load({gw1, gw2}, 500, 16);
  EXPECT_TRUE(problems.empty()) << problems.size() << " problems, first: " << problems.front() << "\n" << stack->logs();

  // Exactly one PUBLISH per reply: 500 arrive, and no 501st follows.
  EXPECT_TRUE(replies.wait_for(500, 5s)) << replies.count();
  EXPECT_FALSE(replies.wait_for(501, 500ms)) << "a reply was published twice";
  std::set<std::string> channels;
  for (const auto& m : replies.messages()) channels.insert(m.channel);
  EXPECT_EQ(channels.size(), 500u) << "distinct reply channels";

  std::optional<double> f1, f2;
  EXPECT_TRUE(test::eventually(
      [&] {
        f1 = metric(br1, "boxgate_replies_forwarded_total");
        f2 = metric(br2, "boxgate_replies_forwarded_total");
        return f1 && f2 && *f1 + *f2 == 500.0;
      },
      2s));
  ASSERT_TRUE(f1 && f2);
  EXPECT_GT(*f1, 0.0) << "bridge 1 forwarded nothing";
  EXPECT_GT(*f2, 0.0) << "bridge 2 forwarded nothing";
  EXPECT_EQ(*f1 + *f2, 500.0);
  std::cerr << "bridge 1 forwarded " << *f1 << ", bridge 2 " << *f2 << "\n";

  auto ok1 = metric(gw1, R"(boxgate_commands_total{outcome="ok"})");
  auto ok2 = metric(gw2, R"(boxgate_commands_total{outcome="ok"})");
  ASSERT_TRUE(ok1 && ok2);
  EXPECT_EQ(*ok1 + *ok2, 500.0);
  EXPECT_GT(*ok1, 0.0);
  EXPECT_GT(*ok2, 0.0);
}

}  // namespace
}  // namespace boxgate::itest
