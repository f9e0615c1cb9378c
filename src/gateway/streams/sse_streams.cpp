#include "streams/sse_streams.hpp"

#include <hiredis/hiredis.h>

#include "boxgate/ids.hpp"
#include "boxgate/logging.hpp"
#include "api/errors.hpp"
#include "streams/stream_pages.hpp"

namespace boxgate::gateway {

namespace {
const char* end_reason(int i) {
  static const char* names[] = {"client_gone", "slow_reader", "redis_error", "shutdown"};
  return names[i];
}

const char* kind_name(int i) {
  static const char* names[] = {"box", "fleet", "commands"};
  return names[i];
}

}  // namespace

bool StreamFilter::matches(std::string_view box_id) const {
  if (box) return box_id == *box;
  if (pattern && !pattern->matches(box_id)) return false;
  return !token || token->allows(box_id);
}

std::string sse_event(const redis::StoredEvent& event) {
  std::string out;
  out.reserve(event.payload.size() + event.name.size() + event.id.size() + 32);
  out += "id: ";
  out += event.id;
  // The name becomes an SSE field: only an id-pattern name can never break
  // the framing (the bridge only writes such names; anything else in the
  // stream was not written by it).
  out += "\nevent: ";
  out += is_valid_id(event.name) ? event.name : std::string("message");
  out += '\n';
  // SSE lines end at CRLF, LF or CR: each line of the payload is one data:
  // field, and the client joins them again with LF.
  std::string_view rest = event.payload;
  while (true) {
    std::size_t end = rest.find_first_of("\r\n");
    out += "data: ";
    out.append(rest.substr(0, end));
    out += '\n';
    if (end == std::string_view::npos) break;
    std::size_t skip = (rest[end] == '\r' && end + 1 < rest.size() && rest[end + 1] == '\n') ? 2 : 1;
    rest.remove_prefix(end + skip);
  }
  out += '\n';
  return out;
}

class SseStreams::Stream final : public StreamTail::Listener {
 public:
  Stream(SseStreams& owner, StreamTail& tail, std::uint64_t id, http::Exchange exchange, StreamFilter filter,
         std::string key, std::optional<std::string> after)
      : owner_(owner),
        tail_(tail),
        id_(id),
        exchange_(std::move(exchange)),
        filter_(std::move(filter)),
        key_(std::move(key)),
        last_(std::move(after)),
        catch_up_(last_.has_value()),
        heartbeat_(owner.loop_, [this] { heartbeat(); }),
        scan_pause_(owner.loop_, [this] { next_page(); }) {}

  void start() {
    exchange_.on_disconnect([owner = &owner_, id = id_] { owner->retire(id, End::client_gone); });
    exchange_.set_header("Cache-Control", "no-cache");
    exchange_.set_header("X-Accel-Buffering", "no");  // nginx: pass each event on at once
    exchange_.start_stream(200, "text/event-stream");
    exchange_.write(": stream open\n\n");  // headers and a first byte through any proxy
    heartbeat_.start(owner_.settings_.heartbeat, true);
    tail_.join(this);
  }

  // The stream ends (retire): no more events, the exchange closed as `why` says.
  void finish(End why) {
    tail_.leave(this);
    heartbeat_.cancel();
    scan_pause_.cancel();
    buffered_.clear();
    if (why == End::slow_reader) {
      exchange_.abort();
    } else if (why != End::client_gone) {
      exchange_.end_stream();
    }
  }

  void on_positioned() override {
    if (!positioned_) {
      positioned_ = true;
      if (catch_up_) read_page();
    }
  }

  void on_event(const redis::StoredEvent& event) override {
    if (!positioned_ || !filter_.matches(event.box) || !newer(event.id)) return;
    if (!catch_up_) return deliver(event);
    std::size_t size = event.payload.size() + event.id.size() + event.name.size() + 64;
    if (buffered_bytes_ + size > owner_.settings_.max_buffer_bytes) {
      // Those events are in the stream: one more page reads them.
      buffered_.clear();
      buffered_bytes_ = 0;
      overflowed_ = true;
      return;
    }
    buffered_bytes_ += size;
    buffered_.push_back(event);
  }

  void page(const redisReply* reply, std::size_t asked) {
    if (!reply || reply->type != REDIS_REPLY_ARRAY) {
      log::get("events")->warn("stream {}: history read failed: {}", id_,
                               reply && reply->type == REDIS_REPLY_ERROR ? std::string(reply->str, reply->len)
                                                                         : std::string("connection lost"));
      return owner_.retire(id_, End::redis_error);
    }
    // At most sse_max_buffer_bytes for the socket (or one event, alone): the
    // rest of the reply is read again by the next page.
    const std::size_t budget = owner_.settings_.max_buffer_bytes;
    std::string chunk;
    std::size_t count = 0;
    bool full = false;
    for (const redis::StoredEvent& event : redis::parse_entries(reply)) {
      largest_ = std::max(largest_, entry_bytes(event));
      if (!newer(event.id)) continue;
      if (!filter_.matches(event.box)) {
        ++window_skipped_;
        last_ = event.id;
        continue;
      }
      std::string text = sse_event(event);
      if (!chunk.empty() && chunk.size() + text.size() > budget) {
        full = true;
        break;
      }
      chunk += text;
      last_ = event.id;
      ++count;
    }
    if (!full) {
      if (auto last = redis::last_entry_id(reply); last && newer(*last)) last_ = std::move(last);
    }
    bool more = full || reply->elements >= asked || overflowed_;
    if (!more) {
      // Caught up: the live events that came meanwhile, past the last sent.
      for (const redis::StoredEvent& event : buffered_) {
        if (!newer(event.id)) continue;
        chunk += sse_event(event);
        last_ = event.id;
        ++count;
      }
      buffered_.clear();
      buffered_bytes_ = 0;
      catch_up_ = false;
    }
    owner_.sent_.inc(count);
    if (!more) {
      if (!chunk.empty()) exchange_.write(chunk);
      return;
    }
    if (chunk.empty()) return next_page();
    // The next page once this one has left: a slow reader slows the catch-up,
    // it never piles pages up in memory.
    exchange_.write(chunk, [owner = &owner_, id = id_] {
      if (auto it = owner->streams_.find(id); it != owner->streams_.end()) it->second->next_page();
    });
  }

 private:
  bool newer(const std::string& id) const { return !last_ || redis::stream_id_less(*last_, id); }

  // A filter that shows little of what it reads (a fleet stream filtered to
  // a quiet box) would page through the whole stream as fast as Redis
  // answers, on the connection every command uses: past kScanPerSecond
  // entries not shown in a second, the next page waits for the next second.
  void next_page() {
    auto now = std::chrono::steady_clock::now();
    if (now - window_start_ >= std::chrono::seconds(1)) {
      window_start_ = now;
      window_skipped_ = 0;
    }
    if (window_skipped_ < kScanPerSecond) return read_page();
    auto wait = std::chrono::ceil<std::chrono::milliseconds>(window_start_ + std::chrono::seconds(1) - now);
    owner_.scan_paused_.inc();
    scan_pause_.start(wait);
  }

  void read_page() {
    overflowed_ = false;  // events dropped from the buffer before now are in this page or a later one
    std::string start = redis::range_start_after(last_);
    std::size_t asked = next_page_count(owner_.settings_.max_buffer_bytes, largest_, kPageEntries);
    bool sent = owner_.redis_.run({"XRANGE", key_, start, "+", "COUNT", std::to_string(asked)},
                                  [owner = &owner_, id = id_, asked](const redisReply* reply) {
                                    if (auto it = owner->streams_.find(id); it != owner->streams_.end()) {
                                      it->second->page(reply, asked);
                                    }
                                  });
    if (!sent) owner_.retire(id_, End::redis_error);
  }

  void deliver(const redis::StoredEvent& event) {
    std::string text = sse_event(event);
    // Over the bound: first let the socket take what it can now (a burst
    // written in one callback has not met the socket yet); still over, the
    // reader is too slow. A socket that took everything gets the event
    // whatever its size (as a catch-up page does).
    if (exchange_.pending_output() + text.size() > owner_.settings_.max_buffer_bytes) {
      std::size_t pending = exchange_.flush_now();
      if (pending > 0 && pending + text.size() > owner_.settings_.max_buffer_bytes) {
        return owner_.retire(id_, End::slow_reader);
      }
    }
    exchange_.write(text);
    last_ = event.id;
    owner_.sent_.inc();
  }

  void heartbeat() {
    if (catch_up_) return;  // pages keep the bytes moving (and own the flush callback)
    if (exchange_.pending_output() + 8 > owner_.settings_.max_buffer_bytes &&
        exchange_.flush_now() + 8 > owner_.settings_.max_buffer_bytes) {
      return owner_.retire(id_, End::slow_reader);
    }
    exchange_.write(": hb\n\n");
  }

  SseStreams& owner_;
  StreamTail& tail_;
  std::uint64_t id_;
  http::Exchange exchange_;
  StreamFilter filter_;
  std::string key_;
  std::optional<std::string> last_;  // the newest id sent (or resumed after)
  bool catch_up_;
  bool positioned_ = false;
  bool overflowed_ = false;
  std::deque<redis::StoredEvent> buffered_;  // live events that came during the catch-up
  std::size_t buffered_bytes_ = 0;
  std::size_t largest_ = 0;  // the largest entry read by the catch-up (sizes its pages)
  std::chrono::steady_clock::time_point window_start_{};
  std::size_t window_skipped_ = 0;  // entries read and not shown since window_start_
  Timer heartbeat_;
  Timer scan_pause_;
};

SseStreams::SseStreams(EventLoop& loop, redis::Commands& redis, StreamSettings settings, ops::Metrics& metrics)
    : loop_(loop),
      redis_(redis),
      settings_(settings),
      reaper_(loop, [this] { retired_.clear(); }),
      open_gauge_(metrics.gauge("boxgate_streams_open", "event streams (SSE) open")),
      refused_(metrics.counter("boxgate_streams_refused_total", "event streams refused at max_streams (429)")),
      sent_(metrics.counter("boxgate_stream_events_sent_total", "events written to event streams")),
      scan_paused_(metrics.counter("boxgate_stream_scan_pauses_total",
                                   "catch-up reads delayed: the stream's filter skipped its entries per second")) {
  for (int i = 0; i < 3; ++i) {
    opened_[i] = &metrics.counter("boxgate_streams_opened_total", "event streams opened",
                                  std::string("kind=\"") + kind_name(i) + "\"");
  }
  for (int i = 0; i < 4; ++i) {
    ended_[i] = &metrics.counter("boxgate_streams_closed_total", "event streams ended, by reason",
                                 std::string("reason=\"") + end_reason(i) + "\"");
  }
}

SseStreams::~SseStreams() {
  for (auto& [id, stream] : streams_) stream->finish(End::shutdown);
  streams_.clear();
  retired_.clear();
}

bool SseStreams::admit(http::Exchange& ex, const ApiToken* token, StreamFilter& filter,
                       const std::string* request_id, const std::string* box_id) {
  if (full()) {
    refused_.inc();
    reply_error(ex, Error::too_many_streams, "This gateway has too many event streams open.", request_id, box_id);
    return false;
  }
  if (!token) return true;
  std::optional<TokenSlot> slot = token->take_stream();
  if (!slot) {
    reply_error(ex, Error::token_streams_full, "This token has as many event streams open as it may.", request_id,
                box_id);
    return false;
  }
  filter.slot = std::move(*slot);
  return true;
}

void SseStreams::open(http::Exchange exchange, StreamTail& tail, StreamFilter filter, std::string history_key,
                      std::optional<std::string> after, StreamKind kind) {
  std::uint64_t id = next_id_++;
  auto stream = std::make_unique<Stream>(*this, tail, id, std::move(exchange), std::move(filter),
                                         std::move(history_key), std::move(after));
  Stream* raw = stream.get();
  streams_.emplace(id, std::move(stream));
  open_gauge_.set(static_cast<std::int64_t>(streams_.size()));
  opened_[static_cast<int>(kind)]->inc();
  raw->start();
}

void SseStreams::retire(std::uint64_t id, End why) {
  auto it = streams_.find(id);
  if (it == streams_.end()) return;
  std::unique_ptr<Stream> stream = std::move(it->second);
  streams_.erase(it);
  open_gauge_.set(static_cast<std::int64_t>(streams_.size()));
  ended_[static_cast<int>(why)]->inc();
  if (why == End::slow_reader) log::get("events")->info("event stream {} cut off: its reader is too slow", id);
  stream->finish(why);
  // Freed outside whatever callback of its own we may be in.
  retired_.push_back(std::move(stream));
  if (!reaper_.pending()) reaper_.start(std::chrono::milliseconds(0));
}

void SseStreams::close_all() {
  std::vector<std::uint64_t> ids;
  for (auto& [id, stream] : streams_) ids.push_back(id);
  for (std::uint64_t id : ids) retire(id, End::shutdown);
}

}  // namespace boxgate::gateway
