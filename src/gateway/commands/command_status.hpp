#pragma once
// CommandStatusReader: answers GET /v1/devices/{box}/commands/{id} from the
// command record and the result key, on any replica; with a wait it
// long-polls the reply channel until the command ends or the wait is over.
//
// Thread ownership: loop thread only. Every read() completes exactly once,
// through its Done, unless cancel()ed first (the caller left).

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "boxgate/ids.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/topics.hpp"
#include "commands/command_ports.hpp"
#include "commands/command_record.hpp"

namespace boxgate::gateway {

struct StatusAnswer {
  enum class Kind { found, unknown, unavailable } kind;
  std::string body;  // found: the status JSON
};

// The status document: the record's fields, the state a caller sees, and
// the reply when one is stored (verbatim when it is JSON, else as a string
// in "reply_text").
std::string status_body(const CommandRecord& record, const CommandStatus& status,
                        const std::optional<std::string>& reply);

class CommandStatusReader {
 public:
  using Done = std::function<void(StatusAnswer&&)>;

  CommandStatusReader(EventLoop& loop, const Topics& topics, ReplyChannels& channels, StateStore& state,
                      ops::Metrics& metrics);
  ~CommandStatusReader();

  // wait 0: answer at once. Returns a handle for cancel().
  std::uint64_t read(const BoxId& box, const RequestId& id, std::chrono::milliseconds wait, Done done);
  void cancel(std::uint64_t handle);
  std::size_t watching() const noexcept { return watches_.size(); }

 private:
  struct Watch;
  void look(Watch& w);
  void answer(Watch& w, StatusAnswer&& a);
  Watch* find(std::uint64_t handle) const;
  std::unique_ptr<Watch> take(std::uint64_t handle);  // removed and unsubscribed

  EventLoop& loop_;
  const Topics& topics_;
  ReplyChannels& channels_;
  StateStore& state_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Watch>> watches_;
  std::uint64_t next_handle_ = 1;
  ops::Counter& reads_;
  ops::Gauge& long_polls_;
};

}  // namespace boxgate::gateway
