#pragma once
// One command as the gateway's core handles it, and how it ends. Plain
// values; loop thread only like everything that holds them.

#include <chrono>
#include <functional>
#include <string>

#include "boxgate/ids.hpp"
#include "outcome.hpp"

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

}  // namespace boxgate::gateway
