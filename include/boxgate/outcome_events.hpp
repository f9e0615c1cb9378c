#pragma once
// The outcome stream and the presence stream (docs/events.md, "Outcomes"):
// every state change of a command, and every change of a box's presence,
// as one entry of a capped Redis Stream -- {prefix}/commands and
// {prefix}/presence -- with the field layout of the event streams (box,
// name, payload, received_ms), so whatever reads events reads these too
// (consumer groups, XRANGE, the gateway's SSE and webhooks).
//
// Written by whoever changes the state, fire and forget on the connection
// that changed it (pipelined behind that change):
//   queued, expired, cancelled      -- the gateway's queue;
//   pending (sent), timed_out       -- the gateway that published it;
//   succeeded                       -- the bridge that stored the reply;
//   online, offline                 -- the bridge whose presence script saw the change.
// An entry holds no reply (it stays in its result key): its size only.
//
// Bounds: XADD MAXLEN ~ maxlen; an entry's values are ids and numbers, at
// most ~700 bytes with 128-character ids (kMaxOutcomeEntryBytes), so a
// stream holds at most about maxlen x that.
//
// Pure functions and one small writer; loop thread only for the writer
// (like the redis::Commands it writes on).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "boxgate/redis/commands.hpp"

namespace boxgate {

// An entry's values at their longest (two 128-character ids in the
// payload and once more as the box field) plus Redis's 64 B per entry.
inline constexpr std::size_t kMaxOutcomeEntryBytes = 768;

// One command's state change.
struct OutcomeEvent {
  std::string box;
  std::string request_id;
  std::string state;  // "queued", "pending", "succeeded", "timed_out", "expired", "cancelled"
  std::int64_t at_ms = 0;
  std::optional<std::string> mode;         // "sync" | "async" when known
  std::optional<bool> delivered;           // timed_out: did the broker acknowledge the publish
  std::optional<bool> late;                // succeeded: no gateway was waiting any more
  std::optional<std::int64_t> reply_bytes; // succeeded: the reply's size
  std::optional<std::string> gateway;      // the instance that wrote it, where one did
};

// The entry's payload: a one-line JSON object of the fields set.
std::string outcome_payload(const OutcomeEvent& event);

// A presence change's payload: {"box","online","at_ms"}.
std::string presence_payload(std::string_view box, bool online, std::int64_t at_ms);

// Appends entries to one capped stream. maxlen 0: disabled, add() does
// nothing. The reply is not awaited: an entry lost with a broken connection
// is lost (the record and result key stay the truth; docs say so).
class StreamAppender {
 public:
  StreamAppender(redis::Commands& redis, std::string stream, std::int64_t maxlen);
  bool enabled() const noexcept { return maxlen_ > 0; }
  void add(std::string_view box, std::string_view name, std::string_view payload, std::int64_t at_ms);
  void add(const OutcomeEvent& event) {
    if (enabled()) add(event.box, event.state, outcome_payload(event), event.at_ms);
  }
  const std::string& stream() const noexcept { return stream_; }

 private:
  redis::Commands& redis_;
  std::string stream_;
  std::string maxlen_text_;
  std::int64_t maxlen_;
};

}  // namespace boxgate
