#include "boxgate/ids.hpp"

#include <gtest/gtest.h>

#include <regex>
#include <set>
#include <vector>

using namespace boxgate;

TEST(Ids, AcceptsThePatternOfTheContract) {
  EXPECT_TRUE(BoxId::parse("box-1"));
  EXPECT_TRUE(BoxId::parse("A"));
  EXPECT_TRUE(BoxId::parse("a.b:c_d-e"));
  EXPECT_TRUE(BoxId::parse(std::string(128, 'x')));
}

TEST(Ids, RejectsWhatCouldInjectIntoTopicsOrChannels) {
  for (const std::string& bad : std::vector<std::string>{"", "-box", "_box", "box/1", "box+", "box#", "bo*x", "box?", "box[1]", "box 1",
                          "box\t", std::string(129, 'x')}) {
    EXPECT_FALSE(BoxId::parse(bad)) << bad;
    EXPECT_FALSE(RequestId::parse(bad)) << bad;
  }
  EXPECT_FALSE(BoxId::parse(std::string("box\0x", 5)));
}

TEST(Ids, GeneratesLowercaseUuidV4) {
  std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) {
    auto id = new_request_id();
    EXPECT_TRUE(std::regex_match(id.str(), uuid)) << id.str();
    seen.insert(id.str());
  }
  EXPECT_EQ(seen.size(), 1000u);
}
