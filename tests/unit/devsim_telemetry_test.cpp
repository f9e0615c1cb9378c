// devsim's telemetry payloads: valid JSON of exactly the asked size (or the
// bare object when that is shorter), carrying seq and the send time.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "devsim/telemetry.hpp"

namespace boxgate::devsim {
namespace {

TEST(DevsimTelemetry, PayloadIsJsonPaddedToTheAskedSize) {
  for (std::size_t bytes : {1u, 20u, 40u, 41u, 64u, 1000u, 65536u}) {
    SCOPED_TRACE(bytes);
    std::string p = telemetry_payload(42, 1700000000123456, bytes);
    auto doc = nlohmann::json::parse(p);
    EXPECT_EQ(doc["seq"], 42);
    EXPECT_EQ(doc["sent_us"], 1700000000123456);
    std::size_t bare = telemetry_payload(42, 1700000000123456, 1).size();
    if (bytes > bare + 10) {
      EXPECT_EQ(p.size(), bytes);
    } else {
      EXPECT_LE(p.size(), bare + 10);
    }
  }
}

}  // namespace
}  // namespace boxgate::devsim
