#include "command_body.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace boxgate;

TEST(CommandBody, SetsIdAndKeepsTheCallersFields) {
  auto id = *RequestId::parse("r-1");
  auto out = gateway::command_payload(R"({"method":"reboot","params":{"delay":5},"id":"caller"})", id);
  ASSERT_TRUE(out);
  auto j = nlohmann::json::parse(*out);
  EXPECT_EQ(j["id"], "r-1");
  EXPECT_EQ(j["method"], "reboot");
  EXPECT_EQ(j["params"]["delay"], 5);
  EXPECT_EQ(nlohmann::json::parse(*gateway::command_payload("{}", id)), nlohmann::json({{"id", "r-1"}}));
}

TEST(CommandBody, RejectsAnythingButAnObject) {
  auto id = *RequestId::parse("r-1");
  for (const char* bad : {"", "[]", "1", "\"s\"", "null", "{", "{\"a\":}", "{} {}", "{\"a\":1}x"}) {
    EXPECT_FALSE(gateway::command_payload(bad, id)) << bad;
  }
}

TEST(CommandBody, SplicesTheIdWithoutReencodingTheCallersBytes) {
  auto id = *RequestId::parse("r-2");
  EXPECT_EQ(*gateway::command_payload(R"( {"b": 1.50, "a":"\u00e9"} )", id), R"({"id":"r-2","b": 1.50, "a":"\u00e9"} )");
  EXPECT_EQ(*gateway::command_payload("{ }", id), R"({"id":"r-2" })");
  // A nested "id" is the caller's business; only the top level gets ours.
  auto nested = nlohmann::json::parse(*gateway::command_payload(R"({"p":{"id":7}})", id));
  EXPECT_EQ(nested["id"], "r-2");
  EXPECT_EQ(nested["p"]["id"], 7);
}
