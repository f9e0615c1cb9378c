#include "commands/command_service.hpp"

#include <event2/event.h>

#include <utility>
#include <vector>

#include "boxgate/logging.hpp"
#include "boxgate/stored_reply.hpp"
#include "commands/command_record.hpp"

namespace boxgate::gateway {

using Clock = std::chrono::steady_clock;

// One waiting command. Owned by the registry; it is the subscriber's listener
// for its channel until finish() unsubscribes.
struct CommandService::Pending final : redis::Subscriber::Listener {
  // unsent: subscribed, but the publish found MQTT just lost; waits for it.
  enum class Stage { subscribing, unsent, waiting, final_check };

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

  void on_subscribed() override {
    confirmed = true;
    service.maybe_publish(*this);
  }
  void on_message(std::string_view payload) override {
    // A large reply travels as a notice; the reply itself is in the result key.
    if (is_stored_reply_notice(payload)) {
      if (stage == Stage::waiting) service.read_result_key(*this, KeyRead::notice);
      return;
    }
    service.finish(*this, Outcome::ok, std::string(payload));
  }
  void on_resubscribed() override {
    // Messages published while the subscription was down are gone: the
    // result key still has the reply if the device answered meanwhile.
    if (stage == Stage::waiting) service.read_result_key(*this, KeyRead::recheck);
  }

  CommandService& service;
  CommandRequest request;  // request.payload is emptied once published
  Completion done;
  std::string channel;     // Redis channel and result key
  std::uint64_t sequence;  // tells this command from a later one reusing its id
  Clock::time_point started;
  Stage stage = Stage::subscribing;
  bool subscribed = false;  // subscribe() sent (unsubscribe owed)
  bool confirmed = false;   // Redis confirmed the subscription
  enum class Record { unsent, sent, written } record = Record::unsent;
  CommandRecord written;    // what the record says, once written
  Clock::time_point record_expires{};  // when Redis lets the record go (its PX at send time)
  bool published = false;
  bool acked = false;       // the broker acknowledged the publish
  bool presence_known = true;  // offline_policy=fail: the presence read answered
  bool accepted = false;       // async: answered 202; nobody waits on `done`
  event* deadline = nullptr;
  // From a box's queue (send_queued): its record was written when queued.
  bool from_queue = false;
  std::chrono::milliseconds expiry_cap{0};
  QueuedHooks hooks;
};

// A look-up of an id's record and result key.
struct CommandService::Known {
  std::optional<CommandRequest> request;  // optional: ids have no empty value
  Completion done;
  bool resumed = false;
  std::optional<std::string> record;
  std::optional<std::string> result;
  std::optional<Timer> bound;  // a stalled Redis must not hold the caller
  bool over = false;
};

CommandService::CommandService(EventLoop& loop, const Topics& topics, CommandSettings settings, CommandPorts ports,
                               ops::Metrics& metrics)
    : loop_(loop),
      topics_(topics),
      settings_(settings),
      ports_(ports),
      registry_(settings.max_pending, settings.max_pending_per_device, settings.max_bytes),
      grace_(loop, [this](GraceQueue::Held&& held) { grace_ended(std::move(held)); }),
      latency_(metrics.histogram("boxgate_command_duration_seconds",
                                 "time from request to answer of accepted commands", ops::latency_buckets())),
      pending_gauge_(metrics.gauge("boxgate_commands_pending", "commands waiting for a device reply")),
      held_in_grace_(metrics.counter("boxgate_commands_held_in_grace_total",
                                     "new commands that waited for a reconnecting dependency")),
      late_messages_(metrics.counter("boxgate_replies_ignored_total",
                                     "replies that arrived for a command already answered (late or duplicate)")),
      by_mode_{&metrics.counter("boxgate_commands_admitted_total", "commands admitted, by mode", "mode=\"sync\""),
               &metrics.counter("boxgate_commands_admitted_total", "commands admitted, by mode", "mode=\"async\"")},
      orphans_discarded_(metrics.counter("boxgate_orphan_results_discarded_total",
                                         "stored replies no command record claims, deleted before their id ran")),
      records_restored_(metrics.counter("boxgate_command_records_restored_total",
                                        "records of waiting commands written again after a Redis reconnect found "
                                        "them gone")) {
  for (std::size_t i = 0; i < std::size(kAllOutcomes); ++i) {
    outcome_counters_[i] = &metrics.counter("boxgate_commands_total", "commands by outcome",
                                            std::string("outcome=\"") + outcome_name(kAllOutcomes[i]) + "\"");
  }
}

CommandService::~CommandService() { abandon_all(); }

void CommandService::record(Outcome outcome, Clock::time_point started) {
  outcome_counters_[static_cast<std::size_t>(outcome)]->inc();
  auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - started).count();
  latency_.observe_us(static_cast<std::uint64_t>(us));
}

void CommandService::complete_immediately(Completion& done, Outcome outcome) {
  outcome_counters_[static_cast<std::size_t>(outcome)]->inc();
  done(CommandResult{outcome, {}});
}

CommandService::Pending* CommandService::still_waiting(const std::string& id, std::uint64_t sequence) const {
  Pending* p = registry_.find(id);
  return p && p->sequence == sequence ? p : nullptr;
}

void CommandService::submit(CommandRequest request, Completion done) {
  // Step 1 comes first: a retry of a known id is answered from its record
  // and result key even while draining, with MQTT down or at the limits.
  if (request.caller_supplied_id && ports_.state.up()) {
    return look_up_known(std::move(request), std::move(done), false);
  }
  admit(std::move(request), std::move(done), false);
}

void CommandService::look_up_known(CommandRequest&& request, Completion&& done, bool resumed) {
  // Shared: std::function needs a copyable callable; nothing is copied.
  auto known = std::make_shared<Known>();
  known->request = std::move(request);
  known->done = std::move(done);
  known->resumed = resumed;
  ++lookups_;
  // Whichever comes first -- the answers or the bound -- ends the look-up;
  // close() says whether this caller was the first.
  auto close = [this, known] {
    if (known->over) return false;
    known->over = true;
    known->bound.reset();
    --lookups_;
    return true;
  };
  const CommandRequest& r = *known->request;
  bool sent = get_pair(ports_.state, topics_.command_key(r.box, r.id), topics_.response_channel(r.box, r.id),
                       [this, known, close](bool ok, std::optional<std::string> record,
                                            std::optional<std::string> result) {
                         if (!close()) return;  // answered by the bound already
                         if (!ok) return complete_immediately(known->done, Outcome::redis_unavailable);
                         known->record = std::move(record);
                         known->result = std::move(result);
                         answer_known(*known);
                       });
  if (!sent) {
    close();
    return complete_immediately(known->done, Outcome::redis_unavailable);
  }
  if (known->over) return;  // answered from inside get()
  // Nothing was published yet, so a 503 is safe to retry.
  known->bound.emplace(loop_, [this, known, close] {
    if (close()) complete_immediately(known->done, Outcome::redis_unavailable);
  });
  known->bound->start(known->request->timeout);
}

void CommandService::answer_known(Known& known) {
  CommandRequest& request = *known.request;
  std::optional<CommandRecord> record = known.record ? parse_record(*known.record) : std::nullopt;
  switch (answer_retry(record, known.result.has_value(), request.body_sha256, request.mode, now_ms())) {
    case RetryAnswer::send:
      if (known.result) {
        // A reply no record claims (planted, or outliving its record): never
        // handed to whoever picks this id next. Deleted before the new
        // record is written, on the same connection, so it cannot hit a
        // reply to the command about to be sent.
        if (orphan_log_.allow()) {
          log::Fields fields{{"request_id", request.id.str()}, {"box_id", request.box.str()}};
          log::get("gateway")->warn(
              "box {} request {}: deleting a stored reply that no command record claims (more this second not "
              "logged; counted in boxgate_orphan_results_discarded_total)",
              request.box.str(), request.id.str());
        }
        ports_.state.remove(topics_.response_channel(request.box, request.id));
        orphans_discarded_.inc();
      }
      return admit(std::move(request), std::move(known.done), known.resumed);
    case RetryAnswer::request_id_reused:
      return complete_immediately(known.done, Outcome::request_id_reused);
    case RetryAnswer::replay:
      outcome_counters_[static_cast<std::size_t>(Outcome::replayed)]->inc();
      return known.done(CommandResult{Outcome::replayed, std::move(*known.result)});
    case RetryAnswer::accept_again:
      // A retry of a queued command: its entry may be missing if the
      // gateway that wrote the record died before queueing it.
      if (record->state == CommandState::queued && request.ttl && ports_.queue) {
        return ports_.queue->enqueue(std::move(request), std::move(known.done), record);
      }
      outcome_counters_[static_cast<std::size_t>(Outcome::accepted)]->inc();
      return known.done(CommandResult{Outcome::accepted, *known.record});
    case RetryAnswer::duplicate:
      return complete_immediately(known.done, Outcome::duplicate_request_id);
    case RetryAnswer::timed_out_before:
      outcome_counters_[static_cast<std::size_t>(Outcome::timed_out_before)]->inc();
      return known.done(CommandResult{Outcome::timed_out_before, {}, record->delivered});
  }
}

std::optional<Outcome> CommandService::missing_dependency() const {
  if (!ports_.state.up() || !ports_.channels.up()) return Outcome::redis_unavailable;
  if (!ports_.publisher.connected()) return Outcome::mqtt_unavailable;
  return std::nullopt;
}

void CommandService::admit(CommandRequest&& request, Completion&& done, bool resumed) {
  if (draining_ && !resumed) return complete_immediately(done, Outcome::shutting_down);
  // A command with a ttl is the queue's: it holds no slot here while it waits.
  if (request.ttl && ports_.queue) return ports_.queue->enqueue(std::move(request), std::move(done), std::nullopt);
  // The token's share first: one token must not fill the gateway-wide limits
  // (a command resumed from grace holds its slot already).
  if (request.token && !request.slot.held()) {
    std::optional<TokenSlot> slot = request.token->take_pending();
    if (!slot) return complete_immediately(done, Outcome::token_pending_full);
    request.slot = std::move(*slot);
  }
  std::size_t bytes = request.payload.size() + kPendingEntryBytes;
  if (auto missing = missing_dependency()) {
    if (hold_in_grace(request, done, bytes)) return;
    return complete_immediately(done, *missing);
  }
  if (grace_.holds(request.id.str())) return complete_immediately(done, Outcome::duplicate_request_id);

  std::string id = request.id.str();
  std::string box = request.box.str();
  std::string channel = topics_.response_channel(request.box, request.id);
  auto timeout = request.timeout;
  auto entry = std::make_unique<Pending>(*this, std::move(request), std::move(done), std::move(channel),
                                         next_sequence_++);
  if (auto refused = refusal(registry_.admit(id, box, entry, bytes))) {
    return complete_immediately(entry->done, *refused);
  }
  Pending& p = registered(id, timeout);
  // Both leave in this loop iteration, on the two connections: the record
  // costs no round trip before the publish.
  std::uint64_t seq = p.sequence;
  if (ports_.presence) check_presence(p);
  if (still_waiting(id, seq)) write_record(p);
  if (still_waiting(id, seq)) subscribe(p);
}

std::optional<Outcome> CommandService::refusal(PendingRegistry<Pending>::Admit admitted) {
  switch (admitted) {
    case PendingRegistry<Pending>::Admit::ok: return std::nullopt;
    case PendingRegistry<Pending>::Admit::duplicate: return Outcome::duplicate_request_id;
    case PendingRegistry<Pending>::Admit::too_many: return Outcome::too_many_pending;
    case PendingRegistry<Pending>::Admit::too_many_bytes: return Outcome::too_many_bytes;
    case PendingRegistry<Pending>::Admit::device_busy: return Outcome::device_busy;
  }
  return Outcome::too_many_pending;
}

CommandService::Pending& CommandService::registered(const std::string& id, std::chrono::milliseconds timeout) {
  pending_gauge_.set(static_cast<std::int64_t>(registry_.size()));
  Pending& p = *registry_.find(id);
  p.deadline = evtimer_new(
      loop_.base(), [](evutil_socket_t, short, void* arg) {
        auto* pending = static_cast<Pending*>(arg);
        pending->service.on_deadline(*pending);
      },
      &p);
  arm_deadline(p, timeout);
  by_mode_[p.request.mode == CommandMode::async ? 1 : 0]->inc();
  return p;
}

bool CommandService::can_send_queued() const noexcept {
  return !draining_ && !missing_dependency() && registry_.size() + grace_.size() < settings_.max_pending &&
         registry_.bytes() + grace_.bytes() + kPendingEntryBytes < settings_.max_bytes;
}

void CommandService::send_queued(CommandRequest request, CommandRecord record, std::chrono::milliseconds expiry_cap,
                                 QueuedHooks hooks) {
  if (draining_) return hooks.ended(Outcome::shutting_down, false);
  if (auto missing = missing_dependency()) return hooks.ended(*missing, false);
  std::string id = request.id.str();
  std::string box = request.box.str();
  std::string channel = topics_.response_channel(request.box, request.id);
  auto timeout = request.timeout;
  std::size_t bytes = request.payload.size() + kPendingEntryBytes;
  auto entry = std::make_unique<Pending>(*this, std::move(request), Completion{}, std::move(channel),
                                         next_sequence_++);
  entry->from_queue = true;
  entry->expiry_cap = expiry_cap;
  entry->hooks = std::move(hooks);
  entry->record = Pending::Record::written;  // when it was queued
  entry->written = std::move(record);
  // No caller waits: a drain does not wait for it either.
  entry->accepted = true;
  if (auto refused = refusal(registry_.admit(id, box, entry, bytes))) return entry->hooks.ended(*refused, false);
  ++accepted_async_;
  subscribe(registered(id, timeout));
}

void CommandService::check_presence(Pending& p) {
  // In the same loop iteration as the record and the SUBSCRIBE: an online
  // box's command waits no extra round trip.
  p.presence_known = false;
  bool sent = ports_.presence->online(p.request.box, [this, id = p.request.id.str(), seq = p.sequence](
                                                         bool ok, std::optional<bool> online) {
    Pending* again = still_waiting(id, seq);
    if (!again) return;
    // Only a stored "offline" refuses: an unknown box or a failed read goes
    // on as offline_policy=wait would (presence is advice, not a gate).
    if (ok && online == false) return finish(*again, Outcome::device_offline);
    again->presence_known = true;
    maybe_publish(*again);
  });
  if (!sent) p.presence_known = true;
}

void CommandService::write_record(Pending& p) {
  CommandRecord& r = p.written;
  r.box_id = p.request.box.str();
  r.request_id = p.request.id.str();
  r.body_sha256 = p.request.body_sha256;
  r.mode = p.request.mode;
  if (r.accepted_ms == 0) {  // kept when written again after a reconnect
    r.accepted_ms = now_ms();
    r.deadline_ms = r.accepted_ms + p.request.timeout.count();
  }
  r.gateway = settings_.instance;
  std::string key = topics_.command_key(p.request.box, p.request.id);
  std::int64_t ttl = p.request.timeout.count() + settings_.result_ttl_ms;
  p.record = Pending::Record::sent;
  p.record_expires = Clock::now() + std::chrono::milliseconds(ttl);
  bool sent = ports_.state.create(key, r.to_json(), ttl,
                                  [this, id = r.request_id, seq = p.sequence, key](StateStore::Created created) {
                                    Pending* again = still_waiting(id, seq);
                                    if (!again) {
                                      // Ended before Redis answered, so never published: a
                                      // record it wrote after all must not block a retry.
                                      if (created == StateStore::Created::created) ports_.state.remove(key);
                                      return;
                                    }
                                    if (created == StateStore::Created::lost) {
                                      // Redis went away with the SET: nothing was published, so
                                      // the command waits for the reconnect (recheck_result_keys
                                      // writes it again) or its deadline, like its SUBSCRIBE. (If
                                      // the lost SET did land, the second finds it: 409, unsent.)
                                      again->record = Pending::Record::unsent;
                                      return;
                                    }
                                    if (created == StateStore::Created::failed) {
                                      again->record = Pending::Record::unsent;
                                      return finish(*again, Outcome::redis_unavailable);
                                    }
                                    if (created == StateStore::Created::exists) {
                                      // Another replica took this id a moment ago.
                                      again->record = Pending::Record::unsent;
                                      return finish(*again, Outcome::duplicate_request_id);
                                    }
                                    again->record = Pending::Record::written;
                                    maybe_publish(*again);
                                  });
  if (!sent) {
    p.record = Pending::Record::unsent;
    finish(p, Outcome::redis_unavailable);
  }
}

void CommandService::maybe_publish(Pending& p) {
  if (p.confirmed && p.record == Pending::Record::written && p.presence_known) publish(p);
}

bool CommandService::hold_in_grace(CommandRequest& request, Completion& done, std::size_t bytes) {
  auto now = Clock::now();
  if (!outage_since_) outage_since_ = now;
  auto grace = settings_.dependency_grace;
  if (grace.count() <= 0 || now - *outage_since_ >= grace) return false;  // not a blip: refuse fast
  const std::string& id = request.id.str();
  if (registry_.find(id) || grace_.holds(id)) return false;
  // The pending limits cover held commands too.
  if (registry_.size() + grace_.size() >= settings_.max_pending) return false;
  if (registry_.bytes() + grace_.bytes() + bytes > settings_.max_bytes) return false;
  auto wait = std::min(grace, request.timeout);
  grace_.hold(std::move(request), std::move(done), wait, bytes);
  held_in_grace_.inc();
  return true;
}

void CommandService::dependencies_changed() {
  if (missing_dependency()) {
    if (!outage_since_) outage_since_ = Clock::now();
    return;
  }
  outage_since_.reset();
  publish_unsent();
  for (GraceQueue::Held& held : grace_.take_all()) resume(std::move(held));
}

void CommandService::grace_ended(GraceQueue::Held&& held) {
  if (auto missing = missing_dependency()) return complete_immediately(held.done, *missing);
  resume(std::move(held));  // back, but the news has not reached us yet
}

void CommandService::resume(GraceQueue::Held&& held) {
  // The wait counts against the caller's timeout.
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - held.since);
  held.request.timeout = std::max(std::chrono::milliseconds(1), held.request.timeout - waited);
  if (held.request.caller_supplied_id) {
    return look_up_known(std::move(held.request), std::move(held.done), true);
  }
  admit(std::move(held.request), std::move(held.done), true);
}

void CommandService::subscribe(Pending& p) {
  p.stage = Pending::Stage::subscribing;
  // Set first: the confirmation (and so the publish, or even the end of the
  // command) may come from inside subscribe(); then `p` must not be touched.
  p.subscribed = true;
  switch (ports_.channels.subscribe(p.channel, &p)) {
    case redis::Subscriber::Result::ok: return;
    case redis::Subscriber::Result::unavailable: p.subscribed = false; return finish(p, Outcome::redis_unavailable);
    case redis::Subscriber::Result::busy: p.subscribed = false; return finish(p, Outcome::duplicate_request_id);
  }
}

void CommandService::publish(Pending& p) {
  if (p.stage != Pending::Stage::subscribing) return;
  p.stage = Pending::Stage::waiting;
  // Message Expiry is the time left, so a device that comes back late never
  // runs a command its caller stopped waiting for.
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(p.started + p.request.timeout - Clock::now());
  if (p.from_queue) left = std::min(left, p.expiry_cap);  // nor one whose ttl ran out
  auto expiry_s = static_cast<std::uint32_t>(std::max<std::int64_t>(1, (left.count() + 999) / 1000));
  mqtt::ResponseProperties v5{p.channel, p.request.id.str(), expiry_s, {}};
  if (!p.request.traceparent.empty()) {
    v5.user_properties.emplace_back("traceparent", p.request.traceparent);
    log::get("gateway")->debug("box {} request {}: traceparent {}", p.request.box.str(), p.request.id.str(),
                               p.request.traceparent);
  }
  std::string payload = std::move(p.request.payload);  // the MQTT client keeps the only copy from here
  auto on_ack = [this, id = p.request.id.str(), seq = p.sequence](bool acked) {
    if (Pending* again = still_waiting(id, seq)) again->acked = acked;
  };
  std::string id = p.request.id.str();
  std::uint64_t seq = p.sequence;
  std::optional<OutcomeEvent> sent;
  if (ports_.outcomes && ports_.outcomes->enabled()) sent = outcome_event(p, CommandState::pending);
  // Set first: a reply may end the command from inside publish(), and its
  // end must be noted as that of a published command (the record stays).
  p.published = true;
  if (ports_.publisher.publish(topics_.request_topic(p.request.box, p.request.id), payload, settings_.qos, &v5,
                               std::move(on_ack))) {
    if (sent) tell(*sent);
    if (!still_waiting(id, seq)) return;  // ended inside publish(): `p` is gone
    if (p.from_queue) return note_sent(p);
    if (p.request.mode == CommandMode::async) {
      // The caller has its answer; the command goes on without it.
      outcome_counters_[static_cast<std::size_t>(Outcome::accepted)]->inc();
      ++accepted_async_;
      p.accepted = true;
      Completion done = std::move(p.done);
      p.done = nullptr;
      done(CommandResult{Outcome::accepted, p.written.to_json()});
    }
    return;
  }
  p.published = false;
  if (!ports_.publisher.connected() && settings_.dependency_grace.count() > 0) {
    // The connection broke just now and nothing was sent: like a new command
    // it waits (subscribed) for the reconnect, up to the grace.
    p.request.payload = std::move(payload);
    p.stage = Pending::Stage::unsent;
    return arm_deadline(p, std::min(settings_.dependency_grace, time_left(p)));
  }
  finish(p, Outcome::mqtt_unavailable);  // the outgoing queue is full, or no grace
}

void CommandService::note_sent(Pending& p) {
  // The record says it left the queue. The same connection (or, in a
  // cluster, the same slot) carries the end noted later, so this lands first.
  CommandRecord& r = p.written;
  r.state = CommandState::pending;
  r.sent_ms = now_ms();
  r.deadline_ms = *r.sent_ms + p.request.timeout.count();
  r.gateway = settings_.instance;
  ports_.state.update(topics_.command_key(p.request.box, p.request.id), r.to_json());
  if (p.hooks.published) p.hooks.published(r.to_json());
}

std::chrono::milliseconds CommandService::time_left(const Pending& p) const {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(p.started + p.request.timeout - Clock::now());
  return std::max(std::chrono::milliseconds(1), left);
}

void CommandService::arm_deadline(Pending& p, std::chrono::milliseconds after) {
  auto padded = after + kTimerSlack;  // never answer 504 before the timeout
  timeval tv{static_cast<time_t>(padded.count() / 1000), static_cast<suseconds_t>((padded.count() % 1000) * 1000)};
  evtimer_add(p.deadline, &tv);
}

void CommandService::each_waiting(const std::function<bool(const Pending&)>& which,
                                  const std::function<void(Pending&)>& act) {
  // A snapshot first, each looked up again before `act`: acting on one may
  // complete (and free) others, or admit a new command with a reused id.
  std::vector<std::pair<std::string, std::uint64_t>> chosen;
  registry_.for_each([&](const Pending& p) {
    if (which(p)) chosen.emplace_back(p.request.id.str(), p.sequence);
  });
  for (const auto& [id, seq] : chosen) {
    if (Pending* p = still_waiting(id, seq)) act(*p);
  }
}

void CommandService::publish_unsent() {
  each_waiting([](const Pending& p) { return p.stage == Pending::Stage::unsent; },
               [this](Pending& p) {
                 p.stage = Pending::Stage::subscribing;
                 arm_deadline(p, time_left(p));  // the caller's own deadline again
                 publish(p);
               });
}

void CommandService::read_result_key(Pending& p, KeyRead why) {
  std::string id = p.request.id.str();
  bool sent = ports_.state.get(p.channel, [this, id, seq = p.sequence, why](bool, std::optional<std::string> value) {
    Pending* again = still_waiting(id, seq);
    if (!again) return;
    if (value) return finish(*again, Outcome::ok, std::move(*value));
    if (why == KeyRead::notice) {
      log::Fields fields{{"request_id", id}, {"box_id", again->request.box.str()}};
      log::get("gateway")->warn("box {} request {}: stored-reply notice but no result key", again->request.box.str(),
                                id);
    }
    if (why == KeyRead::final_check) finish(*again, Outcome::device_timeout);
  });
  if (!sent && why == KeyRead::final_check) finish(p, Outcome::device_timeout);
}

void CommandService::restore_record(const Pending& p) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(p.record_expires - Clock::now()).count();
  if (left <= 0) return;
  // NX: a record Redis kept (persistence, or only the connection broke) is
  // the authority and keeps its TTL; one another replica wrote for this id
  // since the restart is not ours to overwrite. Only a missing record is
  // written, with the JSON of send time (`written` changes only at the end,
  // which is after the command left the registry) and the TTL it had left.
  ports_.state.create(topics_.command_key(p.request.box, p.request.id), p.written.to_json(), left,
                      [this](StateStore::Created created) {
                        if (created == StateStore::Created::created) records_restored_.inc();
                      });
}

void CommandService::recheck_result_keys() {
  // Records whose SET the lost connection took: written again now.
  each_waiting(
      [](const Pending& p) { return p.stage == Pending::Stage::subscribing && p.record == Pending::Record::unsent; },
      [this](Pending& p) { write_record(p); });
  // A Redis restarted without persistence lost the records of the commands
  // still waiting, and the bridge stores a reply only under an existing
  // record: each is written again before its result key is read, in this
  // loop iteration, so all leave pipelined (one round trip per node).
  each_waiting([](const Pending& p) { return p.record == Pending::Record::written; },
               [this](Pending& p) { restore_record(p); });
  each_waiting([](const Pending& p) { return p.stage == Pending::Stage::waiting; },
               [this](Pending& p) { read_result_key(p, KeyRead::recheck); });
}

void CommandService::on_deadline(Pending& p) {
  if (p.stage == Pending::Stage::waiting) {
    // Last chance: the reply may be stored while its message was lost. The
    // read gets a bound of its own: a stalled Redis must not hold the 504.
    p.stage = Pending::Stage::final_check;
    timeval tv{0, static_cast<suseconds_t>(kFinalReadBound.count() * 1000)};
    evtimer_add(p.deadline, &tv);
    return read_result_key(p, KeyRead::final_check);
  }
  if (p.stage == Pending::Stage::final_check) return finish(p, Outcome::device_timeout);
  if (p.stage == Pending::Stage::unsent) return finish(p, Outcome::mqtt_unavailable);  // grace over, never sent
  // Never published: Redis did not confirm the subscription in time, so
  // nothing reached the device. Blame Redis only when it is not up; a timeout
  // too short for the round trip is just a timeout.
  finish(p, missing_dependency() == Outcome::redis_unavailable ? Outcome::redis_unavailable : Outcome::device_timeout);
}

void CommandService::note_end_in_record(Pending& p, Outcome outcome) {
  if (p.record != Pending::Record::written) return;  // a record still on its way is handled by its callback
  std::string key = topics_.command_key(p.request.box, p.request.id);
  if (!p.published) {
    // Never sent: a retry may send it; a queued one stays queued.
    if (!p.from_queue) ports_.state.remove(key);
    return;
  }
  if (outcome != Outcome::ok && outcome != Outcome::device_timeout) return;  // it goes on: the record stays pending
  p.written.state = outcome == Outcome::ok ? CommandState::succeeded : CommandState::timed_out;
  p.written.finished_ms = now_ms();
  if (outcome == Outcome::device_timeout) p.written.delivered = p.acked;
  ports_.state.update(key, p.written.to_json());
  // `succeeded` is the bridge's to tell: it stored the reply, and it also
  // sees the replies that come after their gateway stopped waiting.
  if (outcome == Outcome::device_timeout) {
    OutcomeEvent ended = outcome_event(p, CommandState::timed_out);
    ended.delivered = p.acked;
    tell(ended);
  }
}

OutcomeEvent CommandService::outcome_event(const Pending& p, CommandState state) const {
  OutcomeEvent e;
  e.box = p.request.box.str();
  e.request_id = p.request.id.str();
  e.state = state_name(state);
  e.at_ms = now_ms();
  e.mode = mode_name(p.request.mode);
  e.gateway = settings_.instance;
  return e;
}

void CommandService::tell(const OutcomeEvent& event) {
  if (ports_.outcomes) ports_.outcomes->note(event);
}

void CommandService::finish(Pending& p, Outcome outcome, std::string reply) {
  std::unique_ptr<Pending> owned = registry_.remove(p.request.id.str());
  if (p.subscribed) ports_.channels.unsubscribe(p.channel, &p);
  note_end_in_record(p, outcome);
  if (p.accepted) --accepted_async_;
  record(outcome, p.started);
  pending_gauge_.set(static_cast<std::int64_t>(registry_.size()));
  if (outcome == Outcome::device_timeout) {
    log::Fields fields{{"request_id", p.request.id.str()}, {"box_id", p.request.box.str()}};
    log::get("gateway")->info("box {} request {}: no reply within {} ms", p.request.box.str(), p.request.id.str(),
                              p.request.timeout.count());
  }
  Completion done = std::move(p.done);
  std::optional<bool> delivered;
  if (outcome == Outcome::device_timeout) delivered = p.acked;
  QueuedHooks hooks = std::move(p.hooks);
  bool published = p.published;
  owned.reset();
  if (done) done(CommandResult{outcome, std::move(reply), delivered});  // none once an async command was accepted
  if (hooks.ended) hooks.ended(outcome, published);
}

void CommandService::cancel(const RequestId& id) {
  if (auto held = grace_.take(id.str())) return complete_immediately(held->done, Outcome::client_gone);
  // Only a command whose caller still waits: an accepted async command
  // outlives the connection that sent it.
  if (Pending* p = registry_.find(id.str()); p && p->done) finish(*p, Outcome::client_gone);
}

void CommandService::abandon_all() {
  for (GraceQueue::Held& held : grace_.take_all()) complete_immediately(held.done, Outcome::shutting_down);
  each_waiting([](const Pending&) { return true; }, [this](Pending& p) {
    // A published command reached the broker: telling the caller to retry
    // elsewhere could run it twice.
    if (p.published) {
      log::Fields fields{{"request_id", p.request.id.str()}, {"box_id", p.request.box.str()}};
      log::get("gateway")->warn("box {} request {}: published, no reply before shutdown", p.request.box.str(),
                                p.request.id.str());
    }
    finish(p, p.published ? Outcome::delivered : Outcome::shutting_down);
  });
}

}  // namespace boxgate::gateway
