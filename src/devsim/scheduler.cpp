#include "devsim/scheduler.hpp"

#include <exception>

#include "boxgate/logging.hpp"

namespace boxgate::devsim {

Scheduler::Scheduler() : thread_([this] { run(); }) {}

Scheduler::~Scheduler() { stop(); }

bool Scheduler::schedule(Clock::time_point due, Task task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    // Only an earlier head changes how long the thread must sleep.
    bool new_head = queue_.empty() || due < queue_.top().due;
    queue_.push(Entry{due, next_seq_++, std::move(task)});
    if (!new_head) return true;
  }
  wake_.notify_one();
  return true;
}

std::size_t Scheduler::stop() {
  std::size_t dropped = 0;
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    dropped = queue_.size();
    queue_ = {};
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  return dropped;
}

std::size_t Scheduler::pending() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Scheduler::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    if (queue_.empty()) {
      wake_.wait(lock);
      continue;
    }
    // A copy: wait_until() reads its argument again after relocking, when a
    // push may have moved the queue's storage (a use-after-free caught by ASan).
    const Clock::time_point due = queue_.top().due;
    if (Clock::now() < due) {
      // Woken early by a new head, by stop() or spuriously: re-check the loop.
      wake_.wait_until(lock, due);
      continue;
    }
    // priority_queue::top() is const; moving out of it before pop() is safe
    // because pop() only destroys the moved-from entry.
    Task task = std::move(const_cast<Entry&>(queue_.top()).task);
    queue_.pop();
    lock.unlock();
    try {
      task();
    } catch (const std::exception& e) {
      log::get("devsim")->error("scheduler: task failed: {}", e.what());
    } catch (...) {
      log::get("devsim")->error("scheduler: task failed with an unknown exception");
    }
    lock.lock();
  }
}

}  // namespace boxgate::devsim
