#pragma once
// EventLoop: one libevent event_base and the thread that runs it.
//
// Everything a daemon does with HTTP, Redis, MQTT, pending requests and timers
// runs on this one thread ("the loop thread"); no other thread touches the
// loop, so libevent runs without locks (no evthread_use_pthreads) and nothing
// here is thread-safe. Signals reach it as libevent signal events.

#include <chrono>
#include <functional>

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
  // True while run() is on the stack (inside a callback).
  bool running() const noexcept { return in_run_; }
  // Leave run() after the current iteration.
  void stop();
  // Leave run() once `delay` has passed (lets queued writes go out).
  void stop_after(std::chrono::milliseconds delay);

 private:
  event_base* base_ = nullptr;
  bool in_run_ = false;
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
