#pragma once
// Redis Stream entries as boxgate reads them: stream ids ("ms-seq"), their
// order, the start of a range after an id, and the event entries the bridge
// writes (fields box, name, payload, received_ms; docs/events.md).
//
// Pure functions over hiredis replies and strings; any thread.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct redisReply;

namespace boxgate::redis {

// One entry of an event stream, as the bridge wrote it.
struct StoredEvent {
  std::string id;  // the stream id, "ms-seq"
  std::string box;
  std::string name;
  std::string payload;
  std::string received_ms;
};

// True when `id` is a stream id: "ms" or "ms-seq", each a decimal that fits
// in 64 bits (as Redis's are; leading zeros allowed).
bool is_stream_id(std::string_view id) noexcept;
// True for the largest stream id (both parts 2^64-1): nothing comes after it,
// and Redis refuses it as the exclusive start of a range. Needs is_stream_id().
bool is_last_stream_id(std::string_view id) noexcept;
// Stream ids compare as (ms, seq) pairs ("ms" is "ms-0"); both must be is_stream_id().
bool stream_id_less(std::string_view a, std::string_view b) noexcept;

// The start argument of XRANGE for the entries after `after` ("(" + id,
// exclusive), or from the beginning ("-") without one.
std::string range_start_after(const std::optional<std::string>& after);

// The entries of an XRANGE/XREVRANGE reply (or the entry array of one stream
// of an XREAD reply); entries without the bridge's box and name, or whose id
// is not a stream id, are skipped.
std::vector<StoredEvent> parse_entries(const redisReply* array);

// The id of the last entry of such an array, whatever its fields: a reader
// moves past entries it does not show. nullopt for an empty or malformed one.
std::optional<std::string> last_entry_id(const redisReply* array);

}  // namespace boxgate::redis
