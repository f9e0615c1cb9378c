#include "commands/message_service.hpp"

#include <algorithm>

namespace boxgate::gateway {

namespace {
constexpr MessageService::Result kAllResults[] = {
    MessageService::Result::acknowledged, MessageService::Result::not_acknowledged,
    MessageService::Result::mqtt_unavailable, MessageService::Result::too_many, MessageService::Result::shutting_down};
}  // namespace

const char* result_name(MessageService::Result result) {
  switch (result) {
    case MessageService::Result::acknowledged: return "acknowledged";
    case MessageService::Result::not_acknowledged: return "not_acknowledged";
    case MessageService::Result::mqtt_unavailable: return "mqtt_unavailable";
    case MessageService::Result::too_many: return "too_many_pending";
    case MessageService::Result::shutting_down: return "shutting_down";
  }
  return "unknown";
}

struct MessageService::Waiting {
  Waiting(EventLoop& loop, std::function<void()> on_timeout, Done d) : timer(loop, std::move(on_timeout)), done(std::move(d)) {}
  Timer timer;
  Done done;
};

MessageService::MessageService(EventLoop& loop, const Topics& topics, Settings settings, CommandPublisher& publisher,
                               ops::Metrics& metrics)
    : loop_(loop), topics_(topics), settings_(settings), publisher_(publisher) {
  settings_.qos = std::max(1, settings_.qos);
  for (std::size_t i = 0; i < std::size(kAllResults); ++i) {
    outcomes_[i] = &metrics.counter("boxgate_messages_total", "one-way messages by outcome",
                                    std::string("outcome=\"") + result_name(kAllResults[i]) + "\"");
  }
}

MessageService::~MessageService() = default;

void MessageService::count(Result result) { outcomes_[static_cast<std::size_t>(result)]->inc(); }

void MessageService::send(const BoxId& box, const RequestId& id, std::string payload, Done done) {
  if (draining_) {
    count(Result::shutting_down);
    return done(Result::shutting_down);
  }
  if (waiting_.size() >= settings_.max_in_flight) {
    count(Result::too_many);
    return done(Result::too_many);
  }
  std::uint64_t seq = next_++;
  auto waiting = std::make_unique<Waiting>(loop_, [this, seq] { end(seq, Result::not_acknowledged); }, std::move(done));
  waiting->timer.start(settings_.ack_timeout);
  waiting_.emplace(seq, std::move(waiting));
  bool queued = publisher_.publish(topics_.message_topic(box, id), payload, settings_.qos, nullptr,
                                   [this, seq](bool acked) {
                                     end(seq, acked ? Result::acknowledged : Result::not_acknowledged);
                                   });
  if (!queued) end(seq, Result::mqtt_unavailable);
}

void MessageService::end(std::uint64_t seq, Result result) {
  auto it = waiting_.find(seq);
  if (it == waiting_.end()) return;  // answered already (timeout, then a late PUBACK)
  Done done = std::move(it->second->done);
  waiting_.erase(it);
  count(result);
  done(result);
}

}  // namespace boxgate::gateway
