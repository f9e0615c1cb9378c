#include "boxgate/topics.hpp"

#include <stdexcept>
#include <vector>

namespace boxgate {

bool is_valid_prefix(std::string_view prefix) noexcept {
  if (prefix.empty()) return false;
  while (true) {
    auto slash = prefix.find('/');
    if (!is_valid_id(prefix.substr(0, slash))) return false;
    if (slash == std::string_view::npos) return true;
    prefix.remove_prefix(slash + 1);
  }
}

Topics::Topics(std::string prefix) : prefix_(std::move(prefix)) {
  if (!is_valid_prefix(prefix_)) throw std::invalid_argument("invalid topic prefix");
}

std::string Topics::request_topic(const BoxId& box, const RequestId& req) const {
  return prefix_ + '/' + box.str() + "/request/" + req.str();
}

std::string Topics::device_request_filter(const BoxId& box) const {
  return prefix_ + '/' + box.str() + "/request/+";
}

std::string Topics::response_channel(const BoxId& box, const RequestId& req) const {
  return prefix_ + '/' + box.str() + "/response/" + req.str();
}

std::string Topics::command_key(const BoxId& box, const RequestId& req) const {
  return prefix_ + '/' + box.str() + "/command/" + req.str();
}

std::string Topics::message_topic(const BoxId& box, const RequestId& req) const {
  return prefix_ + '/' + box.str() + "/message/" + req.str();
}

std::string Topics::response_topic_without_id(const BoxId& box) const {
  return prefix_ + '/' + box.str() + "/response";
}

namespace {
std::string shared(std::string_view group, std::string filter) {
  if (group.empty()) return filter;
  return "$share/" + std::string(group) + '/' + filter;
}
}  // namespace

std::string Topics::reply_filter_with_id(std::string_view share_group) const {
  return shared(share_group, prefix_ + "/+/response/+");
}

std::string Topics::reply_filter_without_id(std::string_view share_group) const {
  return shared(share_group, prefix_ + "/+/response");
}

std::string Topics::event_channel(const BoxId& box, const EventName& name) const {
  return prefix_ + '/' + box.str() + "/event/" + name.str();
}

std::string Topics::event_channel_pattern(const BoxId& box) const { return prefix_ + '/' + box.str() + "/event/*"; }

std::string Topics::box_events_stream(const BoxId& box) const { return prefix_ + '/' + box.str() + "/events"; }

std::string Topics::fleet_events_stream() const { return prefix_ + "/events"; }

std::string Topics::outcome_stream() const { return prefix_ + "/commands"; }

std::string Topics::presence_stream() const { return prefix_ + "/presence"; }

std::string Topics::webhook_dead_stream() const { return prefix_ + "/_webhooks/dead"; }

std::string Topics::webhook_replay_stream() const { return prefix_ + "/_webhooks/replay"; }

std::string Topics::events_bytes_key(std::string_view stream) const {
  std::string key(stream);
  key += "/bytes{";
  key += stream;
  key += '}';
  return key;
}

std::string Topics::state_key(const BoxId& box) const { return prefix_ + '/' + box.str() + "/state"; }

std::string Topics::event_filter(std::string_view share_group) const {
  return shared(share_group, prefix_ + "/+/event/+");
}

std::string Topics::state_filter(std::string_view share_group) const { return shared(share_group, prefix_ + "/+/state"); }

namespace {
// The levels of `topic` after "{prefix}/", split on '/'; empty when the
// prefix does not match.
std::vector<std::string_view> levels_after(std::string_view topic, std::string_view prefix) {
  std::vector<std::string_view> out;
  if (topic.size() <= prefix.size() + 1 || topic.substr(0, prefix.size()) != prefix || topic[prefix.size()] != '/') {
    return out;
  }
  topic.remove_prefix(prefix.size() + 1);
  while (out.size() < 4) {  // more levels than any data topic has: stop splitting
    auto slash = topic.find('/');
    out.push_back(topic.substr(0, slash));
    if (slash == std::string_view::npos) break;
    topic.remove_prefix(slash + 1);
  }
  return out;
}
}  // namespace

Topics::DataKind Topics::data_kind(std::string_view topic) const {
  auto levels = levels_after(topic, prefix_);
  if (levels.size() == 3 && levels[1] == "event") return DataKind::event;
  if (levels.size() == 2 && levels[1] == "state") return DataKind::state;
  return DataKind::none;
}

std::optional<EventAddress> Topics::parse_event_topic(std::string_view topic) const {
  auto levels = levels_after(topic, prefix_);
  if (levels.size() != 3 || levels[1] != "event") return std::nullopt;
  auto box = BoxId::parse(levels[0]);
  auto name = EventName::parse(levels[2]);
  if (!box || !name) return std::nullopt;
  return EventAddress{std::move(*box), std::move(*name)};
}

std::optional<BoxId> Topics::parse_state_topic(std::string_view topic) const {
  auto levels = levels_after(topic, prefix_);
  if (levels.size() != 2 || levels[1] != "state") return std::nullopt;
  return BoxId::parse(levels[0]);
}

std::optional<ReplyAddress> Topics::parse(std::string_view topic, std::string_view kind) const {
  // {prefix}/{box}/{kind}[/{req}]
  if (topic.size() <= prefix_.size() + 1 || topic.substr(0, prefix_.size()) != prefix_ ||
      topic[prefix_.size()] != '/') {
    return std::nullopt;
  }
  topic.remove_prefix(prefix_.size() + 1);
  auto slash = topic.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto box = BoxId::parse(topic.substr(0, slash));
  if (!box) return std::nullopt;
  topic.remove_prefix(slash + 1);
  if (topic.substr(0, kind.size()) != kind) return std::nullopt;
  topic.remove_prefix(kind.size());
  if (topic.empty()) return ReplyAddress{std::move(*box), std::nullopt};
  if (topic[0] != '/') return std::nullopt;
  auto req = RequestId::parse(topic.substr(1));
  if (!req) return std::nullopt;
  return ReplyAddress{std::move(*box), std::move(*req)};
}

std::string Topics::status_topic(const BoxId& box) const { return prefix_ + '/' + box.str() + "/status"; }

std::string Topics::status_filter() const { return prefix_ + "/+/status"; }

std::string Topics::presence_key(const BoxId& box) const { return prefix_ + '/' + box.str() + "/presence"; }

namespace {
// {prefix}/{box}/{name}{{prefix}/{box}}: the hash tag puts every key of one
// box's queue on one cluster slot.
std::string box_tagged(const std::string& prefix, const BoxId& box, std::string_view name) {
  std::string base = prefix + '/' + box.str();
  std::string key = base;
  key += '/';
  key += name;
  key += '{';
  key += base;
  key += '}';
  return key;
}
}  // namespace

std::string Topics::queue_key(const BoxId& box) const { return box_tagged(prefix_, box, "queue"); }
std::string Topics::queue_items_key(const BoxId& box) const { return box_tagged(prefix_, box, "queue-items"); }
std::string Topics::queue_index_key() const { return prefix_ + "/_queue/boxes"; }
std::string Topics::queue_bytes_key() const { return prefix_ + "/_queue/bytes"; }
std::string Topics::queue_sweep_key() const { return prefix_ + "/_queue/sweep"; }
std::string Topics::queue_wake_channel() const { return prefix_ + "/_queue/wake"; }

bool Topics::is_status_topic(std::string_view topic) const noexcept {
  constexpr std::string_view kStatus = "/status";
  if (topic.size() < prefix_.size() + 1 + kStatus.size() || topic.substr(0, prefix_.size()) != prefix_ ||
      topic[prefix_.size()] != '/' || topic.substr(topic.size() - kStatus.size()) != kStatus) {
    return false;
  }
  std::string_view level = topic.substr(prefix_.size() + 1, topic.size() - prefix_.size() - 1 - kStatus.size());
  return level.find('/') == std::string_view::npos;
}

std::optional<BoxId> Topics::parse_status_topic(std::string_view topic) const {
  if (!is_status_topic(topic)) return std::nullopt;
  auto address = parse(topic, "status");
  if (!address || address->request) return std::nullopt;
  return std::move(address->box);
}

std::optional<ReplyAddress> Topics::parse_reply_topic(std::string_view topic) const {
  return parse(topic, "response");
}

std::optional<ReplyAddress> Topics::parse_request_topic(std::string_view topic) const {
  auto address = parse(topic, "request");
  if (address && !address->request) return std::nullopt;
  return address;
}

std::optional<ReplyAddress> Topics::parse_message_topic(std::string_view topic) const {
  auto address = parse(topic, "message");
  if (address && !address->request) return std::nullopt;
  return address;
}

std::string Topics::device_message_filter(const BoxId& box) const { return prefix_ + '/' + box.str() + "/message/+"; }

}  // namespace boxgate
