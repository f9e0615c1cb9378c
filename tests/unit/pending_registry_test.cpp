#include "commands/pending_registry.hpp"

#include <gtest/gtest.h>

using namespace boxgate::gateway;

namespace {
struct Entry {
  int value;
};
using Registry = PendingRegistry<Entry>;
std::unique_ptr<Entry> entry(int v) { return std::make_unique<Entry>(Entry{v}); }
}  // namespace

TEST(PendingRegistry, RefusesDuplicatesAndLimits) {
  Registry r(3, 2);
  auto e1 = entry(1), e2 = entry(2), e3 = entry(3), e4 = entry(4), dup = entry(5);
  EXPECT_EQ(r.admit("a", "box1", e1), Registry::Admit::ok);
  EXPECT_EQ(r.admit("a", "box2", dup), Registry::Admit::duplicate);
  ASSERT_TRUE(dup) << "a refused entry stays with the caller";
  EXPECT_EQ(r.admit("b", "box1", e2), Registry::Admit::ok);
  EXPECT_EQ(r.admit("c", "box1", e3), Registry::Admit::device_busy);
  EXPECT_EQ(r.admit("c", "box2", e3), Registry::Admit::ok);
  EXPECT_EQ(r.admit("d", "box3", e4), Registry::Admit::too_many);
  EXPECT_EQ(r.size(), 3u);
}

TEST(PendingRegistry, RemoveFreesTheSlotsOfItsDevice) {
  Registry r(10, 1);
  auto e1 = entry(1), e2 = entry(2);
  ASSERT_EQ(r.admit("a", "box", e1), Registry::Admit::ok);
  EXPECT_EQ(r.find("a")->value, 1);
  auto removed = r.remove("a");
  ASSERT_TRUE(removed);
  EXPECT_EQ(removed->value, 1);
  EXPECT_EQ(r.find("a"), nullptr);
  EXPECT_EQ(r.remove("a"), nullptr);
  EXPECT_EQ(r.devices(), 0u);
  EXPECT_EQ(r.admit("b", "box", e2), Registry::Admit::ok);
}

TEST(PendingRegistry, BudgetsBytesAndGivesThemBack) {
  Registry r(10, 10, 1000);
  auto e1 = entry(1), e2 = entry(2), e3 = entry(3);
  EXPECT_EQ(r.admit("a", "box", e1, 600), Registry::Admit::ok);
  EXPECT_EQ(r.admit("b", "box", e2, 401), Registry::Admit::too_many_bytes);
  ASSERT_TRUE(e2) << "a refused entry stays with the caller";
  EXPECT_EQ(r.admit("b", "box", e2, 400), Registry::Admit::ok) << "exactly the budget fits";
  EXPECT_EQ(r.bytes(), 1000u);
  EXPECT_EQ(r.admit("c", "box", e3, 1), Registry::Admit::too_many_bytes);
  r.remove("a");
  EXPECT_EQ(r.bytes(), 400u);
  EXPECT_EQ(r.admit("c", "box", e3, 600), Registry::Admit::ok);
}
