#pragma once
// The command record: what the cluster knows of one command, kept in Redis at
// {prefix}/{box}/command/{requestId} (docs/contract.md, "Command records").
// With the result key it is the whole state of a command; any replica reads
// it to refuse a duplicate, replay a reply or answer a status poll.
//
// Plain values and pure functions; any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace boxgate::gateway {

enum class CommandMode { sync, async };

// A record's state as written -- the one state machine of a command
// (docs/contract.md, "Queued commands"): queued (accepted with a ttl, not
// yet sent) -> pending (sent, waiting for the reply; where a command without
// a ttl starts) -> succeeded | timed_out; or queued -> expired (its ttl
// passed unsent) | cancelled. On the wire (the record's and the status
// endpoint's "state") by state_name().
enum class CommandState { queued, pending, succeeded, timed_out, expired, cancelled };
inline constexpr CommandState kAllStates[] = {CommandState::queued,    CommandState::pending,
                                              CommandState::succeeded, CommandState::timed_out,
                                              CommandState::expired,   CommandState::cancelled};

struct CommandRecord {
  std::string box_id;
  std::string request_id;
  std::string body_sha256;  // hex SHA-256 of the body as the caller sent it
  CommandState state = CommandState::pending;
  CommandMode mode = CommandMode::sync;
  std::int64_t accepted_ms = 0;  // wall clock, ms since the epoch
  std::int64_t deadline_ms = 0;
  std::string gateway;  // the instance that published it
  std::optional<bool> delivered;  // at timed_out: did the broker acknowledge the publish
  std::optional<std::int64_t> finished_ms;
  // Queued commands: how long it may wait to be sent, and when it was.
  // While queued, deadline_ms is accepted_ms + ttl_ms + its timeout (the
  // latest it can end); once sent, sent_ms + its timeout.
  std::optional<std::int64_t> ttl_ms;
  std::optional<std::int64_t> sent_ms;

  std::string to_json() const;
};

// Records are small; anything larger in the key is not one of ours.
inline constexpr std::size_t kMaxRecordBytes = 4096;

// nullopt when `json` is not a record (too large, not JSON, fields missing).
std::optional<CommandRecord> parse_record(std::string_view json);

// The hex SHA-256 of a command body, for "same id, different body".
std::string body_sha256(std::string_view body);

// Wall-clock milliseconds since the epoch.
std::int64_t now_ms();

// The state a caller sees. A record still pending after its deadline (its
// gateway died or the caller left) has timed out unless a reply is stored; a
// reply stored after the deadline is `late`; a record still queued after its
// ttl has expired (the queue's sweep may not have noted it yet).
struct CommandStatus {
  CommandState state = CommandState::pending;
  bool late = false;
};
CommandStatus status_of(const CommandRecord& record, bool has_reply, std::int64_t now_ms);

// How a command with a caller-supplied id that may be known is answered,
// from what Redis holds for the id (its record, whether a reply is stored)
// and the new request (its body's hash, its mode). Pure.
enum class RetryAnswer {
  send,                 // no record: a new command (a stored reply without one is deleted first)
  request_id_reused,    // the record's body differs
  replay,               // the stored reply, again
  accept_again,         // async, still queued or pending, or ended unsent (expired, cancelled):
                        // accepted again with its record, which says where it is
  duplicate,            // still pending, or succeeded with its reply expired: must not run again
  timed_out_before,     // it timed out: not sent again under this id
};
RetryAnswer answer_retry(const std::optional<CommandRecord>& record, bool has_reply, std::string_view body_sha256,
                         CommandMode mode, std::int64_t now_ms);

const char* mode_name(CommandMode mode);
// "queued", "pending", "succeeded", "timed_out", "expired", "cancelled".
const char* state_name(CommandState state);
std::optional<CommandState> state_of(std::string_view name);

}  // namespace boxgate::gateway
