// Unit tests of the simulated fleet's pure logic: reply building, delay choice,
// the silent share, box lists and the devsim options.
//
// Built into devsim_unit_tests (src/devsim/CMakeLists.txt), which links
// boxgate_devsim_lib. The tests/unit glob also compiles this file into
// boxgate_unit_tests, which links the core only: there it compiles to nothing.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "devsim/fleet.hpp"
#include "devsim/settings.hpp"

using namespace boxgate;
using namespace boxgate::devsim;
using nlohmann::json;
using std::chrono::milliseconds;

namespace {

BoxId box(const std::string& text) { return *BoxId::parse(text); }
RequestId req(const std::string& text) { return *RequestId::parse(text); }

Fleet make_fleet(const FleetSettings& settings) { return Fleet(settings, Topics("dev")); }

}  // namespace

TEST(DevsimReply, EchoesParamsAndMethodUnderTheTopicsRequestId) {
  auto reply = build_reply(box("box-1"), req("abc"), R"({"id":"abc","method":"ping","params":{"x":1}})");
  EXPECT_EQ(reply, R"({"id":"abc","result":{"box":"box-1","echo":{"x":1},"method":"ping"}})");
}

TEST(DevsimReply, InjectsTheRequestIdWhateverThePayloadSays) {
  auto other = json::parse(build_reply(box("b"), req("r-1"), R"({"id":"forged","method":"m"})"));
  EXPECT_EQ(other["id"], "r-1");
  auto missing = json::parse(build_reply(box("b"), req("r-2"), R"({"method":"m"})"));
  EXPECT_EQ(missing["id"], "r-2");
}

TEST(DevsimReply, MissingFieldsAndNonObjectsEchoNull) {
  auto reply = json::parse(build_reply(box("b"), req("r"), "{}"));
  EXPECT_TRUE(reply["result"]["echo"].is_null());
  EXPECT_TRUE(reply["result"]["method"].is_null());
  auto array = json::parse(build_reply(box("b"), req("r"), "[1,2]"));
  EXPECT_TRUE(array["result"]["echo"].is_null());
  EXPECT_EQ(array["result"]["box"], "b");
}

TEST(DevsimReply, KeepsTheOrderAndTypesOfParams) {
  auto reply = build_reply(box("b"), req("r"), R"({"params":{"z":[1,"two",null],"a":false}})");
  EXPECT_NE(reply.find(R"("echo":{"z":[1,"two",null],"a":false})"), std::string::npos) << reply;
}

TEST(DevsimReply, InvalidJsonGetsABadJsonError) {
  for (const std::string& bad : std::vector<std::string>{"", "{", "not json", "{\"a\":}", "\"\xff\xfe\""}) {
    auto reply = json::parse(build_reply(box("b"), req("r"), bad));  // always valid JSON itself
    EXPECT_EQ(reply["id"], "r") << bad;
    EXPECT_EQ(reply["error"]["code"], "bad_json") << bad;
    EXPECT_TRUE(reply["error"]["message"].is_string()) << bad;
    EXPECT_FALSE(reply.contains("result")) << bad;
  }
}

// Copying and dumping a parsed value recurse per level: a command nested
// deeper than the gateway's 64 levels is refused before it is parsed.
TEST(DevsimReply, DeeplyNestedCommandsAreRefusedWithoutCrashing) {
  auto nested = [](std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); };
  auto at_limit = json::parse(build_reply(box("b"), req("r"), R"({"params":)" + nested(63) + "}"));
  EXPECT_EQ(at_limit["result"]["echo"].dump(), nested(63));
  for (std::size_t levels : {64u, 1000u, 100000u}) {
    auto reply = json::parse(build_reply(box("b"), req("r"), R"({"id":"r","params":)" + nested(levels) + "}"));
    EXPECT_EQ(reply["error"]["code"], "bad_json") << levels;
    EXPECT_EQ(reply["error"]["message"], "command is not JSON: nested deeper than 64 levels") << levels;
  }
}

TEST(DevsimDelay, UsesDelayOrSlowDelayPlusBoundedJitter) {
  FleetSettings settings;
  settings.delay_ms = 100;
  settings.jitter_ms = 50;
  settings.slow_boxes = {"slow-1"};
  settings.slow_delay_ms = 5000;
  auto fleet = make_fleet(settings);
  Rng rng(42);
  milliseconds lo_fast{1000000}, hi_fast{0}, lo_slow{1000000}, hi_slow{0};
  for (int i = 0; i < 5000; ++i) {
    auto fast = fleet.draw_delay(box("box-1"), rng);
    auto slow = fleet.draw_delay(box("slow-1"), rng);
    lo_fast = std::min(lo_fast, fast), hi_fast = std::max(hi_fast, fast);
    lo_slow = std::min(lo_slow, slow), hi_slow = std::max(hi_slow, slow);
  }
  // Bounds hold, and over 5000 draws both ends of 0..50 are reached.
  EXPECT_EQ(lo_fast, milliseconds(100));
  EXPECT_EQ(hi_fast, milliseconds(150));
  EXPECT_EQ(lo_slow, milliseconds(5000));
  EXPECT_EQ(hi_slow, milliseconds(5050));
}

TEST(DevsimDelay, NoJitterMeansExactlyTheDelay) {
  FleetSettings settings;
  settings.delay_ms = 7;
  auto fleet = make_fleet(settings);
  Rng rng(3);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(fleet.draw_delay(box("a"), rng), milliseconds(7));
}

TEST(DevsimSilent, ShareIsApproximatelyRight) {
  for (int percent : {0, 10, 50, 90, 100}) {
    FleetSettings settings;
    settings.silent_percent = percent;
    auto fleet = make_fleet(settings);
    Rng rng(static_cast<Rng::result_type>(percent) + 7);
    constexpr int kDraws = 20000;
    int silent = 0;
    for (int i = 0; i < kDraws; ++i) silent += fleet.draw_silent(rng) ? 1 : 0;
    // Binomial sd at 50 % is ~0.35 %; 1.5 % is a safe margin for a fixed seed.
    EXPECT_NEAR(100.0 * silent / kDraws, percent, 1.5) << percent;
    if (percent == 0) {
      EXPECT_EQ(silent, 0);
    }
    if (percent == 100) {
      EXPECT_EQ(silent, kDraws);
    }
  }
}

TEST(DevsimBoxes, DefaultsToBoxOneToN) {
  FleetSettings settings;
  settings.boxes = 3;
  auto boxes = make_box_ids(settings);
  ASSERT_EQ(boxes.size(), 3u);
  EXPECT_EQ(boxes[0].str(), "box-1");
  EXPECT_EQ(boxes[2].str(), "box-3");
}

TEST(DevsimBoxes, ExplicitListOverridesTheCount) {
  FleetSettings settings;
  settings.boxes = 100;
  settings.box_list = {"alpha", "b.2", "c:3"};
  auto boxes = make_box_ids(settings);
  ASSERT_EQ(boxes.size(), 3u);
  EXPECT_EQ(boxes[1].str(), "b.2");
}

TEST(DevsimBoxes, RejectsInvalidAndDuplicateIds) {
  for (std::vector<std::string> bad : std::vector<std::vector<std::string>>{
           {"ok", "bad/id"}, {"+"}, {"a#"}, {"-x"}, {"dup", "dup"}}) {
    FleetSettings settings;
    settings.box_list = bad;
    try {
      make_box_ids(settings);
      ADD_FAILURE() << "accepted " << bad.back();
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.key(), "box_list");
    }
  }
}

TEST(DevsimOptions, FlagsReachTheSettings) {
  DevsimConfig config;
  Options options("devsim", "test");
  declare_devsim(options, config);
  const char* argv[] = {"devsim", "--box-list", "a,b,c", "--delay-ms", "5", "--reply-mode", "payload",
                        "--clients", "2", "--slow-boxes", "b", "--silent-percent", "30"};
  ASSERT_EQ(options.load(13, argv), Options::Outcome::run);
  EXPECT_EQ(config.fleet.box_list, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(config.fleet.delay_ms, 5);
  EXPECT_EQ(config.fleet.reply_mode, "payload");
  EXPECT_EQ(config.fleet.clients, 2);
  EXPECT_EQ(config.fleet.silent_percent, 30);
  EXPECT_EQ(config.prefix, "dev");
  EXPECT_EQ(config.mqtt.version, 5);
}

TEST(DevsimOptions, BadValuesNameTheirKey) {
  struct Case {
    std::vector<const char*> args;
    std::string key;
  };
  for (const auto& c : std::vector<Case>{{{"--reply-mode", "carrier-pigeon"}, "reply_mode"},
                                         {{"--silent-percent", "101"}, "silent_percent"},
                                         {{"--box-list", "a,b/c"}, "box_list"},
                                         {{"--slow-boxes", "x y"}, "slow_boxes"},
                                         {{"--boxes", "2", "--clients", "3"}, "clients"},
                                         {{"--delay-ms", "-1"}, "delay_ms"}}) {
    DevsimConfig config;
    Options options("devsim", "test");
    declare_devsim(options, config);
    std::vector<const char*> argv{"devsim"};
    argv.insert(argv.end(), c.args.begin(), c.args.end());
    try {
      options.load(static_cast<int>(argv.size()), argv.data());
      ADD_FAILURE() << "accepted " << c.key;
    } catch (const ConfigError& e) {
      EXPECT_EQ(e.key(), c.key);
    }
  }
}

