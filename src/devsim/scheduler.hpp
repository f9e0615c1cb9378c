#pragma once
// A timer thread: runs tasks at their due time, earliest first.
//
// Why: a paho callback must never block, so a delayed reply cannot sleep in
// the message callback. The callback schedules the publish here and returns.
//
// Threads: schedule() may be called from any thread (paho's callback thread in
// practice). Tasks run one at a time on the scheduler's own thread, outside the
// lock, so a task may call schedule() again (the connect retry does). A task
// must not block for long: it delays every task behind it. Exceptions thrown
// by a task are caught and logged, never propagated.
//
// Overflow policy: unbounded. The fleet's own pace bounds it (one entry per
// outstanding delayed reply); a benchmark that sends faster than the replies
// are due grows the queue, which is the point of a slow device.

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <mutex>
#include <queue>
#include <thread>
#include <vector>

namespace boxgate::devsim {

class Scheduler {
 public:
  using Clock = std::chrono::steady_clock;
  using Task = std::function<void()>;

  // Starts the timer thread.
  Scheduler();
  // Calls stop().
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Runs `task` on the timer thread at `due` (at once if it is past). Returns
  // false, dropping the task, once stop() was called.
  bool schedule(Clock::time_point due, Task task);
  bool schedule_after(std::chrono::milliseconds delay, Task task) {
    return schedule(Clock::now() + delay, std::move(task));
  }

  // Stops the thread after the task that is running, if any; tasks not yet
  // due are dropped. Returns how many were dropped. Idempotent; not from a task.
  std::size_t stop();

  // Tasks waiting (for tests and the exit log).
  std::size_t pending() const;

 private:
  struct Entry {
    Clock::time_point due;
    std::uint64_t seq;  // keeps tasks with the same due time in schedule order
    Task task;
  };
  struct Later {
    bool operator()(const Entry& a, const Entry& b) const {
      return a.due != b.due ? a.due > b.due : a.seq > b.seq;
    }
  };

  void run();

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::priority_queue<Entry, std::vector<Entry>, Later> queue_;  // guarded by mutex_
  std::uint64_t next_seq_ = 0;                                   // guarded by mutex_
  bool stopping_ = false;                                        // guarded by mutex_
  std::thread thread_;                                           // last: starts after the rest exists
};

}  // namespace boxgate::devsim
