#include "device/reply_cache.hpp"

namespace boxgate::device {

ReplyCache::Seen ReplyCache::admit(const std::string& id) {
  if (auto it = entries_.find(id); it != entries_.end()) {
    if (!it->second.done) return Seen::running;
    return it->second.reply ? Seen::answered : Seen::answered_not_kept;
  }
  entries_.emplace(id, Entry{});
  order_.push_back(id);
  evict();
  return Seen::new_command;
}

const ReplyCache::Stored* ReplyCache::reply(const std::string& id) const {
  auto it = entries_.find(id);
  if (it == entries_.end() || !it->second.reply) return nullptr;
  return &*it->second.reply;
}

void ReplyCache::answered(const std::string& id, Stored reply) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;  // evicted while running: nothing to keep
  it->second.done = true;
  if (cost(reply) > max_bytes_) return;
  bytes_ += cost(reply);
  it->second.reply = std::move(reply);
  evict();
}

void ReplyCache::evict() {
  // Oldest first until both bounds hold; the newest entry always stays.
  while (order_.size() > 1 && (entries_.size() > max_entries_ || bytes_ > max_bytes_)) {
    auto it = entries_.find(order_.front());
    if (it != entries_.end()) {
      if (it->second.reply) bytes_ -= cost(*it->second.reply);
      entries_.erase(it);
    }
    order_.pop_front();
  }
}

}  // namespace boxgate::device
