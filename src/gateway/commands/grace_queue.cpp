#include "commands/grace_queue.hpp"

namespace boxgate::gateway {

void GraceQueue::hold(CommandRequest&& request, Completion&& done, std::chrono::milliseconds wait,
                      std::size_t bytes) {
  std::string id = request.id.str();
  auto timer = std::make_unique<Timer>(loop_, [this, id] {
    auto it = held_.find(id);
    if (it == held_.end()) return;
    Held held = release(it);  // frees the timer: nothing of it is touched after this
    on_expired_(std::move(held));
  });
  timer->start(wait);
  bytes_ += bytes;
  held_.emplace(id, Slot{Held{std::move(request), std::move(done), std::chrono::steady_clock::now()}, bytes,
                         std::move(timer)});
}

GraceQueue::Held GraceQueue::release(std::unordered_map<std::string, Slot>::iterator it) {
  Held held = std::move(it->second.held);
  bytes_ -= it->second.bytes;
  held_.erase(it);
  return held;
}

std::optional<GraceQueue::Held> GraceQueue::take(const std::string& id) {
  auto it = held_.find(id);
  if (it == held_.end()) return std::nullopt;
  return release(it);
}

std::vector<GraceQueue::Held> GraceQueue::take_all() {
  std::vector<Held> all;
  all.reserve(held_.size());
  while (!held_.empty()) all.push_back(release(held_.begin()));
  return all;
}

}  // namespace boxgate::gateway
