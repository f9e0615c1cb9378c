#pragma once
// SseStreams: the gateway's Server-Sent Events streams of Redis Streams
// (docs/events.md), the one mechanism behind every SSE route.
//
// A stream shows the entries of one StreamTail (streams/stream_tail.hpp):
// one box's events (GET /v1/devices/{box}/events with Accept:
// text/event-stream), or the fleet's, filtered by a box pattern and the
// caller's token scope (GET /v1/events), or the commands' outcomes filtered
// alike (GET /v1/commands). Each SSE event is
//   id: <stream id>\nevent: <name>\ndata: <payload line>\n...\n\n
// and a quiet stream gets a ": hb" comment every sse_heartbeat_ms.
//
// History, then live, without a gap: the stream joins its StreamTail (the
// gateway's one reader of the stream it shows) and waits until the tail knows
// its position; then, when the caller gave Last-Event-ID (or ?after=), it
// reads what is stored after that id with XRANGE pages on the command
// connection -- each page sent only once the previous one left the socket --
// while live events from the tail wait in a bounded buffer. A short page
// ends the catch-up: the buffered events newer than the last one sent go
// out, then live ones as they come. Ids only ever go up, so an event is
// never sent twice. If the buffer overflows during the catch-up it is
// emptied and one more page is read (the events it held are in the stream).
//
// Bounds: a live event that would take the socket's unsent bytes above
// sse_max_buffer_bytes disconnects that reader (counted; a browser's
// EventSource reconnects with Last-Event-ID and catches up from the
// stream); the others are not affected. A socket that took everything gets
// the next event whatever its size. At most max_streams are open
// (429 too_many_streams). The catch-up obeys the same bound: a page is
// written only once the previous one left, and holds at most
// sse_max_buffer_bytes of events (or one larger event, alone); its XRANGE
// asks for as many entries as that holds at the largest size seen
// (stream_pages.hpp, at most kPageEntries). A reader that takes nothing is
// cut by the HTTP write timeout (http_idle_timeout_ms). Entries read and
// not shown (a fleet stream filtered to a quiet box or outside the token's
// scope) are budgeted: past kScanPerSecond in a second, the next page waits
// for the next second, so such a reader cannot keep the command connection
// busy (the API also reads an exact box's catch-up from its own stream).
//
// One pool: a single SseStreams holds the streams of every tail, so
// max_streams bounds event and outcome streams together and close_all()
// (the drain) ends them all. (Two instances with a shared counter would
// each need the limit, and the drain would have to know them all; a stream
// costs the same socket and buffer whichever stream it shows.) A token's
// share of streams (TokenSlot, api/token_limits.hpp) is one count per token
// already, whichever route took it.
//
// Thread ownership: loop thread only. A stream is destroyed by its owner,
// never from inside one of its own callbacks (retired streams are freed on
// a zero timer).

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "api/auth.hpp"
#include "boxgate/http/server.hpp"
#include "boxgate/loop/event_loop.hpp"
#include "boxgate/ops/metrics.hpp"
#include "boxgate/redis/commands.hpp"
#include "streams/stream_tail.hpp"

namespace boxgate::gateway {

struct StreamSettings {
  std::size_t max_streams;
  std::size_t max_buffer_bytes;
  std::chrono::milliseconds heartbeat;
};

// Which entries a stream shows.
struct StreamFilter {
  std::optional<std::string> box;        // one box's stream
  std::optional<Scope> pattern;          // the fleet or outcome stream: boxes matching this
  std::shared_ptr<const ApiToken> token;  // and the caller's scope (null: the API is open)
  TokenSlot slot;                          // the token's share of streams, held while open
  bool matches(std::string_view box_id) const;
};

// One SSE event's bytes (payload split into data: lines at CR, LF or CRLF).
std::string sse_event(const redis::StoredEvent& event);

// What a stream shows: its opened_total{kind=...} series.
enum class StreamKind { box, fleet, commands };

class SseStreams {
 public:
  // A catch-up page holds at most this many entries (fewer for large events).
  static constexpr std::size_t kPageEntries = 32;
  // Entries a catch-up may read and not show (filtered out) per second.
  static constexpr std::size_t kScanPerSecond = 2048;

  SseStreams(EventLoop& loop, redis::Commands& redis, StreamSettings settings, ops::Metrics& metrics);
  ~SseStreams();

  bool full() const noexcept { return streams_.size() >= settings_.max_streams; }
  // Whether one more stream may open: false once answered 429
  // too_many_streams (max_streams) or token_streams_full (the token's
  // share, then held in `filter.slot`; `token` null: the API is open).
  bool admit(http::Exchange& ex, const ApiToken* token, StreamFilter& filter, const std::string* request_id,
             const std::string* box_id);
  // Starts a stream of `tail`'s entries on the exchange (200,
  // text/event-stream). `history_key` is the stream read for the catch-up
  // (the tail's, or one with the same ids); `after` the id to resume after
  // (none: live entries only).
  void open(http::Exchange exchange, StreamTail& tail, StreamFilter filter, std::string history_key,
            std::optional<std::string> after, StreamKind kind);
  // Ends every stream (drain): their clients reconnect elsewhere.
  void close_all();
  std::size_t open_streams() const noexcept { return streams_.size(); }

 private:
  class Stream;
  friend class Stream;
  enum class End { client_gone, slow_reader, redis_error, shutdown };
  void retire(std::uint64_t id, End why);

  EventLoop& loop_;
  redis::Commands& redis_;
  StreamSettings settings_;
  std::unordered_map<std::uint64_t, std::unique_ptr<Stream>> streams_;
  std::vector<std::unique_ptr<Stream>> retired_;
  Timer reaper_;
  std::uint64_t next_id_ = 1;

  ops::Gauge& open_gauge_;
  ops::Counter* opened_[3];  // by StreamKind
  ops::Counter& refused_;
  ops::Counter& sent_;
  ops::Counter& scan_paused_;
  ops::Counter* ended_[4];
};

}  // namespace boxgate::gateway
