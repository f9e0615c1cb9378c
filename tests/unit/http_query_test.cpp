#include <gtest/gtest.h>

#include "boxgate/http/server.hpp"

using boxgate::http::split_query;

TEST(SplitQuery, KeepsNamesAndValuesAsSent) {
  auto params = split_query("timeout_ms=%35&a&&b=&=x&");
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0].name, "timeout_ms");
  EXPECT_EQ(params[0].value, "%35") << "never decoded: an escape is not a digit";
  EXPECT_EQ(params[1].name, "a");
  EXPECT_FALSE(params[1].has_value);
  EXPECT_EQ(params[2].name, "b");
  EXPECT_TRUE(params[2].has_value);
  EXPECT_EQ(params[2].value, "");
  EXPECT_EQ(params[3].name, "");
  EXPECT_EQ(params[3].value, "x");
  EXPECT_TRUE(split_query("").empty());
}

// The one strict parser every gateway endpoint uses (api/query.hpp).
#include <variant>

#include "api/query.hpp"

namespace {

using namespace boxgate::gateway;

bool digits_only(std::string_view v) { return parse_decimal(v, 4, 0, 9999).has_value(); }

std::optional<QueryProblem> problem_of(const std::variant<Query, QueryProblem>& parsed) {
  if (const auto* problem = std::get_if<QueryProblem>(&parsed)) return *problem;
  return std::nullopt;
}

TEST(StrictQuery, ReadsTheParametersAnEndpointTakes) {
  auto parsed =
      parse_query("wait_ms=%35&after=1-0", {{"wait_ms", Error::invalid_wait}, {"after", Error::invalid_after}});
  ASSERT_TRUE(std::holds_alternative<Query>(parsed));
  const Query& q = std::get<Query>(parsed);
  EXPECT_EQ(q.get("wait_ms"), "%35") << "never decoded";
  EXPECT_EQ(q.get("after"), "1-0");
  EXPECT_FALSE(q.get("limit"));
}

TEST(StrictQuery, RefusesAnyParameterAnEndpointDoesNotTake) {
  auto none = problem_of(parse_query("a=1", {}));
  ASSERT_TRUE(none);
  EXPECT_EQ(none->error, Error::invalid_query);
  EXPECT_EQ(none->message, "This endpoint takes no query parameters.");
  auto one = problem_of(parse_query("timeout=5", {{"timeout_ms", Error::invalid_timeout}}));
  ASSERT_TRUE(one);
  EXPECT_EQ(one->error, Error::invalid_query);
  EXPECT_EQ(one->message, "Unknown query parameter 'timeout'; the only one is timeout_ms.");
  auto two = problem_of(parse_query("x\x1b=1", {{"after", Error::invalid_after}, {"limit", Error::invalid_limit}}));
  ASSERT_TRUE(two);
  EXPECT_EQ(two->message, "Unknown query parameter 'x?'; the parameters are after, limit.") << "quoted safely";
  EXPECT_TRUE(std::holds_alternative<Query>(parse_query("", {}))) << "no query at all is fine";
}

TEST(StrictQuery, ARepeatedParameterIsItsOwnError) {
  auto twice = problem_of(parse_query("wait_ms=1&wait_ms=2", {{"wait_ms", Error::invalid_wait}}));
  ASSERT_TRUE(twice);
  EXPECT_EQ(twice->error, Error::invalid_wait);
  EXPECT_EQ(twice->message, "wait_ms is given more than once.");
}

TEST(StrictQuery, ValidatesValuesInTheOrderGiven) {
  QueryParamSpec n{"n", Error::invalid_limit, "n must be digits.", digits_only};
  auto bad = problem_of(parse_query("n=x&other=1", {n}));
  ASSERT_TRUE(bad) << "the bad value comes before the unknown name";
  EXPECT_EQ(bad->error, Error::invalid_limit);
  EXPECT_EQ(bad->message, "n must be digits.");
  auto repeated = problem_of(parse_query("n=1&n=2", {n}));
  ASSERT_TRUE(repeated);
  EXPECT_EQ(repeated->message, "n must be digits.") << "its message covers a repeat too";
}

TEST(StrictQuery, DecimalsArePlainDigitsInRange) {
  EXPECT_EQ(parse_decimal("1000", 4, 1, 1000), 1000);
  EXPECT_FALSE(parse_decimal("1001", 4, 1, 1000));
  EXPECT_FALSE(parse_decimal("0", 4, 1, 1000));
  EXPECT_FALSE(parse_decimal("00001", 4, 1, 1000)) << "at most max_digits";
  EXPECT_FALSE(parse_decimal("+5", 4, 1, 1000));
  EXPECT_FALSE(parse_decimal("", 4, 0, 1000));
  EXPECT_FALSE(parse_decimal("1 ", 4, 0, 1000));
  EXPECT_EQ(parse_decimal("9999999999", 10, 0, 9999999999), 9999999999);
}

}  // namespace
