#pragma once
// EventLoop: one libevent event_base and the thread that runs it.
//
// Everything a daemon does with HTTP, Redis, pending requests and timers runs
// on this one thread ("the loop thread"). Other threads (paho's callback thread,
// signal handling) hand work to it with post(), the only thread-safe method.
// Posted work runs in FIFO order on the loop thread.

#include <chrono>
#include <functional>
#include <mutex>
#include <vector>

struct event_base;
struct event;

namespace boxgate {

// libevent's coarse monotonic clock ticks every few milliseconds (4 ms here), so
// a timer may fire up to one tick early; pad deadlines that must not.
inline constexpr std::chrono::milliseconds kTimerSlack{5};

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  event_base* base() const noexcept { return base_; }

  // Runs the loop on the calling thread until stop(). That thread becomes the
  // loop thread.
  void run();
  // Loop thread: true while run() is on the stack (inside a callback).
  bool running() const noexcept { return in_run_; }
  // Loop thread: leave run() after the current iteration.
  void stop();
  // Loop thread: leave run() once `delay` has passed (lets queued writes go out).
  void stop_after(std::chrono::milliseconds delay);
  // Any thread: run `task` on the loop thread soon. Never blocks for long.
  void post(std::function<void()> task);

 private:
  static void on_wakeup(int, short, void* self);
  void drain_posted();

  event_base* base_ = nullptr;
  bool in_run_ = false;
  event* wakeup_ = nullptr;
  std::mutex mutex_;                          // guards posted_
  std::vector<std::function<void()>> posted_;
  std::vector<std::function<void()>> running_;  // loop thread only
};

// A one-shot or repeating timer on a loop. Loop thread only. Destroying it
// cancels it. The callback may destroy the Timer.
class Timer {
 public:
  Timer(EventLoop& loop, std::function<void()> on_fire);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  void start(std::chrono::milliseconds after, bool repeat = false);
  void cancel();
  bool pending() const;

 private:
  static void on_timer(int, short, void* self);
  event* event_ = nullptr;
  std::function<void()> on_fire_;
};

}  // namespace boxgate
