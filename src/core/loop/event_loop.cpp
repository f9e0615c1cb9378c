#include "boxgate/loop/event_loop.hpp"

#include <event2/event.h>

#include <stdexcept>

namespace boxgate {

EventLoop::EventLoop() {
  // The changelist merges epoll changes made within one iteration (no fd is
  // ever dup()ed here, the one case it mishandles). The clock stays libevent's
  // coarse one: a precise clock costs a timerfd_settime() per iteration; users
  // that must never fire early pad their timeouts (kTimerSlack).
  event_config* cfg = event_config_new();
  event_config_set_flag(cfg, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (!base_) throw std::runtime_error("event_base_new failed");
}

EventLoop::~EventLoop() { event_base_free(base_); }

void EventLoop::run() {
  in_run_ = true;
  event_base_dispatch(base_);
  in_run_ = false;
}

void EventLoop::stop() { event_base_loopbreak(base_); }

void EventLoop::stop_after(std::chrono::milliseconds delay) {
  timeval tv{static_cast<time_t>(delay.count() / 1000), static_cast<suseconds_t>((delay.count() % 1000) * 1000)};
  event_base_loopexit(base_, &tv);
}

Timer::Timer(EventLoop& loop, std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {
  event_ = event_new(loop.base(), -1, 0, &Timer::on_timer, this);
}

Timer::~Timer() { event_free(event_); }

void Timer::start(std::chrono::milliseconds after, bool repeat) {
  event_del(event_);
  event_assign(event_, event_get_base(event_), -1, repeat ? EV_PERSIST : 0, &Timer::on_timer, this);
  timeval tv{static_cast<time_t>(after.count() / 1000), static_cast<suseconds_t>((after.count() % 1000) * 1000)};
  event_add(event_, &tv);
}

void Timer::cancel() { event_del(event_); }

bool Timer::pending() const { return event_pending(event_, EV_TIMEOUT, nullptr) != 0; }

void Timer::on_timer(int, short, void* self) {
  // Copy: the callback may destroy this Timer.
  auto fire = static_cast<Timer*>(self)->on_fire_;
  fire();
}

}  // namespace boxgate
