// The answer to a command sent again under a known id (answer_retry), as a
// table: what Redis holds for the id and what the new request is, against
// what the caller gets.
#include <gtest/gtest.h>

#include <optional>
#include <string>

#include "commands/command_record.hpp"

using namespace boxgate::gateway;

namespace {

constexpr std::int64_t kDeadline = 2000;
constexpr std::int64_t kBefore = 1500;  // "now" before the record's deadline
constexpr std::int64_t kAfter = 2500;   // and after it

struct Row {
  const char* name;
  bool has_record;
  CommandState state;
  CommandMode record_mode;
  bool same_body;
  bool has_reply;
  CommandMode mode;
  std::int64_t now;
  RetryAnswer expected;
};

constexpr auto P = CommandState::pending;
constexpr auto S = CommandState::succeeded;
constexpr auto T = CommandState::timed_out;
constexpr auto kSync = CommandMode::sync;
constexpr auto kAsync = CommandMode::async;

constexpr auto kSend = RetryAnswer::send;
constexpr auto kReused = RetryAnswer::request_id_reused;
constexpr auto kReplay = RetryAnswer::replay;
constexpr auto kAgain = RetryAnswer::accept_again;
constexpr auto kDuplicate = RetryAnswer::duplicate;
constexpr auto kTimedOut = RetryAnswer::timed_out_before;

const Row kTable[] = {
    // name                                    record state rec.mode same   reply  mode    now      answer
    {"unknown id: sent",                        false, P, kSync,  true,  false, kSync,  kBefore, kSend},
    {"unknown id, stray reply: sent",           false, P, kSync,  true,  true,  kSync,  kBefore, kSend},
    {"other body: refused",                     true,  P, kSync,  false, false, kSync,  kBefore, kReused},
    {"other body, reply stored: refused",       true,  S, kSync,  false, true,  kSync,  kBefore, kReused},
    {"reply stored: replayed",                  true,  S, kSync,  true,  true,  kSync,  kBefore, kReplay},
    {"late reply of a timed-out one: replayed", true,  T, kSync,  true,  true,  kSync,  kAfter,  kReplay},
    {"pending sync: duplicate",                 true,  P, kSync,  true,  false, kSync,  kBefore, kDuplicate},
    {"pending async, sync retry: duplicate",    true,  P, kAsync, true,  false, kSync,  kBefore, kDuplicate},
    {"pending sync, async retry: duplicate",    true,  P, kSync,  true,  false, kAsync, kBefore, kDuplicate},
    {"pending async, async retry: accepted",    true,  P, kAsync, true,  false, kAsync, kBefore, kAgain},
    {"succeeded, reply expired: duplicate",     true,  S, kSync,  true,  false, kSync,  kBefore, kDuplicate},
    {"succeeded async, reply expired",          true,  S, kAsync, true,  false, kAsync, kAfter,  kDuplicate},
    {"timed out: not sent again",               true,  T, kSync,  true,  false, kSync,  kBefore, kTimedOut},
    {"pending past its deadline: timed out",    true,  P, kSync,  true,  false, kSync,  kAfter,  kTimedOut},
    {"async past its deadline: timed out",      true,  P, kAsync, true,  false, kAsync, kAfter,  kTimedOut},
};

TEST(AnswerRetry, Table) {
  const std::string body = "sha-of-body";
  for (const Row& row : kTable) {
    std::optional<CommandRecord> record;
    if (row.has_record) {
      record.emplace();
      record->body_sha256 = row.same_body ? body : "sha-of-another";
      record->state = row.state;
      record->mode = row.record_mode;
      record->deadline_ms = kDeadline;
    }
    EXPECT_EQ(answer_retry(record, row.has_reply, body, row.mode, row.now), row.expected) << row.name;
  }
}

TEST(CommandState, WireNamesAreUnchanged) {
  EXPECT_STREQ(state_name(CommandState::pending), "pending");
  EXPECT_STREQ(state_name(CommandState::succeeded), "succeeded");
  EXPECT_STREQ(state_name(CommandState::timed_out), "timed_out");
  CommandRecord r;
  r.state = CommandState::timed_out;
  EXPECT_NE(r.to_json().find(R"("state":"timed_out")"), std::string::npos);
  auto back = parse_record(r.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->state, CommandState::timed_out);
  std::string unknown = r.to_json();
  unknown.replace(unknown.find("timed_out"), 9, "mislaid");
  EXPECT_FALSE(parse_record(unknown)) << "a state this version does not know is not a record";
}

}  // namespace
