#include "queue/queue_service.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <limits>
#include <utility>

#include "boxgate/logging.hpp"
#include "queue/queue_entry.hpp"

namespace boxgate::gateway {

namespace {

bool is_ok_status(const redisReply* r) { return r && r->type == REDIS_REPLY_STATUS; }
bool is_integer(const redisReply* r) { return r && r->type == REDIS_REPLY_INTEGER; }

std::vector<double> depth_buckets() { return {0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000}; }

ops::Counter& event_counter(ops::Metrics& metrics, const char* event) {
  return metrics.counter("boxgate_queue_commands_total", "queued commands, by what happened to them",
                         std::string("event=\"") + event + "\"");
}

}  // namespace

// One enqueue, from the POST to Redis's answers.
struct QueueService::Enqueue {
  Enqueue(CommandRequest&& r, Completion&& d) : request(std::move(r)), done(std::move(d)) {}
  CommandRequest request;
  Completion done;
  CommandRecord record;
  std::string entry;
  std::string element;
  std::string sending;  // the "/sending" value if the script claims it at once
  std::int64_t size = 0;
  std::string token;           // the caller's token name ("" when the API is open)
  std::int64_t charge = 0;     // what it counts against the token's share
  bool token_reserved = false;
  std::int64_t token_total = 0;
  bool fresh = true;           // the record is written here (not a retry's)
  int waiting = 0;             // answers still due before the script
  bool failed = false;         // Redis failed one of them
  bool record_created = false;
  bool reserved = false;       // the bytes were added to the fleet total
  std::int64_t total = 0;      // the fleet total with these bytes
  bool offline = false;        // the box's presence says offline
};

struct QueueService::SweepRun {
  std::size_t outstanding = 0;
  bool listed = false;  // every page of the index was read
  std::int64_t oldest_ms = std::numeric_limits<std::int64_t>::max();
  std::int64_t boxes = 0;
};

QueueService::QueueService(EventLoop& loop, const Topics& topics, QueueSettings settings, redis::Commands& redis,
                           redis::Subscriber& subscriber, CommandService& commands, DevicePresence& presence,
                           ops::Metrics& metrics)
    : loop_(loop),
      topics_(topics),
      settings_(std::move(settings)),
      redis_(redis),
      subscriber_(subscriber),
      commands_(commands),
      presence_(presence),
      state_(redis),
      sweep_timer_(loop, [this] { sweep(); }),
      queued_(event_counter(metrics, "queued")),
      sent_(event_counter(metrics, "sent")),
      expired_(event_counter(metrics, "expired")),
      cancelled_(event_counter(metrics, "cancelled")),
      requeued_(event_counter(metrics, "requeued")),
      abandoned_(event_counter(metrics, "abandoned")),
      refused_full_(event_counter(metrics, "refused_full")),
      wakes_(metrics.counter("boxgate_queue_wakes_total", "box-online notices from the bridge heard")),
      depth_(metrics.histogram("boxgate_queue_depth", "commands ahead in its box's queue when one is queued",
                               depth_buckets())),
      oldest_age_(metrics.gauge("boxgate_queue_oldest_age_seconds",
                                "age of the oldest queued command at the last sweep this gateway ran")),
      boxes_(metrics.gauge("boxgate_queue_boxes", "boxes with queued commands at the last sweep this gateway ran")) {}

QueueService::~QueueService() {
  *alive_ = false;
  commands_.attach_queue(nullptr);
  if (listening_) subscriber_.unsubscribe(topics_.queue_wake_channel(), this);
}

void QueueService::start() {
  commands_.attach_queue(this);
  sweep_timer_.start(settings_.sweep_every, true);
}

// ---- accepting ----------------------------------------------------------

void QueueService::enqueue(CommandRequest&& request, Completion done, const std::optional<CommandRecord>& known) {
  auto job = std::make_shared<Enqueue>(std::move(request), std::move(done));
  if (!redis_.up()) return refuse(*job, Outcome::redis_unavailable);
  const CommandRequest& r = job->request;
  job->fresh = !known;
  if (known) {
    job->record = *known;
  } else {
    CommandRecord& fresh = job->record;
    fresh.box_id = r.box.str();
    fresh.request_id = r.id.str();
    fresh.body_sha256 = r.body_sha256;
    fresh.state = CommandState::queued;
    fresh.mode = CommandMode::async;
    fresh.accepted_ms = now_ms();
    fresh.ttl_ms = r.ttl->count();
    // While queued, the latest it can end: sent at the end of its ttl, then its timeout.
    fresh.deadline_ms = fresh.accepted_ms + *fresh.ttl_ms + r.timeout.count();
    fresh.gateway = settings_.instance;
  }
  const CommandRecord& rec = job->record;
  job->entry = entry_text({r.payload, r.timeout, r.traceparent, rec});
  job->token = r.token ? r.token->name : "";
  job->charge = static_cast<std::int64_t>(job->entry.size());
  job->element = element_text({rec.accepted_ms + rec.ttl_ms.value_or(0), r.timeout.count(), rec.accepted_ms,
                               job->charge, job->token, rec.request_id});
  job->size = static_cast<std::int64_t>(job->entry.size() + job->element.size());

  // The record (the id's reservation, as for every command), the bytes, the
  // index and the presence leave in this loop iteration: one round trip.
  job->waiting = (job->fresh ? 4 : 3) + (job->token.empty() ? 0 : 1);
  auto answered = [this, job] {
    if (--job->waiting == 0) reserved(job);
  };
  // A command the connection would not take fails the enqueue, still
  // counted as answered, so the caller always gets its answer.
  auto unsent = [job, answered](bool sent) {
    if (sent) return;
    job->failed = true;
    answered();
  };
  if (job->fresh) {
    std::string ttl = std::to_string(*rec.ttl_ms + r.timeout.count() + settings_.result_ttl_ms);
    std::string json = rec.to_json();
    unsent(redis_.run({"SET", topics_.command_key(r.box, r.id), json, "NX", "PX", ttl},
                      [job, answered](const redisReply* reply) {
                        if (!reply || reply->type == REDIS_REPLY_ERROR) job->failed = true;
                        job->record_created = is_ok_status(reply);
                        answered();
                      }));
  }
  // INCRBY of a counter: `reserved` once it counted, `total` its new value.
  auto count = [this, job, answered, unsent](const std::string& key, std::int64_t by, bool Enqueue::*reserved,
                                             std::int64_t Enqueue::*total) {
    unsent(redis_.run({"INCRBY", key, std::to_string(by)}, [job, answered, reserved, total](const redisReply* r) {
      if (is_integer(r)) {
        (*job).*reserved = true;
        (*job).*total = r->integer;
      } else {
        job->failed = true;
      }
      answered();
    }));
  };
  count(topics_.queue_bytes_key(), job->size, &Enqueue::reserved, &Enqueue::total);
  // The caller's share: one token must not fill every queue.
  if (!job->token.empty()) count(token_key(job->token), job->charge, &Enqueue::token_reserved, &Enqueue::token_total);
  // Added to first, so a sweep never forgets a box while this lands.
  unsent(redis_.run({"ZINCRBY", topics_.queue_index_key(), "1", r.box.str()},
                    [job, answered](const redisReply* reply) {
                      if (!reply || reply->type == REDIS_REPLY_ERROR) job->failed = true;
                      answered();
                    }));
  bool asked = presence_.online(r.box, [job, answered](bool ok, std::optional<bool> online) {
    job->offline = ok && online == false;
    answered();
  });
  if (!asked) answered();
}

void QueueService::reserved(const std::shared_ptr<Enqueue>& job) {
  if (job->failed) return refuse(*job, Outcome::redis_unavailable);
  if (job->fresh && !job->record_created) return refuse(*job, Outcome::duplicate_request_id);  // another has the id
  if (job->total > static_cast<std::int64_t>(settings_.max_bytes)) return refuse(*job, Outcome::queue_full);
  if (job->token_total > static_cast<std::int64_t>(settings_.token_max_bytes)) {
    return refuse(*job, Outcome::queue_full);
  }
  const CommandRequest& r = job->request;
  bool claim = !job->offline && commands_.can_send_queued();
  std::int64_t until = now_ms() + r.timeout.count() + kClaimSlack.count();
  job->sending = sending_text(r.id.str(), settings_.instance, until);
  std::string max_count = std::to_string(settings_.max_per_device);
  std::string max_bytes = std::to_string(settings_.max_bytes_per_device);
  bool sent = redis_.run({"EVAL", kEnqueueScript, "2", topics_.queue_key(r.box), topics_.queue_items_key(r.box),
                          job->element, r.id.str(), job->entry, max_count, max_bytes, claim ? "1" : "0", job->sending},
                         [this, job](const redisReply* reply) { enqueued(job, reply); });
  if (!sent) refuse(*job, Outcome::redis_unavailable);
}

void QueueService::enqueued(const std::shared_ptr<Enqueue>& job, const redisReply* reply) {
  auto answer = parse_enqueue(reply);
  if (!answer) {
    if (reply && reply->type == REDIS_REPLY_ERROR) {
      log::get("gateway")->error("box {} request {}: queueing failed: {}", job->request.box.str(),
                                 job->request.id.str(), std::string_view(reply->str, reply->len));
    }
    return refuse(*job, Outcome::redis_unavailable);
  }
  using S = EnqueueAnswer::Status;
  if (answer->status == S::full || answer->status == S::full_bytes) return refuse(*job, Outcome::queue_full);
  if (answer->status == S::exists) {  // counted when it was queued
    release_bytes(job->size);
    release_token(job->token, job->charge);
  }
  if (answer->status == S::queued || answer->status == S::claimed) tell(job->request.box, job->request.id.str(), CommandState::queued);
  if (answer->status == S::queued) {
    queued_.inc();
    depth_.observe_us(static_cast<std::uint64_t>(answer->depth_before) * 1000000);  // a count, in the "seconds" unit
  }
  if (answer->status != S::claimed) return job->done(CommandResult{Outcome::accepted, job->record.to_json()});
  queued_.inc();
  depth_.observe_us(0);
  // Sent at once: answered once published (state pending), or, if it could
  // not be, as queued (it went back to the head of its queue).
  const CommandRequest& r = job->request;
  QueueEntry entry{std::move(job->request.payload), r.timeout, r.traceparent, job->record};
  auto sending = parse_sending(job->sending);  // what the script stored: the end must name it exactly
  auto done = std::make_shared<Completion>(std::move(job->done));
  std::string queued_json = job->record.to_json();
  send(r.box, std::move(entry), *sending, [done, queued_json](std::optional<std::string> record) {
    (*done)(CommandResult{Outcome::accepted, record ? std::move(*record) : queued_json});
  });
}

void QueueService::refuse(Enqueue& job, Outcome outcome) {
  if (outcome == Outcome::queue_full) refused_full_.inc();
  if (job.reserved) release_bytes(job.size);
  if (job.token_reserved) release_token(job.token, job.charge);
  if (job.record_created) redis_.run({"DEL", topics_.command_key(job.request.box, job.request.id)}, {});
  job.done(CommandResult{outcome, {}});
}

void QueueService::release_bytes(std::int64_t bytes) {
  if (bytes > 0) redis_.run({"DECRBY", topics_.queue_bytes_key(), std::to_string(bytes)}, {});
}

std::string QueueService::token_key(const std::string& token) const {
  return topics_.prefix() + "/_tokens/" + token + "/queued";
}

void QueueService::release_token(const std::string& token, std::int64_t charge) {
  if (!token.empty() && charge > 0) redis_.run({"DECRBY", token_key(token), std::to_string(charge)}, {});
}

void QueueService::released(const QueueElement& element) { release_token(element.token, element.charge); }

// ---- sending ------------------------------------------------------------

void QueueService::step(const BoxId& box, bool claim, const std::string& end, bool requeue, StepDone done) {
  claim = claim && commands_.can_send_queued();
  std::string now = std::to_string(now_ms());
  std::string slack = std::to_string(kClaimSlack.count());
  bool sent = redis_.run({"EVAL", kStepScript, "2", topics_.queue_key(box), topics_.queue_items_key(box), now,
                          claim ? "1" : "0", settings_.instance, slack, end, requeue ? "1" : "0"},
                         [this, box, done, claim](const redisReply* reply) { stepped(box, reply, done, claim); });
  if (!sent && done) done(nullptr);
}

void QueueService::stepped(const BoxId& box, const redisReply* reply, const StepDone& done, bool may_send) {
  auto answer = parse_step(reply);
  if (!answer) {
    if (reply && reply->type == REDIS_REPLY_ERROR) {
      log::get("gateway")->error("box {}: queue step failed: {}", box.str(), std::string_view(reply->str, reply->len));
    }
    if (done) done(nullptr);
    return;
  }
  release_bytes(answer->bytes_freed);
  if (answer->ended) released(*answer->ended);
  for (const QueueElement& element : answer->expired) {
    released(element);
    note_final(box, element.id, CommandState::expired);
  }
  if (answer->status == StepAnswer::Status::claimed) {
    auto entry = parse_entry(answer->entry);
    if (!entry) {
      // Not written by a gateway: dropped, so it cannot block the box's queue.
      log::get("gateway")->error("box {}: queued entry {} is unreadable; dropped", box.str(), answer->sending->id);
      step(box, true, answer->sending->value, false);
    } else {
      send(box, std::move(*entry), *answer->sending, {});
    }
  } else if (answer->status == StepAnswer::Status::stale) {
    resolve_stale(box, *answer->sending, may_send);
  }
  if (done) done(&*answer);
}

void QueueService::send(const BoxId& box, QueueEntry entry, const Sending& sending,
                        std::function<void(std::optional<std::string>)> published) {
  const CommandRecord& rec = entry.record;
  auto box_id = BoxId::parse(rec.box_id);
  auto id = RequestId::parse(rec.request_id);
  std::int64_t ttl_left = rec.accepted_ms + rec.ttl_ms.value_or(0) - now_ms();
  if (!box_id || !id || *box_id != box || id->str() != sending.id) {
    log::get("gateway")->error("box {}: queued entry {} names another command; dropped", box.str(), sending.id);
    return step(box, true, sending.value, false);
  }
  CommandRequest request{*box_id, *id, true, std::move(entry.payload), entry.timeout, rec.body_sha256,
                         CommandMode::async, std::move(entry.traceparent)};
  auto shared_published = std::make_shared<decltype(published)>(std::move(published));
  QueuedHooks hooks;
  hooks.published = [this, alive = alive_, shared_published](std::string record) {
    if (!*alive) return;
    sent_.inc();
    if (*shared_published) std::exchange(*shared_published, nullptr)(std::move(record));
  };
  hooks.ended = [this, alive = alive_, box, value = sending.value, shared_published](Outcome outcome, bool sent) {
    if (!*alive) return;
    if (!sent) {
      // Nothing reached the device: back to the head, sent by the next
      // wake or sweep (or at once, below, for a fresh POST's answer).
      requeued_.inc();
      step(box, false, value, true);
      if (*shared_published) std::exchange(*shared_published, nullptr)(std::nullopt);
      return;
    }
    // Ended: the next one goes. After a reply the box is there; after a
    // timeout it may be asleep, so its next waits for a wake or the sweep.
    if (outcome == Outcome::ok || outcome == Outcome::device_timeout) step(box, outcome == Outcome::ok, value, false);
    // Published but not ended (this gateway stops): it stays in flight; once
    // past its until_ms another gateway notes how it ended (resolve_stale).
  };
  commands_.send_queued(std::move(request), rec, std::chrono::milliseconds(std::max<std::int64_t>(1, ttl_left)),
                        std::move(hooks));
}

void QueueService::note_final(const BoxId& box, const std::string& id_text, CommandState state) {
  if (state == CommandState::expired) expired_.inc();
  auto id = RequestId::parse(id_text);
  if (!id) return;
  std::string key = topics_.command_key(box, *id);
  redis_.get(key, [this, key, state](bool ok, std::optional<std::string> value) {
    if (!ok || !value) return;
    auto record = parse_record(*value);
    if (!record || record->state != CommandState::queued) return;
    record->state = state;
    record->finished_ms = now_ms();
    redis_.run({"SET", key, record->to_json(), "XX", "KEEPTTL"}, {});
    if (auto box = BoxId::parse(record->box_id)) tell(*box, record->request_id, state);
  });
}

void QueueService::tell(const BoxId& box, const std::string& request_id, CommandState state) {
  if (!outcomes_ || !outcomes_->enabled()) return;
  OutcomeEvent e;
  e.box = box.str();
  e.request_id = request_id;
  e.state = state_name(state);
  e.at_ms = now_ms();
  e.mode = "async";
  e.gateway = settings_.instance;
  outcomes_->note(e);
}

void QueueService::resolve_stale(const BoxId& box, const Sending& sending, bool may_send) {
  auto id = RequestId::parse(sending.id);
  if (!id) return step(box, may_send, sending.value, false);
  std::string key = topics_.command_key(box, *id);
  std::string result = topics_.response_channel(box, *id);
  auto ended = [this, box, sending, key, may_send](bool ok, std::optional<std::string> record_text,
                                         std::optional<std::string> reply) {
    if (!ok) return;  // Redis failed: the next sweep tries again
    auto record = record_text ? parse_record(*record_text) : std::nullopt;
    log::Fields fields{{"request_id", sending.id}, {"box_id", box.str()}};
    if (record && record->state == CommandState::queued && !reply) {
      // Claimed but never published (its gateway died first): sent again.
      log::get("gateway")->warn("box {} request {}: claimed by {} but never sent; sending it again", box.str(),
                                sending.id, sending.gateway);
      requeued_.inc();
      return step(box, may_send, sending.value, true);
    }
    abandoned_.inc();
    if (record && (record->state == CommandState::pending || record->state == CommandState::queued)) {
      // Its gateway stopped before the end: noted from what Redis holds.
      record->state = reply ? CommandState::succeeded : CommandState::timed_out;
      record->finished_ms = now_ms();
      redis_.run({"SET", key, record->to_json(), "XX", "KEEPTTL"}, {});
      // A stored reply was told by the bridge that stored it.
      if (!reply) tell(box, sending.id, CommandState::timed_out);
    }
    log::get("gateway")->warn("box {} request {}: {} did not note its end; noted as {}", box.str(), sending.id,
                              sending.gateway, reply ? "succeeded" : "timed_out");
    step(box, may_send, sending.value, false);
  };
  get_pair(state_, key, result, std::move(ended));  // not sent: the next sweep tries again
}

// ---- waking and sweeping ------------------------------------------------

void QueueService::on_message(std::string_view box_text) {
  auto box = BoxId::parse(std::string(box_text));
  if (!box) return;
  wakes_.inc();
  step(*box, true);
}

void QueueService::on_resubscribed() { sweep(); }

void QueueService::listen() {
  if (listening_) return;
  // Once taken, the subscriber takes it back after every reconnect.
  listening_ = subscriber_.subscribe(topics_.queue_wake_channel(), this) == redis::Subscriber::Result::ok;
}

void QueueService::sweep() {
  listen();
  if (!redis_.up()) return;
  // One gateway per period walks the index; the others only wake.
  std::string lease = std::to_string(std::max<std::int64_t>(1, settings_.sweep_every.count() - 50));
  redis_.run({"SET", topics_.queue_sweep_key(), settings_.instance, "NX", "PX", lease},
             [this, alive = alive_](const redisReply* reply) {
               if (!*alive || !is_ok_status(reply)) return;
               sweep_page(std::make_shared<SweepRun>(), 0);
             });
}

void QueueService::sweep_page(const std::shared_ptr<SweepRun>& run, std::int64_t offset) {
  constexpr std::int64_t kPage = 500;
  ++run->outstanding;
  bool sent = redis_.run(
      {"ZRANGE", topics_.queue_index_key(), std::to_string(offset), std::to_string(offset + kPage - 1), "WITHSCORES"},
      [this, run, offset](const redisReply* reply) {
        if (reply && reply->type == REDIS_REPLY_ARRAY) {
          for (std::size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply* member = reply->element[i];
            const redisReply* score = reply->element[i + 1];
            if (member->type != REDIS_REPLY_STRING || score->type != REDIS_REPLY_STRING) continue;
            auto box = BoxId::parse(std::string(member->str, member->len));
            if (box) sweep_box(run, *box, std::string(score->str, score->len));
          }
          if (static_cast<std::int64_t>(reply->elements) == 2 * kPage) {
            sweep_page(run, offset + kPage);
          } else {
            run->listed = true;
          }
        }
        --run->outstanding;
        sweep_done(run);
      });
  if (!sent) --run->outstanding;
}

void QueueService::sweep_box(const std::shared_ptr<SweepRun>& run, const BoxId& box, std::string score) {
  ++run->outstanding;
  auto stepped = [this, run, box, score](const StepAnswer* answer) {
    if (answer) {
      if (answer->depth == 0 && answer->status == StepAnswer::Status::idle) {
        redis_.run({"EVAL", kForgetBoxScript, "1", topics_.queue_index_key(), box.str(), score}, {});
      } else {
        ++run->boxes;
        if (answer->head) run->oldest_ms = std::min(run->oldest_ms, answer->head->accepted_ms);
      }
    }
    --run->outstanding;
    sweep_done(run);
  };
  bool asked = presence_.online(box, [this, box, stepped](bool ok, std::optional<bool> online) {
    step(box, !(ok && online == false), {}, false, stepped);
  });
  if (!asked) step(box, false, {}, false, stepped);
}

void QueueService::sweep_done(const std::shared_ptr<SweepRun>& run) {
  if (run->outstanding != 0 || !run->listed) return;
  boxes_.set(run->boxes);
  oldest_age_.set(run->boxes == 0 ? 0 : std::max<std::int64_t>(0, (now_ms() - run->oldest_ms) / 1000));
}

// ---- cancelling and listing ---------------------------------------------

void QueueService::cancel(const BoxId& box, const RequestId& id, CancelDone done) {
  auto shared = std::make_shared<CancelDone>(std::move(done));
  std::string key = topics_.command_key(box, id);
  // The record answers what the queue does not hold: sent, ended or unknown.
  auto from_record = [this, shared, key] {
    redis_.get(key, [shared](bool ok, std::optional<std::string> value) {
      if (!ok) return (*shared)(Cancel::unavailable, {});
      auto record = value ? parse_record(*value) : std::nullopt;
      if (!record) return (*shared)(Cancel::unknown, {});
      if (record->state == CommandState::cancelled) return (*shared)(Cancel::cancelled, record->to_json());
      (*shared)(Cancel::already_sent, record->to_json());
    });
  };
  bool sent = redis_.run({"EVAL", kCancelScript, "2", topics_.queue_key(box), topics_.queue_items_key(box), id.str()},
                         [this, shared, key, from_record, box, id](const redisReply* reply) {
                           auto answer = parse_cancel(reply);
                           if (!answer) return (*shared)(Cancel::unavailable, {});
                           if (answer->status != CancelAnswer::Status::cancelled) return from_record();
                           release_bytes(answer->bytes_freed);
                           if (answer->element) released(*answer->element);
                           cancelled_.inc();
                           auto entry = parse_entry(answer->entry);
                           CommandRecord record = entry ? entry->record : CommandRecord{};
                           record.state = CommandState::cancelled;
                           record.finished_ms = now_ms();
                           std::string json = record.to_json();
                           redis_.run({"SET", key, json, "XX", "KEEPTTL"}, {});
                           tell(box, id.str(), CommandState::cancelled);
                           (*shared)(Cancel::cancelled, std::move(json));
                         });
  if (!sent) (*shared)(Cancel::unavailable, {});
}

void QueueService::list(const BoxId& box, const std::optional<RequestId>& after, std::size_t limit,
                        std::function<void(Page)> done) {
  auto shared = std::make_shared<std::function<void(Page)>>(std::move(done));
  std::string items = topics_.queue_items_key(box);
  std::optional<std::string> after_id = after ? std::optional<std::string>(after->str()) : std::nullopt;
  // The order first (bounded by max_queued_per_device), then the page's entries.
  bool sent = redis_.run({"LRANGE", topics_.queue_key(box), "0", "-1"}, [this, shared, items, after_id,
                                                                         limit](const redisReply* reply) {
    if (!reply || reply->type != REDIS_REPLY_ARRAY) return (*shared)(Page{});
    std::vector<std::string> ids;
    bool started = !after_id;
    for (std::size_t i = 0; i < reply->elements; ++i) {
      if (reply->element[i]->type != REDIS_REPLY_STRING) continue;
      auto element = parse_element(std::string_view(reply->element[i]->str, reply->element[i]->len));
      if (!element) continue;
      if (!started) {
        started = element->id == *after_id;
        continue;
      }
      ids.push_back(element->id);
    }
    Page page{true, {}, std::nullopt};
    if (ids.size() > limit) {
      ids.resize(limit);
      page.next_after = ids.back();
    }
    if (ids.empty()) return (*shared)(std::move(page));
    std::vector<std::string_view> argv{"HMGET", items, "/sending"};
    for (const std::string& id : ids) argv.push_back(id);
    auto shared_page = std::make_shared<Page>(std::move(page));
    bool read = redis_.run(argv, [shared, shared_page](const redisReply* entries) {
      if (!entries || entries->type != REDIS_REPLY_ARRAY || entries->elements < 1) return (*shared)(Page{});
      std::optional<Sending> sending;
      if (entries->element[0]->type == REDIS_REPLY_STRING) {
        sending = parse_sending(std::string_view(entries->element[0]->str, entries->element[0]->len));
      }
      for (std::size_t i = 1; i < entries->elements; ++i) {
        const redisReply* e = entries->element[i];
        if (e->type != REDIS_REPLY_STRING) continue;  // left the queue meanwhile
        auto entry = parse_entry(std::string_view(e->str, e->len));
        if (!entry) continue;
        // The one in flight says so; its record has the rest.
        if (sending && sending->id == entry->record.request_id) entry->record.state = CommandState::pending;
        shared_page->records.push_back(entry->record.to_json());
      }
      (*shared)(std::move(*shared_page));
    });
    if (!read) (*shared)(Page{});
  });
  if (!sent) (*shared)(Page{});
}

}  // namespace boxgate::gateway
