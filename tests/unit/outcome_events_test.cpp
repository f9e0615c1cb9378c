// The outcome stream's payload (outcome_events.hpp): the appended form is the
// JSON a parser reads back field for field, and fields that are not ids
// still make valid JSON.

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "boxgate/outcome_events.hpp"

namespace boxgate {
namespace {

TEST(OutcomePayload, EveryFieldSetReadsBackAsWritten) {
  OutcomeEvent e{"box-1", "r:1.a_b", "timed_out", 1718000000123, "sync", true, false, 42, "gw-1"};
  auto j = nlohmann::json::parse(outcome_payload(e));
  EXPECT_EQ(j.value("request_id", ""), "r:1.a_b");
  EXPECT_EQ(j.value("box", ""), "box-1");
  EXPECT_EQ(j.value("state", ""), "timed_out");
  EXPECT_EQ(j.value("at_ms", std::int64_t{0}), 1718000000123);
  EXPECT_EQ(j.value("mode", ""), "sync");
  EXPECT_EQ(j.value("delivered", false), true);
  EXPECT_EQ(j.value("late", true), false);
  EXPECT_EQ(j.value("reply_bytes", 0), 42);
  EXPECT_EQ(j.value("gateway", ""), "gw-1");
  EXPECT_EQ(j.size(), 9u);
}

TEST(OutcomePayload, FieldsNotSetAreLeftOut) {
  OutcomeEvent e{"b", "r", "succeeded", 5, {}, {}, true, 0, {}};
  EXPECT_EQ(outcome_payload(e), R"({"request_id":"r","box":"b","state":"succeeded","at_ms":5,"late":true,"reply_bytes":0})");
}

TEST(OutcomePayload, AFieldThatIsNotAnIdIsStillValidJson) {
  OutcomeEvent e{"b\"ox", "r\\1", "pending", 1, {}, {}, {}, {}, std::string("gw \xff")};
  auto j = nlohmann::json::parse(outcome_payload(e));
  EXPECT_EQ(j.value("box", ""), "b\"ox");
  EXPECT_EQ(j.value("request_id", ""), "r\\1");
}

TEST(PresencePayload, NamesTheBoxAndTheState) {
  auto j = nlohmann::json::parse(presence_payload("box-1", false, 7));
  EXPECT_EQ(j, nlohmann::json::parse(R"({"box":"box-1","online":false,"at_ms":7})"));
}

}  // namespace
}  // namespace boxgate
