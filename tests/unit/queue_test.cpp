// The queue's pure parts: its list elements, the "/sending" field, the
// entries, and what the scripts' answers say (replies built by hiredis from
// RESP bytes, as Redis sends them).

#include <gtest/gtest.h>

#include "queue/queue_entry.hpp"
#include "queue/queue_scripts.hpp"
#include "resp.hpp"

namespace boxgate::gateway {
namespace {

using test::bulk;
using test::parse_resp;

// A record as a queued command's: queued, async, with a ttl.
CommandRecord queued_record(std::string box, std::string id, std::string hash) {
  CommandRecord r;
  r.box_id = std::move(box);
  r.request_id = std::move(id);
  r.body_sha256 = std::move(hash);
  r.state = CommandState::queued;
  r.mode = CommandMode::async;
  r.accepted_ms = 1000;
  r.gateway = "gw-1";
  return r;
}

TEST(QueueElement, RoundTripsAndRefusesWhatIsNotOne) {
  QueueElement e{1700000060000, 5000, 1700000000000, 612, "ops", "req-1:a"};
  EXPECT_EQ(element_text(e), "1700000060000 5000 1700000000000 612 ops req-1:a");
  auto back = parse_element(element_text(e));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->expires_ms, e.expires_ms);
  EXPECT_EQ(back->timeout_ms, 5000);
  EXPECT_EQ(back->accepted_ms, e.accepted_ms);
  EXPECT_EQ(back->charge, 612);
  EXPECT_EQ(back->token, "ops");
  EXPECT_EQ(back->id, "req-1:a");
  e.token = "";
  EXPECT_EQ(element_text(e), "1700000060000 5000 1700000000000 612 - req-1:a") << "no token: '-'";
  EXPECT_EQ(parse_element(element_text(e))->token, "");
  for (const char* bad : {"", "1 2 3 4 t", "1 2 3 4 t ", "x 2 3 4 t id", "1 2 3 4 t id extra", "1 2 3x 4 t id"}) {
    EXPECT_FALSE(parse_element(bad)) << bad;
  }
}

TEST(QueueSending, RoundTrips) {
  std::string text = sending_text("req-1", "gw-7", 42);
  auto s = parse_sending(text);
  ASSERT_TRUE(s);
  EXPECT_EQ(s->id, "req-1");
  EXPECT_EQ(s->gateway, "gw-7");
  EXPECT_EQ(s->until_ms, 42);
  EXPECT_EQ(s->value, text);
  EXPECT_FALSE(parse_sending("req-1 gw-7"));
  EXPECT_FALSE(parse_sending("req-1 gw-7 soon"));
}

TEST(QueueEntry, KeepsPayloadTimeoutTraceAndRecord) {
  CommandRecord r = queued_record("box-1", "req-1", std::string(64, 'a'));
  r.deadline_ms = 7000;
  r.ttl_ms = 5000;
  QueueEntry entry{R"({"id":"req-1","method":"reboot","s":"\u00e9\"quoted\""})", std::chrono::milliseconds(1000),
                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", r};
  auto back = parse_entry(entry_text(entry));
  ASSERT_TRUE(back);
  EXPECT_EQ(back->payload, entry.payload);
  EXPECT_EQ(back->timeout.count(), 1000);
  EXPECT_EQ(back->traceparent, entry.traceparent);
  EXPECT_EQ(back->record.to_json(), r.to_json());
  EXPECT_FALSE(parse_entry("{}"));
  EXPECT_FALSE(parse_entry("not json"));
  EXPECT_FALSE(parse_entry(R"({"payload":"x","timeout_ms":1,"traceparent":"","record":"{}"})")) << "a bad record";
  EXPECT_FALSE(parse_entry(std::string(100000, '[')));
}

TEST(QueueAnswers, EnqueueStatuses) {
  auto queued = parse_enqueue(parse_resp("*2\r\n" + bulk("queued") + ":2\r\n").get());
  ASSERT_TRUE(queued);
  EXPECT_EQ(queued->status, EnqueueAnswer::Status::queued);
  EXPECT_EQ(queued->depth_before, 2);
  EXPECT_EQ(parse_enqueue(parse_resp("*2\r\n" + bulk("full_bytes") + ":0\r\n").get())->status,
            EnqueueAnswer::Status::full_bytes);
  EXPECT_FALSE(parse_enqueue(parse_resp("*2\r\n" + bulk("maybe") + ":0\r\n").get()));
  EXPECT_FALSE(parse_enqueue(parse_resp("-ERR no\r\n").get()));
  EXPECT_FALSE(parse_enqueue(nullptr));
}

TEST(QueueAnswers, StepClaimedWithExpiredIds) {
  std::string entry = R"({"payload":"{}"})";
  auto reply = parse_resp("*9\r\n" + bulk("claimed") + bulk("req-2 gw-1 99") + bulk(entry) + ":3\r\n:120\r\n" +
                          bulk("10 5 1 40 - req-2") + bulk("9 5 0 30 ops req-1") + bulk("1 5 0 20 - old-1") +
                          bulk("2 5 0 20 ops old-2"));
  auto step = parse_step(reply.get());
  ASSERT_TRUE(step);
  EXPECT_EQ(step->status, StepAnswer::Status::claimed);
  ASSERT_TRUE(step->sending);
  EXPECT_EQ(step->sending->id, "req-2");
  EXPECT_EQ(step->entry, entry);
  EXPECT_EQ(step->depth, 3);
  EXPECT_EQ(step->bytes_freed, 120);
  ASSERT_TRUE(step->head);
  EXPECT_EQ(step->head->accepted_ms, 1);
  ASSERT_TRUE(step->ended);
  EXPECT_EQ(step->ended->id, "req-1");
  EXPECT_EQ(step->ended->token, "ops");
  ASSERT_EQ(step->expired.size(), 2u);
  EXPECT_EQ(step->expired[0].id, "old-1");
  EXPECT_EQ(step->expired[1].charge, 20);
  const std::string nothing = bulk("") + bulk("") + ":0\r\n:0\r\n" + bulk("") + bulk("");
  auto idle = parse_step(parse_resp("*7\r\n" + bulk("idle") + nothing).get());
  ASSERT_TRUE(idle);
  EXPECT_FALSE(idle->head);
  EXPECT_FALSE(idle->ended);
  EXPECT_FALSE(parse_step(parse_resp("*7\r\n" + bulk("busy") + nothing).get())) << "busy names what is in flight";
}

TEST(QueueAnswers, Cancel) {
  auto c = parse_cancel(parse_resp("*4\r\n" + bulk("cancelled") + ":77\r\n" + bulk("{}") + bulk("1 2 3 4 t id")).get());
  ASSERT_TRUE(c);
  EXPECT_EQ(c->status, CancelAnswer::Status::cancelled);
  EXPECT_EQ(c->bytes_freed, 77);
  ASSERT_TRUE(c->element);
  EXPECT_EQ(c->element->token, "t");
  EXPECT_EQ(parse_cancel(parse_resp("*1\r\n" + bulk("sending")).get())->status, CancelAnswer::Status::sending);
  EXPECT_EQ(parse_cancel(parse_resp("*1\r\n" + bulk("absent")).get())->status, CancelAnswer::Status::absent);
}

TEST(QueueRecord, QueuedStatesAndRetries) {
  CommandRecord r = queued_record("b", "r", "h");
  r.deadline_ms = 3000;
  r.ttl_ms = 1000;
  EXPECT_EQ(status_of(r, false, 1500).state, CommandState::queued);
  EXPECT_EQ(status_of(r, false, 2500).state, CommandState::expired) << "past its ttl, whether or not swept";
  auto back = parse_record(r.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->ttl_ms, 1000);
  EXPECT_EQ(answer_retry(r, false, "h", CommandMode::async, 1500), RetryAnswer::accept_again);
  EXPECT_EQ(answer_retry(r, false, "h", CommandMode::sync, 1500), RetryAnswer::duplicate);
  EXPECT_EQ(answer_retry(r, false, "other", CommandMode::async, 1500), RetryAnswer::request_id_reused);
  r.state = CommandState::cancelled;
  EXPECT_EQ(status_of(r, false, 1500).state, CommandState::cancelled);
  EXPECT_EQ(parse_record(r.to_json())->state, CommandState::cancelled);
  for (CommandState s : kAllStates) EXPECT_EQ(state_of(state_name(s)), s);
}

}  // namespace
}  // namespace boxgate::gateway
