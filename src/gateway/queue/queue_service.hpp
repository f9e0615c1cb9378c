#pragma once
// QueueService: commands that wait for their box (docs/contract.md, "Queued
// commands"). A command with a ttl is written to its box's queue in Redis
// (queue_scripts.hpp) and sent from there, one at a time per box in
// acceptance order, by whichever gateway replica claims it:
// - at once, when its box is not offline and nothing is ahead of it;
// - when the bridge says the box came online (a message on the wake channel,
//   which every gateway hears; the claim is atomic, so one of them sends);
// - after the box's previous queued command ended (on the gateway that sent it);
// - by the sweep: every sweep_every one gateway (a lease in Redis) walks
//   the index of boxes with a queue, drops what expired, sends to boxes not
//   offline, and finishes what a dead gateway left in flight -- so a missed
//   wake or a crashed replica never strands a queue.
// The claimed command is sent by CommandService::send_queued, like an async
// command whose record already exists.
//
// Thread ownership: loop thread only, like the Redis clients and the
// CommandService it uses. Every enqueue() completes its Completion once.
//
// Memory here: nothing per queued command (the queue is in Redis); an
// enqueue holds its payload twice (request and entry text) until Redis
// answered.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/subscriber.hpp"
#include "boxgate/topics.hpp"
#include "commands/command_ports.hpp"
#include "commands/command_service.hpp"
#include "queue/queue_entry.hpp"
#include "queue/queue_scripts.hpp"

namespace boxgate::gateway {

struct QueueSettings {
  std::chrono::milliseconds max_ttl;
  std::size_t max_per_device;        // commands queued per box
  std::size_t max_bytes_per_device;  // their bytes (entries and list elements)
  std::size_t max_bytes;             // all boxes' queues together
  std::size_t token_max_bytes;       // one API token's queued entries, all boxes
  std::chrono::milliseconds sweep_every;
  std::int64_t result_ttl_ms;  // a record lives ttl + timeout + this
  std::string instance;        // this gateway's name in records and claims
};

// How much past its timeout a claimed command may stay in flight before
// another gateway takes it for abandoned: its holder reads the result key
// once more at the deadline (kFinalReadBound) and notes the end.
inline constexpr std::chrono::milliseconds kClaimSlack{5000};

class QueueService final : public CommandQueue, private redis::Subscriber::Listener {
 public:
  QueueService(EventLoop& loop, const Topics& topics, QueueSettings settings, redis::Commands& redis,
               redis::Subscriber& subscriber, CommandService& commands, DevicePresence& presence,
               ops::Metrics& metrics);
  ~QueueService() override;

  // Takes commands with a ttl from the CommandService and starts the sweep.
  void start();
  // Listens on the wake channel once the subscriber is up (call on every
  // change of the dependencies; also tried by each sweep).
  void listen();
  // Where the states the queue sets are told (queued, expired, cancelled,
  // and timed_out for a dead gateway's command); null: nowhere.
  void tell_outcomes_to(OutcomeLog* outcomes) noexcept { outcomes_ = outcomes; }
  void enqueue(CommandRequest&& request, Completion done, const std::optional<CommandRecord>& known) override;

  enum class Cancel { cancelled, already_sent, unknown, unavailable };
  using CancelDone = std::function<void(Cancel result, std::string record_json)>;
  // DELETE: a queued command leaves its queue (its record says cancelled).
  void cancel(const BoxId& box, const RequestId& id, CancelDone done);

  struct Page {
    bool ok = false;
    std::vector<std::string> records;  // JSON, in send order
    std::optional<std::string> next_after;
  };
  // The box's queue in send order, after the id `after` (exclusive).
  void list(const BoxId& box, const std::optional<RequestId>& after, std::size_t limit,
            std::function<void(Page)> done);

 private:
  void tell(const BoxId& box, const std::string& request_id, CommandState state);
  struct Enqueue;
  struct SweepRun;
  using StepDone = std::function<void(const StepAnswer*)>;

  void on_subscribed() override {}
  void on_message(std::string_view box) override;
  void on_resubscribed() override;  // wakes may have been missed meanwhile

  void reserved(const std::shared_ptr<Enqueue>& job);
  void enqueued(const std::shared_ptr<Enqueue>& job, const redisReply* reply);
  void refuse(Enqueue& job, Outcome outcome);
  void release_bytes(std::int64_t bytes);
  // A token's share of the queues: {prefix}/_tokens/<name>/queued, the
  // bytes of its queued entries.
  std::string token_key(const std::string& token) const;
  void release_token(const std::string& token, std::int64_t charge);
  // An element left its queue (ended, expired, cancelled): its token's share back.
  void released(const QueueElement& element);
  // Ends `end` (requeue: it was never sent), drops what expired and, when
  // `claim`, sends the head.
  void step(const BoxId& box, bool claim, const std::string& end = {}, bool requeue = false, StepDone done = {});
  // may_send: the step was allowed to claim (the box is not offline).
  void stepped(const BoxId& box, const redisReply* reply, const StepDone& done, bool may_send);
  void send(const BoxId& box, QueueEntry entry, const Sending& sending,
            std::function<void(std::optional<std::string>)> published);
  void note_final(const BoxId& box, const std::string& id, CommandState state);
  // A claim whose gateway did not finish it in time; its box's next is sent
  // only when `may_send` (the box is not offline).
  void resolve_stale(const BoxId& box, const Sending& sending, bool may_send);
  void sweep();
  void sweep_page(const std::shared_ptr<SweepRun>& run, std::int64_t offset);
  void sweep_box(const std::shared_ptr<SweepRun>& run, const BoxId& box, std::string score);
  void sweep_done(const std::shared_ptr<SweepRun>& run);

  EventLoop& loop_;
  const Topics& topics_;
  QueueSettings settings_;
  redis::Commands& redis_;
  redis::Subscriber& subscriber_;
  CommandService& commands_;
  OutcomeLog* outcomes_ = nullptr;
  DevicePresence& presence_;
  RedisState state_;  // the record and result-key reads (get_pair)
  Timer sweep_timer_;
  bool listening_ = false;
  // Hooks handed to CommandService hold this; they do nothing once it is false.
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);

  ops::Counter& queued_;
  ops::Counter& sent_;
  ops::Counter& expired_;
  ops::Counter& cancelled_;
  ops::Counter& requeued_;
  ops::Counter& abandoned_;
  ops::Counter& refused_full_;
  ops::Counter& wakes_;
  ops::Histogram& depth_;
  ops::Gauge& oldest_age_;
  ops::Gauge& boxes_;
};

}  // namespace boxgate::gateway
