#pragma once
// The Lua scripts that change a box's queue, and what their answers say.
// Each script names the box's two keys (Topics::queue_key, queue_items_key:
// one cluster slot), so it runs atomically in standalone, Sentinel and
// Cluster modes alike; whatever any replica does to one box's queue is
// ordered by Redis.
//
// The list holds one element per queued command, in send order:
// "<expires_ms> <timeout_ms> <accepted_ms> <charge> <token> <requestId>"
// (ids and token names hold no space; token "-": none): `charge` is what the
// command counts against its token's share (its entry's bytes).
// The hash holds each command's entry under its id (queue_entry.hpp), and
// two fields no id can be (ids never contain '/'): "/bytes", the bytes the
// box's queue holds (entries plus elements), and "/sending", the command in
// flight as "<requestId> <gateway> <until_ms>". At most one command of a box
// is in flight from its queue; it stays the list's head until it ended, so a
// gateway that dies with it leaves it where another finds it (`until_ms`
// passed: stale) and either sends it again or notes its end.
//
// Pure values and texts; any thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace boxgate::gateway {

// KEYS list, hash. ARGV element, id, entry, max count, max bytes, claim
// (1: send it at once if the queue is empty and nothing is in flight),
// the "/sending" value to set then. Answers {status, depth before}:
// status queued | claimed | exists (already queued: nothing changed) |
// full (max count) | full_bytes.
extern const char* const kEnqueueScript;

// KEYS list, hash. ARGV now_ms, claim (1/0), gateway, slack_ms, end (the
// exact "/sending" value to end, or ""), requeue (1: the ended one was
// never sent; it stays the head). Ends the one in flight if asked, drops
// every entry whose ttl passed, then reports the one in flight (busy, or
// stale past its until_ms) or claims the head when asked. Answers
// {status, sending value, entry, depth, bytes freed, head element, ended
// element ("" if none), expired element...}; status idle | busy | stale | claimed.
extern const char* const kStepScript;

// KEYS list, hash. ARGV id. Answers {cancelled, bytes freed, entry, element} |
// {sending} (in flight: too late) | {absent}.
extern const char* const kCancelScript;

// KEYS the index. ARGV box, score seen. Removes the box from the index only
// if no enqueue touched it since (each enqueue adds 1 to its score first).
extern const char* const kForgetBoxScript;

// One queued command's list element.
struct QueueElement {
  std::int64_t expires_ms = 0;
  std::int64_t timeout_ms = 0;
  std::int64_t accepted_ms = 0;
  std::int64_t charge = 0;
  std::string token;  // the caller's token name ("" when the API is open)
  std::string id;
};
std::string element_text(const QueueElement& element);
std::optional<QueueElement> parse_element(std::string_view text);

// What "/sending" says.
struct Sending {
  std::string id;
  std::string gateway;
  std::int64_t until_ms = 0;
  std::string value;  // the field as stored (what kStepScript's `end` must match)
};
std::string sending_text(std::string_view id, std::string_view gateway, std::int64_t until_ms);
std::optional<Sending> parse_sending(std::string_view text);

struct EnqueueAnswer {
  enum class Status { queued, claimed, exists, full, full_bytes } status;
  std::int64_t depth_before = 0;
};
std::optional<EnqueueAnswer> parse_enqueue(const redisReply* reply);

struct StepAnswer {
  enum class Status { idle, busy, stale, claimed } status;
  std::optional<Sending> sending;  // busy, stale, claimed
  std::string entry;               // claimed: its entry
  std::int64_t depth = 0;          // queued after the step (the one in flight included)
  std::int64_t bytes_freed = 0;
  std::optional<QueueElement> head;   // the oldest still queued
  std::optional<QueueElement> ended;  // the one `end` removed (not when requeued)
  std::vector<QueueElement> expired;
};
std::optional<StepAnswer> parse_step(const redisReply* reply);

struct CancelAnswer {
  enum class Status { cancelled, sending, absent } status;
  std::int64_t bytes_freed = 0;
  std::string entry;
  std::optional<QueueElement> element;
};
std::optional<CancelAnswer> parse_cancel(const redisReply* reply);

}  // namespace boxgate::gateway
