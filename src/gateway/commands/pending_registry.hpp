#pragma once
// PendingRegistry: the commands waiting on this gateway, by request id, with
// the gateway-wide limits in count and in bytes, and the per-device limit.
// Loop thread only (no locks).

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace boxgate::gateway {

template <class Entry>
class PendingRegistry {
 public:
  enum class Admit { ok, duplicate, too_many, too_many_bytes, device_busy };

  PendingRegistry(std::size_t max_total, std::size_t max_per_device,
                  std::size_t max_bytes = static_cast<std::size_t>(-1))
      : max_total_(max_total), max_per_device_(max_per_device), max_bytes_(max_bytes) {}

  // Checks the limits and the id, then takes `entry`, which holds `bytes`
  // until removed. On refusal `entry` is untouched.
  Admit admit(const std::string& request_id, const std::string& box_id, std::unique_ptr<Entry>& entry,
              std::size_t bytes = 0) {
    if (entries_.count(request_id)) return Admit::duplicate;
    if (entries_.size() >= max_total_) return Admit::too_many;
    if (bytes > max_bytes_ - bytes_) return Admit::too_many_bytes;
    auto& per_device = per_device_[box_id];
    if (per_device >= max_per_device_) {
      if (per_device == 0) per_device_.erase(box_id);
      return Admit::device_busy;
    }
    ++per_device;
    bytes_ += bytes;
    entries_.emplace(request_id, Slot{box_id, bytes, std::move(entry)});
    return Admit::ok;
  }

  Entry* find(const std::string& request_id) const {
    auto it = entries_.find(request_id);
    return it == entries_.end() ? nullptr : it->second.entry.get();
  }

  // Removes and returns the entry (null if absent).
  std::unique_ptr<Entry> remove(const std::string& request_id) {
    auto it = entries_.find(request_id);
    if (it == entries_.end()) return nullptr;
    auto entry = std::move(it->second.entry);
    auto device = per_device_.find(it->second.box_id);
    if (--device->second == 0) per_device_.erase(device);
    bytes_ -= it->second.bytes;
    entries_.erase(it);
    return entry;
  }

  std::size_t size() const noexcept { return entries_.size(); }
  std::size_t bytes() const noexcept { return bytes_; }
  std::size_t devices() const noexcept { return per_device_.size(); }

  template <class Fn>
  void for_each(Fn&& fn) {
    for (const auto& [id, slot] : entries_) fn(*slot.entry);
  }

 private:
  struct Slot {
    std::string box_id;
    std::size_t bytes;
    std::unique_ptr<Entry> entry;
  };
  std::size_t max_total_;
  std::size_t max_per_device_;
  std::size_t max_bytes_;
  std::size_t bytes_ = 0;
  std::unordered_map<std::string, Slot> entries_;
  std::unordered_map<std::string, std::size_t> per_device_;
};

}  // namespace boxgate::gateway
