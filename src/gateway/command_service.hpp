#pragma once
// CommandService: send one command to a device and await its reply.
//
// Steps (wire contract, "What the gateway does"): for a caller-supplied id,
// answer from the result key if present; subscribe to the reply channel and
// wait for Redis to confirm; publish the command on MQTT; wait for one message
// or the deadline; before a timeout, and after every resubscription, read the
// result key once; unsubscribe and complete.
//
// Thread ownership: loop thread only. Every accepted submit() completes exactly
// once, on the loop thread, through its Completion (also when cancelled).
// Nothing here knows about HTTP.

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "boxgate/ids.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/mqtt/client.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/subscriber.hpp"
#include "boxgate/topics.hpp"
#include "outcome.hpp"
#include "pending_registry.hpp"

namespace boxgate::gateway {

struct CommandRequest {
  BoxId box;
  RequestId id;
  bool caller_supplied_id = false;
  std::string payload;  // the command JSON, "id" already set
  std::chrono::milliseconds timeout;
};

struct CommandResult {
  Outcome outcome;
  std::string reply;  // the device's payload for ok/replayed
};

using Completion = std::function<void(CommandResult&&)>;

struct CommandSettings {
  std::size_t max_pending;
  std::size_t max_pending_per_device;
  int qos;
};

class CommandService {
 public:
  CommandService(EventLoop& loop, const Topics& topics, CommandSettings settings, redis::Subscriber& subscriber,
                 redis::Commands& commands, mqtt::Client& mqtt, ops::Metrics& metrics);
  ~CommandService();

  void submit(CommandRequest request, Completion done);
  // The caller went away: complete as client_gone and stop waiting.
  void cancel(const RequestId& id);
  // New commands are refused with shutting_down; waiting ones go on.
  void start_draining() noexcept { draining_ = true; }
  // Completes every waiting command with `outcome` (end of a drain).
  void abort_all(Outcome outcome);
  std::size_t pending() const noexcept { return registry_.size(); }
  // The command connection to Redis is back: read the result key of every
  // waiting command once, since a reply may have been stored while either
  // connection was down (a resubscription may have come first and found the
  // command connection still down).
  void recheck_result_keys();

 private:
  struct Pending;
  void finish(Pending& p, Outcome outcome, std::string reply = {});
  void subscribe(Pending& p);
  void publish(Pending& p);
  void read_result_key(Pending& p, bool final_check);
  void on_deadline(Pending& p);
  void complete_immediately(const CommandRequest& request, Completion& done, Outcome outcome);
  void record(Outcome outcome, std::chrono::steady_clock::time_point started);

  EventLoop& loop_;
  const Topics& topics_;
  CommandSettings settings_;
  redis::Subscriber& subscriber_;
  redis::Commands& commands_;
  mqtt::Client& mqtt_;
  PendingRegistry<Pending> registry_;
  bool draining_ = false;
  std::uint64_t next_sequence_ = 1;

  ops::Counter* outcome_counters_[std::size(kAllOutcomes)];
  ops::Histogram& latency_;
  ops::Gauge& pending_gauge_;
  ops::Counter& late_messages_;
};

}  // namespace boxgate::gateway
