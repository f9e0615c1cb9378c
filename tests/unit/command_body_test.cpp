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
