// The bridge's reply-topic parser (Topics::parse_reply_topic) and the
// devices' command-topic parser: a topic is accepted exactly when an
// independent split says it is {prefix}/{box}/response[/{req}] (or
// .../request/{req}) with valid ids, and the ids it yields rebuild the topic
// byte for byte -- so no topic can smuggle a second level or a wildcard into
// the key and channel the bridge writes.

#include <string>
#include <vector>

#include "boxgate/topics.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

namespace {

std::vector<std::string> levels(const std::string& topic) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t slash = topic.find('/', start);
    out.push_back(topic.substr(start, slash == std::string::npos ? std::string::npos : slash - start));
    if (slash == std::string::npos) return out;
    start = slash + 1;
  }
}

// The oracle: the levels after the prefix's, checked one by one.
bool oracle(const std::string& topic, const std::vector<std::string>& prefix, const std::string& kind, bool id_required) {
  std::vector<std::string> parts = levels(topic);
  if (parts.size() < prefix.size() + 2) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (parts[i] != prefix[i]) return false;
  }
  std::size_t rest = parts.size() - prefix.size();
  if (!is_valid_id(parts[prefix.size()]) || parts[prefix.size() + 1] != kind) return false;
  if (rest == 2) return !id_required;
  return rest == 3 && is_valid_id(parts[prefix.size() + 2]);
}

void check_prefix(const std::string& topic, const std::string& prefix) {
  const Topics topics(prefix);
  const std::vector<std::string> prefix_levels = levels(prefix);

  auto reply = topics.parse_reply_topic(topic);
  check(reply.has_value() == oracle(topic, prefix_levels, "response", false), "reply topic verdict differs");
  if (reply) {
    std::string rebuilt = reply->request ? topics.response_channel(reply->box, *reply->request)
                                         : topics.response_topic_without_id(reply->box);
    check(rebuilt == topic, "reply topic does not rebuild from its ids");
  }
  auto request = topics.parse_request_topic(topic);
  check(request.has_value() == oracle(topic, prefix_levels, "request", true), "request topic verdict differs");
  if (request) check(topics.request_topic(request->box, *request->request) == topic, "request topic does not rebuild");
}

}  // namespace

int reply_topic(const std::uint8_t* data, std::size_t size) {
  const std::string topic(reinterpret_cast<const char*>(data), size);
  check_prefix(topic, "dev");
  check_prefix(topic, "site-1/dev");
  return 0;
}

}  // namespace boxgate::fuzz
