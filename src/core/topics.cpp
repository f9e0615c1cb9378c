#include "boxgate/topics.hpp"

#include <stdexcept>

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

}  // namespace boxgate
