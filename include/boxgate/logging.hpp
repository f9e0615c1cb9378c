#pragma once
// Logging: one spdlog logger per component ("http", "redis", "mqtt", "gateway",
// "bridge", "ops", "devsim", "access"), all writing to one stderr sink. spdlog
// loggers are thread-safe and a log call never throws (spdlog routes its own
// errors to its error handler), so any thread may log. Every byte of a message
// outside printable ASCII is written escaped (\xNN, or \u00NN in JSON lines): a
// message may quote what a caller or device sent.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace boxgate::log {

// Creates the component loggers. level: spdlog level name; json: one JSON
// object per line; levels: per-component overrides, "http=warn,mqtt=debug"
// (parse_levels). Call from main() before starting threads.
void setup(const std::string& level, bool json, const std::string& levels = "");

// "name=level,name=level" -> name -> level. Names are lowercase component
// names ([a-z_]+), levels spdlog's (trace ... off). nullopt and *problem set
// when the text is not that.
std::optional<std::map<std::string, spdlog::level::level_enum>> parse_levels(const std::string& text,
                                                                            std::string* problem);

// The logger of a component; created on first use with the current settings.
std::shared_ptr<spdlog::logger> get(const std::string& component);

// Fields of every line this thread logs while the scope lives: in JSON mode
// each line carries them as members ("request_id":"...","box_id":"..."); plain
// lines are unchanged (their message says what matters). Scopes nest; an inner
// one must not repeat an outer one's key.
//   log::Fields fields{{"request_id", rid}, {"box_id", bid}};
//   log::get("gateway")->info("box {} request {}: ...", bid, rid);
class Fields {
 public:
  Fields() noexcept;
  Fields(std::initializer_list<std::pair<std::string_view, std::string_view>> strings);
  ~Fields();
  Fields(const Fields&) = delete;
  Fields& operator=(const Fields&) = delete;
  Fields& add(std::string_view key, std::string_view value);
  Fields& add(std::string_view key, std::int64_t value);

 private:
  std::size_t mark_;  // length of this thread's field text before this scope
};

// A connection's problem, logged once per change: a dependency that keeps
// refusing (AUTH refused on every retry, CONNACK "not authorized") gives one
// line, not one per retry. Loop thread of its connection only.
class ProblemLog {
 public:
  // True when `problem` differs from the last one reported (log it loudly);
  // false for a repeat (log it at debug at most).
  bool report(const std::string& problem);
  // The connection works again. The problem it had and how many repeats were
  // not logged, when there was one.
  std::optional<std::pair<std::string, int>> resolve();

 private:
  std::string last_;
  int repeats_ = 0;
};

// At most one line per second for a stream of similar warnings (a flood of
// invalid messages, a refusing broker): allow() says whether to log this one.
// One owner's thread only.
class RateLimit {
 public:
  bool allow();

 private:
  std::int64_t last_ms_ = -1000000;  // steady-clock ms of the last allowed line
};

}  // namespace boxgate::log
