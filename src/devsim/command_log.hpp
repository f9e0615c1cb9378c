#pragma once
// The command log: one JSON line per command a box ran (the device
// library's command handler), for benchmarks that check what each box
// received and when:
//
//   {"box":"box-7","id":"<request id>","t_ms":<received>,"online_ms":<online>}
//
// t_ms: the wall clock (ms since the epoch) when the handler ran; online_ms:
// when this box last announced `online` (its connection's last ready), 0
// before the first. With a persistent session the broker sends what it
// queued right after CONNACK, before the SUBACK that makes the box announce
// online: such a command shows the previous online. A command delivered again is logged again when the
// handler runs again (after the library's reply cache forgot its id); a
// duplicate the library answers from its cache, or ignores while the first
// runs, never reaches the handler and is not logged (the library offers no
// hook for it; Stats::duplicates counts it).
//
// Buffered: written every 200 ms, at once when the buffer passes 4 MiB
// (so a burst cannot grow it without bound), and at destruction. A failed
// write is logged (at most once a second) and its lines are dropped.
//
// Threads: the loop thread only (its Timer runs on devsim's EventLoop; the
// write(2) blocks that thread, which is why the writes are batched).

#include <cstdint>
#include <string>

#include "boxgate/ids.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/loop/event_loop.hpp"

namespace boxgate::devsim {

// The wall clock in ms since the epoch.
std::int64_t wall_ms();

class CommandLog {
 public:
  // Opens (creates, appends to) `path`; throws ConfigError("command_log")
  // when it cannot.
  CommandLog(EventLoop& loop, const std::string& path);
  ~CommandLog();
  CommandLog(const CommandLog&) = delete;
  CommandLog& operator=(const CommandLog&) = delete;

  void record(const BoxId& box, const RequestId& id, std::int64_t t_ms, std::int64_t online_ms);
  // Writes what is buffered.
  void flush();

 private:
  std::string path_;
  int fd_ = -1;
  std::string buffer_;
  Timer flush_timer_;
  log::RateLimit warnings_;
};

}  // namespace boxgate::devsim
