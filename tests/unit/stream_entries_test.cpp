#include "boxgate/redis/stream_entries.hpp"

#include <gtest/gtest.h>

#include <string>

#include "resp.hpp"

using namespace boxgate::redis;
using boxgate::test::bulk;
using boxgate::test::parse_resp;

namespace {

// One stream entry in RESP: [id, [field, value, ...]].
std::string entry(const std::string& id, std::initializer_list<std::string> fields) {
  std::string out = "*2\r\n" + bulk(id) + "*" + std::to_string(fields.size()) + "\r\n";
  for (const std::string& f : fields) out += bulk(f);
  return out;
}

TEST(StreamId, AcceptsMsOrMsDashSeqInDecimal) {
  EXPECT_TRUE(is_stream_id("0"));
  EXPECT_TRUE(is_stream_id("1714566896789-0"));
  EXPECT_TRUE(is_stream_id("18446744073709551615-18446744073709551615"));
  EXPECT_FALSE(is_stream_id(""));
  EXPECT_FALSE(is_stream_id("-1"));
  EXPECT_FALSE(is_stream_id("1-"));
  EXPECT_FALSE(is_stream_id("1-2-3"));
  EXPECT_FALSE(is_stream_id("1a-0"));
  EXPECT_FALSE(is_stream_id("+"));
  EXPECT_FALSE(is_stream_id("123456789012345678901-0")) << "21 digits";
}

// Redis's ms and seq are unsigned 64-bit: one past it is no id (Redis would
// answer an error), however few digits it has.
TEST(StreamId, EachPartFitsIn64Bits) {
  EXPECT_FALSE(is_stream_id("18446744073709551616-0"));
  EXPECT_FALSE(is_stream_id("0-18446744073709551616"));
  EXPECT_FALSE(is_stream_id("99999999999999999999-0")) << "20 digits, above 2^64-1";
  EXPECT_FALSE(is_stream_id("18446744073709551616"));
  EXPECT_FALSE(is_stream_id("+1-0"));
  EXPECT_FALSE(is_stream_id(" 1-0"));
  EXPECT_TRUE(is_stream_id("00000000000000000001-0")) << "leading zeros add no value";
  EXPECT_TRUE(is_last_stream_id("18446744073709551615-18446744073709551615"));
  EXPECT_FALSE(is_last_stream_id("18446744073709551615-18446744073709551614"));
  EXPECT_FALSE(is_last_stream_id("18446744073709551615")) << "ms alone is ms-0";
}

TEST(StreamId, OrdersByMsThenSeqAsNumbers) {
  EXPECT_TRUE(stream_id_less("1-0", "2-0"));
  EXPECT_TRUE(stream_id_less("9-5", "10-0")) << "numbers, not strings";
  EXPECT_TRUE(stream_id_less("5-9", "5-10"));
  EXPECT_FALSE(stream_id_less("5-10", "5-9"));
  EXPECT_FALSE(stream_id_less("5-1", "5-1"));
  EXPECT_TRUE(stream_id_less("5", "5-1")) << "ms alone is ms-0";
  EXPECT_FALSE(stream_id_less("5-0", "5"));
  EXPECT_TRUE(stream_id_less("007-0", "8-0")) << "leading zeros do not count";
}

TEST(StreamRange, StartsAfterAnIdOrAtTheBeginning) {
  EXPECT_EQ(range_start_after(std::string("5-1")), "(5-1");
  EXPECT_EQ(range_start_after(std::nullopt), "-");
}

TEST(StreamEntries, ParsesTheBridgesFieldsAndSkipsOthers) {
  auto reply = parse_resp("*4\r\n" +
                          entry("1-0", {"box", "box-1", "name", "boot", "payload", "{}", "received_ms", "17"}) +
                          entry("2-0", {"name", "no-box"}) +        // not the bridge's: skipped
                          entry("bad", {"box", "b", "name", "n"}) +  // not a stream id: skipped
                          entry("3-5", {"box", "box-2", "name", "alarm", "extra", "x"}));
  auto events = parse_entries(reply.get());
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].id, "1-0");
  EXPECT_EQ(events[0].box, "box-1");
  EXPECT_EQ(events[0].name, "boot");
  EXPECT_EQ(events[0].payload, "{}");
  EXPECT_EQ(events[0].received_ms, "17");
  EXPECT_EQ(events[1].id, "3-5");
  EXPECT_EQ(events[1].payload, "");
  EXPECT_EQ(last_entry_id(reply.get()), "3-5") << "the last entry's id, whatever it holds";
}

TEST(StreamEntries, LastIdMovesPastEntriesWithoutTheFields) {
  auto reply = parse_resp("*2\r\n" + entry("1-0", {"box", "b", "name", "n"}) + entry("9-0", {"other", "x"}));
  EXPECT_EQ(parse_entries(reply.get()).size(), 1u);
  EXPECT_EQ(last_entry_id(reply.get()), "9-0");
}

TEST(StreamEntries, EmptyOrNotAnArrayIsNothing) {
  auto empty = parse_resp("*0\r\n");
  EXPECT_TRUE(parse_entries(empty.get()).empty());
  EXPECT_FALSE(last_entry_id(empty.get()));
  auto error = parse_resp("-WRONGTYPE no\r\n");
  EXPECT_TRUE(parse_entries(error.get()).empty());
  EXPECT_FALSE(last_entry_id(error.get()));
  EXPECT_TRUE(parse_entries(nullptr).empty());
  EXPECT_FALSE(last_entry_id(nullptr));
}

}  // namespace
