#include "command_service.hpp"

#include <event2/event.h>

#include <vector>

#include "boxgate/logging.hpp"

namespace boxgate::gateway {

using Clock = std::chrono::steady_clock;

// One waiting command. Owned by the registry; it is the subscriber's listener
// for its channel until finish() unsubscribes.
struct CommandService::Pending final : redis::Subscriber::Listener {
  enum class Stage { replay_check, subscribing, waiting, final_check };

  Pending(CommandService& service, CommandRequest&& req, Completion&& completion, std::string channel_name,
          std::uint64_t seq)
      : service(service),
        request(std::move(req)),
        done(std::move(completion)),
        channel(std::move(channel_name)),
        sequence(seq),
        started(Clock::now()) {}
  ~Pending() {
    if (deadline) event_free(deadline);
  }

  void on_subscribed() override { service.publish(*this); }
  void on_message(std::string_view payload) override { service.finish(*this, Outcome::ok, std::string(payload)); }
  void on_resubscribed() override {
    // Messages published while the subscription was down are gone: the
    // result key still has the reply if the device answered meanwhile.
    if (stage == Stage::waiting) service.read_result_key(*this, false);
  }

  CommandService& service;
  CommandRequest request;
  Completion done;
  std::string channel;  // Redis channel and result key
  std::uint64_t sequence;  // tells this command from a later one reusing its id
  Clock::time_point started;
  Stage stage = Stage::replay_check;
  bool subscribed = false;
  event* deadline = nullptr;
};

CommandService::CommandService(EventLoop& loop, const Topics& topics, CommandSettings settings,
                               redis::Subscriber& subscriber, redis::Commands& commands, mqtt::Client& mqtt,
                               ops::Metrics& metrics)
    : loop_(loop),
      topics_(topics),
      settings_(settings),
      subscriber_(subscriber),
      commands_(commands),
      mqtt_(mqtt),
      registry_(settings.max_pending, settings.max_pending_per_device),
      latency_(metrics.histogram("boxgate_command_duration_seconds",
                                 "time from request to answer of accepted commands", ops::latency_buckets())),
      pending_gauge_(metrics.gauge("boxgate_commands_pending", "commands waiting for a device reply")),
      late_messages_(metrics.counter("boxgate_replies_ignored_total",
                                     "replies that arrived for a command already answered (late or duplicate)")) {
  for (std::size_t i = 0; i < std::size(kAllOutcomes); ++i) {
    outcome_counters_[i] = &metrics.counter("boxgate_commands_total", "commands by outcome",
                                            std::string("outcome=\"") + outcome_name(kAllOutcomes[i]) + "\"");
  }
  subscriber_.count_orphan_messages_in(late_messages_);
}

CommandService::~CommandService() { abort_all(Outcome::shutting_down); }

void CommandService::record(Outcome outcome, Clock::time_point started) {
  outcome_counters_[static_cast<std::size_t>(outcome)]->inc();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
  latency_.observe_us(static_cast<std::uint64_t>(us));
}

void CommandService::complete_immediately(const CommandRequest&, Completion& done, Outcome outcome) {
  outcome_counters_[static_cast<std::size_t>(outcome)]->inc();
  done(CommandResult{outcome, {}});
}

void CommandService::submit(CommandRequest request, Completion done) {
  if (draining_) return complete_immediately(request, done, Outcome::shutting_down);
  if (!commands_.up() || !subscriber_.up()) return complete_immediately(request, done, Outcome::redis_unavailable);
  if (!mqtt_.connected()) return complete_immediately(request, done, Outcome::mqtt_unavailable);

  std::string id = request.id.str();
  std::string box = request.box.str();
  std::string channel = topics_.response_channel(request.box, request.id);
  auto timeout = request.timeout;
  bool check_replay = request.caller_supplied_id;
  auto entry = std::make_unique<Pending>(*this, std::move(request), std::move(done), std::move(channel),
                                         next_sequence_++);
  switch (registry_.admit(id, box, entry)) {
    case PendingRegistry<Pending>::Admit::ok: break;
    case PendingRegistry<Pending>::Admit::duplicate:
      return complete_immediately(entry->request, entry->done, Outcome::duplicate_request_id);
    case PendingRegistry<Pending>::Admit::too_many:
      return complete_immediately(entry->request, entry->done, Outcome::too_many_pending);
    case PendingRegistry<Pending>::Admit::device_busy:
      return complete_immediately(entry->request, entry->done, Outcome::device_busy);
  }
  pending_gauge_.set(static_cast<std::int64_t>(registry_.size()));
  Pending& p = *registry_.find(id);

  p.deadline = evtimer_new(
      loop_.base(), [](evutil_socket_t, short, void* arg) {
        auto* pending = static_cast<Pending*>(arg);
        pending->service.on_deadline(*pending);
      },
      &p);
  auto padded = timeout + kTimerSlack;  // never answer 504 before the timeout
  timeval tv{static_cast<time_t>(padded.count() / 1000), static_cast<suseconds_t>((padded.count() % 1000) * 1000)};
  evtimer_add(p.deadline, &tv);

  if (!check_replay) return subscribe(p);
  // A retry of a command already answered gets the stored reply, unpublished.
  bool sent = commands_.get(p.channel, [this, id, seq = p.sequence](bool ok, std::optional<std::string> value) {
    Pending* again = registry_.find(id);
    if (!again || again->sequence != seq) return;
    if (!ok) return finish(*again, Outcome::redis_unavailable);
    if (value) return finish(*again, Outcome::replayed, std::move(*value));
    subscribe(*again);
  });
  if (!sent) finish(p, Outcome::redis_unavailable);
}

void CommandService::subscribe(Pending& p) {
  p.stage = Pending::Stage::subscribing;
  switch (subscriber_.subscribe(p.channel, &p)) {
    case redis::Subscriber::Result::ok: p.subscribed = true; return;
    case redis::Subscriber::Result::unavailable: return finish(p, Outcome::redis_unavailable);
    case redis::Subscriber::Result::busy: return finish(p, Outcome::duplicate_request_id);
  }
}

void CommandService::publish(Pending& p) {
  if (p.stage != Pending::Stage::subscribing) return;
  p.stage = Pending::Stage::waiting;
  mqtt::ResponseProperties v5{p.channel, p.request.id.str(),
                              static_cast<std::uint32_t>((p.request.timeout.count() + 999) / 1000), {}};
  if (!mqtt_.publish(topics_.request_topic(p.request.box, p.request.id), p.request.payload, settings_.qos, &v5)) {
    finish(p, Outcome::mqtt_unavailable);
  }
}

void CommandService::read_result_key(Pending& p, bool final_check) {
  bool sent = commands_.get(p.channel, [this, id = p.request.id.str(), seq = p.sequence, final_check](
                                           bool, std::optional<std::string> value) {
    Pending* again = registry_.find(id);
    if (!again || again->sequence != seq) return;
    if (value) return finish(*again, Outcome::ok, std::move(*value));
    if (final_check) finish(*again, Outcome::device_timeout);
  });
  if (!sent && final_check) finish(p, Outcome::device_timeout);
}

void CommandService::recheck_result_keys() {
  std::vector<Pending*> waiting;
  registry_.for_each([&waiting](Pending& p) {
    if (p.stage == Pending::Stage::waiting) waiting.push_back(&p);
  });
  // read_result_key never finishes a command synchronously, so the pointers hold.
  for (Pending* p : waiting) read_result_key(*p, false);
}

void CommandService::on_deadline(Pending& p) {
  if (p.stage == Pending::Stage::waiting) {
    // Last chance: the reply may be stored while its message was lost.
    p.stage = Pending::Stage::final_check;
    return read_result_key(p, true);
  }
  if (p.stage == Pending::Stage::final_check) return;
  // Never published: Redis did not confirm in time, nothing reached the device.
  finish(p, Outcome::redis_unavailable);
}

void CommandService::finish(Pending& p, Outcome outcome, std::string reply) {
  std::unique_ptr<Pending> owned = registry_.remove(p.request.id.str());
  if (p.subscribed) subscriber_.unsubscribe(p.channel);
  record(outcome, p.started);
  pending_gauge_.set(static_cast<std::int64_t>(registry_.size()));
  if (outcome == Outcome::device_timeout) {
    log::get("gateway")->info("box {} request {}: no reply within {} ms", p.request.box.str(), p.request.id.str(),
                              p.request.timeout.count());
  }
  Completion done = std::move(p.done);
  owned.reset();
  done(CommandResult{outcome, std::move(reply)});
}

void CommandService::cancel(const RequestId& id) {
  if (Pending* p = registry_.find(id.str())) finish(*p, Outcome::client_gone);
}

void CommandService::abort_all(Outcome outcome) {
  std::vector<std::string> ids;
  registry_.for_each([&ids](const Pending& p) { ids.push_back(p.request.id.str()); });
  for (const auto& id : ids) {
    if (Pending* p = registry_.find(id)) finish(*p, outcome);
  }
}

}  // namespace boxgate::gateway
