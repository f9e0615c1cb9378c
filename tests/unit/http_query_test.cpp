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
