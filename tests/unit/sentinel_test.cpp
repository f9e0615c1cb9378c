// Sentinel pieces that need no process: the +switch-master message parser.
#include "boxgate/redis/sentinel_watcher.hpp"

#include <gtest/gtest.h>

using namespace boxgate;
using boxgate::redis::parse_switch_master;

TEST(SentinelSwitchMaster, ParsesTheNewAddressOfOurMasterOnly) {
  auto to = parse_switch_master("mymaster 127.0.0.1 6379 10.0.0.2 6380", "mymaster");
  ASSERT_TRUE(to);
  EXPECT_EQ(*to, (RedisAddress{"10.0.0.2", 6380}));
  EXPECT_EQ(parse_switch_master("mymaster ::1 6379 ::2 6380", "mymaster"), (RedisAddress{"::2", 6380}));
  EXPECT_FALSE(parse_switch_master("other 127.0.0.1 6379 10.0.0.2 6380", "mymaster"));
  EXPECT_FALSE(parse_switch_master("mymaster2 127.0.0.1 6379 10.0.0.2 6380", "mymaster"));
}

TEST(SentinelSwitchMaster, RefusesMalformedMessages) {
  for (const char* bad : {"", "mymaster", "mymaster a 1 b", "mymaster a 1 b 0", "mymaster a 1 b 65536",
                          "mymaster a 1 b 12x", "mymaster a 1 b 2 extra", "   "}) {
    EXPECT_FALSE(parse_switch_master(bad, "mymaster")) << bad;
  }
}
