#pragma once
// CommandService: send one command to a device and await its reply.
//
// Steps (wire contract, "What the gateway does"): for a caller-supplied id,
// read its command record and result key and answer from them if the id is
// known -- before any refusal for draining, a dependency or a limit; then
// admit (limits in count and bytes), write the command record (SET NX) and
// subscribe to the reply channel in the same loop iteration, and wait for
// both; publish the command on MQTT; wait for one message or the deadline;
// before a timeout, after every resubscription and on a stored-reply notice,
// read the result key; unsubscribe, note the end in the record and complete.
//
// The record makes an id mean one command cluster-wide: a replica that finds
// it refuses to publish again (command_record.hpp). It is deleted when the
// command was never published (a retry may then send it), and left pending
// when the caller leaves or the gateway stops: the command goes on. A
// reconnect of the command connection writes the records of the waiting
// commands again where Redis lost them (a restart without persistence): the
// bridge stores only a reply whose record exists.
//
// Async commands (CommandMode::async) complete as `accepted` once published;
// the service then keeps waiting for the reply only to note it in the record.
//
// Thread ownership: loop thread only. Every submit() completes exactly once,
// on the loop thread, through its Completion (also when cancelled), possibly
// from inside submit(). Nothing here knows about HTTP.
//
// Memory: a waiting command holds its payload until it is published (then the
// MQTT client's copy is the only one) and is charged payload + kPendingEntryBytes
// against max_bytes until it completes.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "boxgate/ids.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/topics.hpp"
#include "commands/command_ports.hpp"
#include "commands/command_request.hpp"
#include "commands/grace_queue.hpp"
#include "commands/outcome.hpp"
#include "commands/pending_registry.hpp"

namespace boxgate::gateway {

// What one waiting command costs besides its payload: the entry, its timer,
// the HTTP request and connection state (measured: ~4-5 KiB per pending call
// with 10k waiting, docs/performance.md).
inline constexpr std::size_t kPendingEntryBytes = 4096;

// Reads of Redis that an answer waits on are bounded, so a stalled Redis
// cannot hold a caller past its timeout: the read of the result key at the
// deadline gets this long more (then 504); the stored-reply look-up of a
// retry gets the command's timeout (then 503: nothing was published).
inline constexpr std::chrono::milliseconds kFinalReadBound{500};

struct CommandSettings {
  std::size_t max_pending;
  std::size_t max_pending_per_device;
  std::size_t max_bytes;
  int qos;
  // A new command that finds a dependency reconnecting waits this long (at
  // most its timeout) -- but only while the outage is younger than this:
  // a blip is ridden through, a dependency that is really gone is refused fast.
  std::chrono::milliseconds dependency_grace{0};
  // The record lives timeout + this (the bridge keeps replies this long).
  std::int64_t result_ttl_ms = 60000;
  std::string instance = "gateway";  // this gateway's name in the records it writes
};

// The Redis and MQTT faces the service talks to (command_ports.hpp).
struct CommandPorts {
  ReplyChannels& channels;
  StateStore& state;
  CommandPublisher& publisher;
  // offline_policy=fail: a box whose presence says offline is answered
  // device_offline, never published. Null: offline_policy=wait.
  DevicePresence* presence = nullptr;
  // Where commands with a ttl go (attach_queue()); null: none are taken.
  CommandQueue* queue = nullptr;
  // Where the states this service sets are told (pending once published,
  // timed_out); null: nowhere.
  OutcomeLog* outcomes = nullptr;
};

// What a queue that hands the service a command hears of it: `published`
// once it was sent (with its record as updated: pending, sent_ms), `ended`
// once it ended, and whether it was published at all (if not, nothing
// reached the device and the queue may send it again).
struct QueuedHooks {
  std::function<void(std::string record_json)> published;
  std::function<void(Outcome outcome, bool published)> ended;
};

class CommandService {
 public:
  CommandService(EventLoop& loop, const Topics& topics, CommandSettings settings, CommandPorts ports,
                 ops::Metrics& metrics);
  ~CommandService();

  void submit(CommandRequest request, Completion done);
  void attach_queue(CommandQueue* queue) noexcept { ports_.queue = queue; }
  // Room for one more command from a queue: not draining, dependencies up,
  // below the gateway-wide limits.
  bool can_send_queued() const noexcept;
  // Sends a command its box's queue handed this gateway: its record exists
  // (state queued) and is updated here to pending once published, then to
  // its end like any command's. Message Expiry: the smaller of its timeout
  // and `expiry_cap` (the time its ttl has left). No caller waits on it, so
  // a drain does not either; it counts against max_pending like any other.
  void send_queued(CommandRequest request, CommandRecord record, std::chrono::milliseconds expiry_cap,
                   QueuedHooks hooks);
  // The caller went away: complete as client_gone and stop waiting.
  void cancel(const RequestId& id);
  // New commands are refused with shutting_down; waiting ones go on.
  void start_draining() noexcept { draining_ = true; }
  // End of a drain: a command already published completes as `delivered`
  // (it may still run: no retry is invited), any other as shutting_down.
  void abandon_all();
  // Commands waiting (also in grace), plus stored-reply look-ups not yet answered.
  std::size_t pending() const noexcept { return registry_.size() + grace_.size() + lookups_; }
  // What a drain waits for: pending() less the accepted async commands, whose
  // callers have their answer (their records outlive this gateway).
  std::size_t callers_waiting() const noexcept { return pending() - accepted_async_; }
  std::size_t pending_bytes() const noexcept { return registry_.bytes() + grace_.bytes(); }
  // A dependency changed state: commands held in grace go on once all are up.
  void dependencies_changed();
  // The command connection to Redis is back: write again the record of every
  // waiting command that Redis lost (a restart without persistence; SET NX,
  // its remaining TTL), then read its result key once, since a reply may
  // have been stored while either connection was down (a resubscription may
  // have come first and found the command connection still down).
  void recheck_result_keys();
  // Replies for commands already answered: the subscriber counts its orphan
  // messages here (late or duplicate replies).
  ops::Counter& late_replies() noexcept { return late_messages_; }

 private:
  struct Pending;
  struct Known;
  enum class KeyRead { recheck, notice, final_check };
  // Reads the id's record and result key; answers from them or admits.
  void look_up_known(CommandRequest&& request, Completion&& done, bool resumed);
  void answer_known(Known& known);
  void write_record(Pending& p);
  // After a reconnect: the record as written at send time, if Redis lost it.
  void restore_record(const Pending& p);
  void maybe_publish(Pending& p);
  void check_presence(Pending& p);
  void note_end_in_record(Pending& p, Outcome outcome);
  // The outcome stream's entry for `p` entering `state` (not yet told).
  OutcomeEvent outcome_event(const Pending& p, CommandState state) const;
  void tell(const OutcomeEvent& event);
  // resumed: held in grace before a drain began, so not refused for it.
  void admit(CommandRequest&& request, Completion&& done, bool resumed);
  static std::optional<Outcome> refusal(typename PendingRegistry<Pending>::Admit admitted);
  // The command just admitted as `id`: its deadline armed, counted.
  Pending& registered(const std::string& id, std::chrono::milliseconds timeout);
  // A queued command was published: its record says pending, sent_ms.
  void note_sent(Pending& p);
  bool hold_in_grace(CommandRequest& request, Completion& done, std::size_t bytes);
  void grace_ended(GraceQueue::Held&& held);
  void publish_unsent();  // MQTT is back: send what a lost connection held up
  void arm_deadline(Pending& p, std::chrono::milliseconds after);
  std::chrono::milliseconds time_left(const Pending& p) const;
  void resume(GraceQueue::Held&& held);
  // The refusal a missing dependency means, or nothing when all are up.
  std::optional<Outcome> missing_dependency() const;
  void finish(Pending& p, Outcome outcome, std::string reply = {});
  void subscribe(Pending& p);
  void publish(Pending& p);
  void read_result_key(Pending& p, KeyRead why);
  void on_deadline(Pending& p);
  void complete_immediately(Completion& done, Outcome outcome);
  void record(Outcome outcome, std::chrono::steady_clock::time_point started);
  // `act` on every waiting command `which` selects, safe against commands
  // that end (or ids reused) while it runs.
  void each_waiting(const std::function<bool(const Pending&)>& which, const std::function<void(Pending&)>& act);
  // The waiting command `id` if it is still the one numbered `sequence`.
  Pending* still_waiting(const std::string& id, std::uint64_t sequence) const;

  EventLoop& loop_;
  const Topics& topics_;
  CommandSettings settings_;
  CommandPorts ports_;
  PendingRegistry<Pending> registry_;
  GraceQueue grace_;
  std::optional<std::chrono::steady_clock::time_point> outage_since_;
  bool draining_ = false;
  std::size_t lookups_ = 0;  // record/stored-reply look-ups in flight
  std::size_t accepted_async_ = 0;  // async commands answered 202 and still waiting
  std::uint64_t next_sequence_ = 1;

  ops::Counter* outcome_counters_[std::size(kAllOutcomes)];
  ops::Histogram& latency_;
  ops::Gauge& pending_gauge_;
  ops::Counter& held_in_grace_;
  ops::Counter& late_messages_;
  ops::Counter* by_mode_[2];
  ops::Counter& orphans_discarded_;
  log::RateLimit orphan_log_;  // a caller picks the ids: at most a line a second
  ops::Counter& records_restored_;
};

}  // namespace boxgate::gateway
