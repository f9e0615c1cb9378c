// Unit tests of the devsim timer thread: due-time order, FIFO among equal due
// times, stop() dropping what is not due, and a throwing task not killing it.
//
// Built into devsim_unit_tests (src/devsim/CMakeLists.txt); in the core-only
// boxgate_unit_tests (tests/unit glob) this file compiles to nothing.

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <vector>

#include "devsim/scheduler.hpp"

using namespace boxgate::devsim;
using namespace std::chrono_literals;

namespace {

// Collects what tasks record, and lets the test wait for a count with a deadline.
class Recorder {
 public:
  void add(int value) {
    {
      std::lock_guard lock(mutex_);
      values_.push_back(value);
    }
    changed_.notify_all();
  }
  bool wait_for_count(std::size_t n, std::chrono::milliseconds limit) {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, limit, [&] { return values_.size() >= n; });
  }
  std::vector<int> values() {
    std::lock_guard lock(mutex_);
    return values_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  std::vector<int> values_;
};

}  // namespace

TEST(DevsimScheduler, RunsTasksInDueOrder) {
  Recorder recorder;  // first: outlives the timer thread, which may still be in add()
  Scheduler scheduler;
  auto now = Scheduler::Clock::now();
  scheduler.schedule(now + 60ms, [&] { recorder.add(3); });
  scheduler.schedule(now + 20ms, [&] { recorder.add(1); });
  scheduler.schedule(now + 40ms, [&] { recorder.add(2); });
  ASSERT_TRUE(recorder.wait_for_count(3, 5s));
  EXPECT_EQ(recorder.values(), (std::vector<int>{1, 2, 3}));
}

TEST(DevsimScheduler, EqualDueTimesKeepScheduleOrder) {
  Recorder recorder;  // first: outlives the timer thread, which may still be in add()
  Scheduler scheduler;
  auto due = Scheduler::Clock::now() + 20ms;
  for (int i = 0; i < 50; ++i) scheduler.schedule(due, [&recorder, i] { recorder.add(i); });
  ASSERT_TRUE(recorder.wait_for_count(50, 5s));
  auto values = recorder.values();
  for (int i = 0; i < 50; ++i) EXPECT_EQ(values[static_cast<std::size_t>(i)], i);
}

TEST(DevsimScheduler, DoesNotRunATaskEarly) {
  Recorder recorder;  // first: outlives the timer thread, which may still be in add()
  Scheduler scheduler;
  auto start = Scheduler::Clock::now();
  Scheduler::Clock::time_point ran;
  scheduler.schedule_after(50ms, [&] {
    ran = Scheduler::Clock::now();
    recorder.add(1);
  });
  ASSERT_TRUE(recorder.wait_for_count(1, 5s));
  EXPECT_GE(ran - start, 50ms);
}

TEST(DevsimScheduler, StopDropsTasksNotYetDueAndRefusesNewOnes) {
  Recorder recorder;  // first: outlives the timer thread, which may still be in add()
  Scheduler scheduler;
  scheduler.schedule_after(1h, [&] { recorder.add(1); });
  scheduler.schedule_after(1h, [&] { recorder.add(2); });
  EXPECT_EQ(scheduler.pending(), 2u);
  EXPECT_EQ(scheduler.stop(), 2u);
  EXPECT_FALSE(scheduler.schedule_after(0ms, [&] { recorder.add(3); }));
  EXPECT_EQ(scheduler.stop(), 0u);  // idempotent
  EXPECT_TRUE(recorder.values().empty());
}

TEST(DevsimScheduler, SurvivesAThrowingTaskAndAcceptsTasksFromTasks) {
  Recorder recorder;  // first: outlives the timer thread, which may still be in add()
  Scheduler scheduler;
  scheduler.schedule_after(0ms, [] { throw std::runtime_error("boom"); });
  scheduler.schedule_after(5ms, [&] { scheduler.schedule_after(5ms, [&] { recorder.add(7); }); });
  ASSERT_TRUE(recorder.wait_for_count(1, 5s));
  EXPECT_EQ(recorder.values(), (std::vector<int>{7}));
}

