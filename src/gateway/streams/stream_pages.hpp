#pragma once
// How many entries the next XRANGE of a stream of events (or outcomes) asks for, so that a
// read stays near a byte budget (docs/security.md, "Event reads").
//
// Redis bounds XRANGE in entries, not bytes, and an event may be as large as
// the bridge's max_event_bytes. So a reader asks for kFirstPageEntries
// first (one reply of large events then stays a few MB), then as many as
// the budget holds at the size of the largest entry seen so far, at most
// `cap` (at least one: one event larger than the budget still goes, alone).
// The cap bounds one reply when small events are followed by large ones:
// `cap` x max_event_bytes.
// Entries a reader fetched but did not use (over its budget) are read again
// by its next XRANGE.
//
// Pure functions; any thread.

#include <algorithm>
#include <cstddef>

#include "boxgate/redis/stream_entries.hpp"

namespace boxgate::gateway {

// The bytes of one entry as the gateway holds it (fields plus a little
// framing): what a budget counts.
inline std::size_t entry_bytes(const redis::StoredEvent& event) {
  return event.id.size() + event.box.size() + event.name.size() + event.payload.size() + event.received_ms.size() +
         64;
}

inline constexpr std::size_t kFirstPageEntries = 4;

// `largest`: the largest entry_bytes() seen so far by this reader (0: none yet).
inline std::size_t next_page_count(std::size_t budget_bytes, std::size_t largest, std::size_t cap) {
  if (largest == 0) return std::min(cap, kFirstPageEntries);
  return std::clamp<std::size_t>(budget_bytes / largest, 1, cap);
}

}  // namespace boxgate::gateway
