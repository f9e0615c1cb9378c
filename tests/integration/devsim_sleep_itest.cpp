// devsim's sleep mode and command log on real processes: 20 boxes on 4
// connections (no wills) all go offline in the bridge's presence hashes,
// stay away, come back, and a command sent once they are awake is in the
// command log with the moment its box came back online.

#include <gtest/gtest.h>

#include <sstream>

#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

constexpr int kBoxes = 20;

class DevsimSleepTest : public StackTest {
 protected:
  DevsimSleepTest() : StackTest("devsim-sleep") {}

  // The bridge's view of `box`: "1", "0", or "" before the first status.
  std::string presence(int box) {
    test::RespValue online =
        stack->redis().client().command({"HGET", "dev/box-" + std::to_string(box) + "/presence", "online"});
    return online.is_nil() ? "" : online.str;
  }
  // Waits until every box's presence is `state`; names the first that is not.
  ::testing::AssertionResult all_presence(const std::string& state, std::chrono::milliseconds timeout) {
    int lagging = 0;
    bool reached = test::eventually(
        [&] {
          for (int box = 1; box <= kBoxes; ++box) {
            if (presence(box) != state) {
              lagging = box;
              return false;
            }
          }
          return true;
        },
        timeout);
    if (reached) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "box-" << lagging << " presence is '" << presence(lagging)
                                         << "', not '" << state << "'\n"
                                         << stack->logs();
  }
  static std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  // The command log's line for request `id`, parsed (null when absent).
  static nlohmann::json logged(const std::string& path, const std::string& id) {
    std::istringstream lines(test::read_file(path));
    for (std::string line; std::getline(lines, line);) {
      auto entry = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (entry.is_object() && entry.value("id", "") == id) return entry;
    }
    return nullptr;
  }
};

TEST_F(DevsimSleepTest, TheFleetGoesOfflineComesBackAndLogsItsCommands) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  const std::string log_path = stack->tmp().file("commands.jsonl");
  // Long enough phases for the test to see every box in each state while
  // polling Redis every 20 ms.
  Process& devsim = stack->devsim(stack->add_devsim({"--boxes", std::to_string(kBoxes), "--clients", "4",
                                                     "--sleep-after-ms", "2000", "--sleep-for-ms", "2000",
                                                     "--wake-window-ms", "500", "--command-log", log_path}));
  ASSERT_TRUE(all_presence("1", 10s));

  // Four connections of five boxes leave no will: only the announced
  // `offline` can take them offline.
  ASSERT_TRUE(all_presence("0", 10s));
  const std::int64_t all_offline = now_ms();
  EXPECT_TRUE(devsim.wait_for_log("fleet asleep: 20 boxes offline", 5s)) << devsim.log_tail();

  ASSERT_TRUE(all_presence("1", 10s));
  ASSERT_TRUE(devsim.wait_for_log("fleet awake: 20 boxes online in", 5s)) << devsim.log_tail();

  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-7"), kPing, {{"X-Request-Id", "after-wake-1"}});
  ASSERT_EQ(r.status, 200) << r.body << "\n" << stack->logs();

  // Flushed within 200 ms of the command.
  nlohmann::json entry;
  ASSERT_TRUE(test::eventually([&] { return !(entry = logged(log_path, "after-wake-1")).is_null(); }, 5s))
      << test::read_file(log_path) << "\n" << devsim.log_tail();
  EXPECT_EQ(entry.value("box", ""), "box-7");
  const std::int64_t online_ms = entry.value("online_ms", std::int64_t{0});
  // Its online is the one after the sleep, and the command came after it.
  EXPECT_GT(online_ms, all_offline);
  EXPECT_GE(entry.value("t_ms", std::int64_t{0}), online_ms);
  EXPECT_LE(entry.value("t_ms", std::int64_t{0}), now_ms());
  EXPECT_EQ(entry.size(), 4u) << entry.dump();
}

TEST_F(DevsimSleepTest, AnUnwritableCommandLogIsAConfigError) {
  Process devsim("devsim-bad-log",
                 {test::devsim_binary(), "--mqtt-uri", "tcp://127.0.0.1:" + std::to_string(stack->mqtt_port()),
                  "--command-log", stack->tmp().file("no-such-dir/commands.jsonl")},
                 stack->tmp().path());
  EXPECT_EQ(devsim.wait_exit(10s), std::optional<int>(2)) << devsim.log_tail();
  EXPECT_NE(devsim.log().find("command_log: cannot open"), std::string::npos) << devsim.log_tail();
}

}  // namespace
}  // namespace boxgate::itest
