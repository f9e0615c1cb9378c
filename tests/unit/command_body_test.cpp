#include "commands/command_body.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

using namespace boxgate;

namespace {

std::optional<std::string> payload(std::string_view body, const std::string& id = "r-1") {
  return gateway::command_payload(body, *RequestId::parse(id)).payload;
}

std::string problem(std::string_view body) {
  auto out = gateway::command_payload(body, *RequestId::parse("r-1"));
  EXPECT_FALSE(out.payload) << body.substr(0, 80);
  return out.problem;
}

std::string nested_arrays(std::size_t levels) { return std::string(levels, '[') + std::string(levels, ']'); }

}  // namespace

TEST(CommandBody, SetsIdAndKeepsTheCallersFields) {
  auto out = payload(R"({"method":"reboot","params":{"delay":5},"id":"caller"})");
  ASSERT_TRUE(out);
  auto j = nlohmann::json::parse(*out);
  EXPECT_EQ(j["id"], "r-1");
  EXPECT_EQ(j["method"], "reboot");
  EXPECT_EQ(j["params"]["delay"], 5);
  EXPECT_EQ(nlohmann::json::parse(*payload("{}")), nlohmann::json({{"id", "r-1"}}));
}

TEST(CommandBody, RejectsAnythingButAnObject) {
  for (const char* bad : {"", "[]", "1", "\"s\"", "null", "{", "{\"a\":}", "{} {}", "{\"a\":1}x"}) {
    EXPECT_FALSE(payload(bad)) << bad;
  }
  EXPECT_EQ(problem("[]"), "The body must be a JSON object.");
  EXPECT_EQ(problem("{\"a\":}"), "The body is not valid JSON: unexpected character or end of input at byte 5.");
  EXPECT_NE(problem("{\"a\":\"\xff\"}").find("invalid UTF-8"), std::string::npos);
}

TEST(CommandBody, SplicesTheIdWithoutReencodingTheCallersBytes) {
  EXPECT_EQ(*payload(R"( {"b": 1.50, "a":"\u00e9"} )", "r-2"), R"( {"id":"r-2","b": 1.50, "a":"\u00e9"} )");
  EXPECT_EQ(*payload("{ }", "r-2"), R"({"id":"r-2" })");
  EXPECT_EQ(*payload("\n{\n}\n", "r-2"), "\n{\"id\":\"r-2\"\n}\n");
  // A nested "id" is the caller's business; only the top level gets ours.
  EXPECT_EQ(*payload(R"({"p":{"id":7},"q":[{"id":"x"}]})", "r-2"), R"({"id":"r-2","p":{"id":7},"q":[{"id":"x"}]})");
}

TEST(CommandBody, ReplacesAnIdValueOfEveryTypeInPlace) {
  for (std::string value : {R"("caller")", R"("")", "7", "-1.5e3", "true", "false", "null", R"({"id":1,"a":[2]})",
                            "[1,[2],{}]", "{}", "[]"}) {
    std::string body = "{ \"a\" : 1 ,\n \"id\" :\t" + value + " , \"b\":{\"id\":2} }";
    std::string expected = "{ \"a\" : 1 ,\n \"id\" :\t\"r-3\" , \"b\":{\"id\":2} }";
    EXPECT_EQ(payload(body, "r-3"), expected) << value;
  }
  EXPECT_EQ(payload(R"({"id":"x"})", "r-3"), R"({"id":"r-3"})");
  EXPECT_EQ(payload(R"({"a":1,"id":{"deep":[[[]]]}})", "r-3"), R"({"a":1,"id":"r-3"})");
  // An escaped key is "id" to every parser, so it is the one replaced.
  EXPECT_EQ(payload(R"({"\u0069d":"x","m":1})", "r-3"), R"({"\u0069d":"r-3","m":1})");
}

TEST(CommandBody, RefusesMoreThanOneTopLevelId) {
  EXPECT_EQ(problem(R"({"id":1,"id":2})"),
            "The body has more than one top-level \"id\"; the gateway sets exactly one.");
  EXPECT_FALSE(payload(R"({"id":"a","m":{},"i\u0064":"b"})"));
  EXPECT_TRUE(payload(R"({"id":"a","m":{"id":"b"}})")) << "a nested id is not a second one";
}

TEST(CommandBody, DepthAtTheLimitPassesAndOverItIsRefused) {
  ASSERT_EQ(gateway::kMaxCommandDepth, 64u);
  // The object itself is level 1.
  std::string at_limit = R"({"p":)" + nested_arrays(63) + "}";
  EXPECT_EQ(payload(at_limit), R"({"id":"r-1","p":)" + nested_arrays(63) + "}");
  std::string with_id = R"({"id":)" + nested_arrays(63) + "}";
  EXPECT_EQ(payload(with_id), R"({"id":"r-1"})");
  std::string over = R"({"p":)" + nested_arrays(64) + "}";
  EXPECT_EQ(problem(over), "The body nests objects and arrays deeper than 64 levels.");
  EXPECT_EQ(problem(R"({"id":)" + nested_arrays(64) + "}"), "The body nests objects and arrays deeper than 64 levels.");
}

// The crash this guards against: the old code parsed and re-serialised a body
// with a top-level "id", and the serialiser recursed once per level.
TEST(CommandBody, DeeplyNestedBodiesAreRefusedWithoutCrashing) {
  const std::size_t kBodyLimit = 256 * 1024;  // max_body_bytes default
  std::vector<std::string> bodies;
  for (std::size_t levels : {1000u, 100000u}) {
    bodies.push_back(R"({"p":)" + nested_arrays(levels) + "}");
    bodies.push_back(R"({"id":"x","p":)" + nested_arrays(levels) + "}");
    bodies.push_back(R"({"id":)" + nested_arrays(levels) + "}");
  }
  // Exactly at the body limit, nested at nearly every byte.
  for (std::string head : {R"({"p":)", R"({"id":"x","p":)", R"({"id":)"}) {
    std::size_t levels = (kBodyLimit - head.size() - 1) / 2;
    std::string body = head + nested_arrays(levels) + "}";
    body.insert(head.size(), kBodyLimit - body.size(), ' ');
    ASSERT_EQ(body.size(), kBodyLimit);
    bodies.push_back(body);
  }
  // Unclosed, and a million levels (beyond the HTTP limit, still no crash).
  bodies.push_back(R"({"id":1,"p":)" + std::string(100000, '['));
  bodies.push_back(R"({"id":1,"p":)" + nested_arrays(1000000) + "}");
  for (const auto& body : bodies) {
    SCOPED_TRACE(body.size());
    std::string why = problem(body);
    EXPECT_NE(why.find("deeper than 64 levels"), std::string::npos) << why;
  }
}

TEST(CommandBody, ABodyAtTheLimitIsSplicedWhole) {
  const std::size_t kBodyLimit = 256 * 1024;
  std::string flat = R"({"id":"x","pad":")";
  flat += std::string(kBodyLimit - flat.size() - 2, 'y') + "\"}";
  ASSERT_EQ(flat.size(), kBodyLimit);
  auto out = payload(flat, "r-9");
  ASSERT_TRUE(out);
  EXPECT_EQ(*out, R"({"id":"r-9")" + flat.substr(9));
  std::string no_id = R"({"pad":")" + std::string(kBodyLimit - 10, 'y') + "\"}";
  ASSERT_EQ(no_id.size(), kBodyLimit);
  EXPECT_EQ(payload(no_id, "r-9"), R"({"id":"r-9",)" + no_id.substr(1));
}
