// Outbox: the bridge's bounded queue to Redis (src/bridge/outbox.hpp), with a
// fake send() standing in for the Redis connection.
#include "outbox.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace {

using boxgate::bridge::Outbox;
using boxgate::bridge::OutboxLimits;

struct Item {
  std::string payload;
  std::size_t cost() const { return payload.size(); }
};

struct Fixture {
  boxgate::ops::Gauge queued;
  boxgate::ops::Gauge held;
  std::vector<std::shared_ptr<Item>> sent;  // in flight, in order
  bool accept = true;

  void flush(Outbox<Item>& box, bool up = true) {
    box.flush(up, [this](const std::shared_ptr<Item>& item) {
      if (!accept) return false;
      sent.push_back(item);
      return true;
    });
  }
};

TEST(Outbox, RefusesWhatWouldPassTheItemOrByteBound) {
  Fixture f;
  Outbox<Item> box({2, 10}, f.queued, f.held);
  EXPECT_TRUE(box.push({"12345"}));
  EXPECT_FALSE(box.push({"123456"}));  // 11 bytes
  EXPECT_TRUE(box.push({"12345"}));
  EXPECT_FALSE(box.push({""}));  // a third item
  EXPECT_EQ(f.queued.value(), 2);
  EXPECT_EQ(f.held.value(), 10);
  // In flight still counts against both bounds, until answered.
  f.flush(box);
  EXPECT_EQ(f.sent.size(), 2u);
  EXPECT_EQ(f.queued.value(), 0);
  EXPECT_FALSE(box.push({"1"}));
  box.answered(*f.sent[0], false);
  EXPECT_EQ(f.held.value(), 5);
  EXPECT_TRUE(box.push({"1"}));
  EXPECT_EQ(box.backlog(), 2u);
}

TEST(Outbox, WaitsWhileDownAndSendsInOrderWhenUp) {
  Fixture f;
  Outbox<Item> box({100, 1000}, f.queued, f.held);
  for (const char* p : {"a", "b", "c"}) ASSERT_TRUE(box.push({p}));
  f.flush(box, false);
  EXPECT_TRUE(f.sent.empty());
  f.flush(box);
  ASSERT_EQ(f.sent.size(), 3u);
  EXPECT_EQ(f.sent[0]->payload, "a");
  EXPECT_EQ(f.sent[2]->payload, "c");
}

TEST(Outbox, ALostItemGoesBackToTheHeadAndLeavesFirst) {
  Fixture f;
  OutboxLimits small{100, 1000, 1, 1000};
  Outbox<Item> windowed(small, f.queued, f.held);
  for (const char* p : {"a", "b"}) ASSERT_TRUE(windowed.push({p}));
  f.flush(windowed);
  ASSERT_EQ(f.sent.size(), 1u);  // window of one
  windowed.answered(*f.sent[0], true);  // the connection broke
  EXPECT_EQ(windowed.backlog(), 2u);
  f.sent.clear();
  f.flush(windowed);
  ASSERT_EQ(f.sent.size(), 1u);
  EXPECT_EQ(f.sent[0]->payload, "a");
}

TEST(Outbox, ItemsLostTogetherLeaveAgainInTheirOrderBeforeTheQueuedOnes) {
  Fixture f;
  Outbox<Item> box({100, 1000, 3, 1000}, f.queued, f.held);
  for (const char* p : {"a", "b", "c", "d"}) ASSERT_TRUE(box.push({p}));
  f.flush(box);
  ASSERT_EQ(f.sent.size(), 3u);
  // A broken connection answers its commands oldest first, each with "lost".
  for (auto& item : f.sent) box.answered(*item, true);
  f.sent.clear();
  f.accept = false;
  f.flush(box);  // refused (still down): "a" stays first
  f.accept = true;
  f.flush(box);
  auto order = [&] {
    std::string payloads;
    for (auto& item : f.sent) payloads += item->payload;
    return payloads;
  };
  EXPECT_EQ(order(), "abc");
  box.answered(*f.sent[1], true);  // "b" lost again, "a" and "c" still out
  box.answered(*f.sent[2], true);  // then "c"
  f.sent.erase(f.sent.begin() + 1, f.sent.end());
  box.answered(*f.sent[0], false);  // "a" done
  f.sent.clear();
  f.flush(box);
  EXPECT_EQ(order(), "bcd");
}

TEST(Outbox, OneItemAlwaysGoesHoweverLargeButTheWindowBytesBoundTheRest) {
  Fixture f;
  Outbox<Item> box({100, 1000, 100, 4}, f.queued, f.held);
  ASSERT_TRUE(box.push({"large item"}));
  ASSERT_TRUE(box.push({"ab"}));
  f.flush(box);
  ASSERT_EQ(f.sent.size(), 1u);
  box.answered(*f.sent[0], false);
  f.flush(box);
  EXPECT_EQ(f.sent.size(), 2u);
}

TEST(Outbox, ARefusedSendPutsTheItemBackAndEndsTheFlush) {
  Fixture f;
  Outbox<Item> box({100, 1000}, f.queued, f.held);
  for (const char* p : {"a", "b"}) ASSERT_TRUE(box.push({p}));
  f.accept = false;
  f.flush(box);  // must return: the item is not retried in a loop
  EXPECT_EQ(box.backlog(), 2u);
  EXPECT_EQ(f.queued.value(), 2);
  f.accept = true;
  f.flush(box);
  ASSERT_EQ(f.sent.size(), 2u);
  EXPECT_EQ(f.sent[0]->payload, "a");
}

TEST(Outbox, AbandonHandsBackTheQueueAndFreesItsBytes) {
  Fixture f;
  Outbox<Item> box({100, 1000, 1}, f.queued, f.held);
  for (const char* p : {"aa", "bb", "cc"}) ASSERT_TRUE(box.push({p}));
  f.flush(box);  // "aa" in flight
  auto left = box.abandon();
  ASSERT_EQ(left.size(), 2u);
  EXPECT_EQ(left[0].payload, "bb");
  EXPECT_EQ(f.queued.value(), 0);
  EXPECT_EQ(f.held.value(), 2);  // the one in flight
  EXPECT_EQ(box.backlog(), 1u);
}

}  // namespace
