#include "boxgate/logging.hpp"

#include <chrono>

#include <algorithm>
#include <cctype>
#include <mutex>
#include <sstream>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace boxgate::log {

namespace {

constexpr char kHex[] = "0123456789abcdef";

// Log lines carry bytes callers chose (a URI, a topic, a header): a byte
// outside printable ASCII is never written as is, so no caller can forge a
// line (CR/LF), move the terminal (ESC) or break a JSON line (invalid UTF-8).
bool printable(unsigned char c) { return c >= 0x20 && c < 0x7f; }

// %q: the message, every byte outside printable ASCII as \xNN.
class EscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      auto b = static_cast<unsigned char>(c);
      if (printable(b)) {
        dest.push_back(c);
      } else {
        char esc[4] = {'\\', 'x', kHex[b >> 4], kHex[b & 0xf]};
        dest.append(esc, esc + 4);
      }
    }
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<EscapedMessage>(); }
};

// Appends `text` escaped for a JSON string (bytes outside printable ASCII as
// \u00NN, so the line stays valid JSON whatever the bytes).
template <class Buffer>
void append_json_escaped(std::string_view text, Buffer& dest) {
  for (char c : text) {
    auto b = static_cast<unsigned char>(c);
    switch (c) {
      case '"': dest.append(std::string_view("\\\"")); break;
      case '\\': dest.append(std::string_view("\\\\")); break;
      case '\n': dest.append(std::string_view("\\n")); break;
      case '\t': dest.append(std::string_view("\\t")); break;
      default:
        if (!printable(b)) {
          char esc[6] = {'\\', 'u', '0', '0', kHex[b >> 4], kHex[b & 0xf]};
          dest.append(std::string_view(esc, 6));
        } else {
          dest.push_back(c);
        }
    }
  }
}

// This thread's fields (log::Fields), rendered: ,"key":"value",...
thread_local std::string t_fields;

// %J: the fields of the scopes open on the logging thread.
class JsonFields : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg&, const std::tm&, spdlog::memory_buf_t& dest) override {
    dest.append(t_fields.data(), t_fields.data() + t_fields.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonFields>(); }
};

// %j: the message, escaped for a JSON string (bytes outside printable ASCII
// as \u00NN, so the line stays valid JSON whatever the bytes).
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    append_json_escaped(std::string_view(msg.payload.data(), msg.payload.size()), dest);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonEscapedMessage>();
  }
};

struct State {
  std::mutex mutex;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  spdlog::level::level_enum level = spdlog::level::info;
  bool json = false;
  std::map<std::string, spdlog::level::level_enum> levels;  // per component
};

State& state() {
  static State s;
  return s;
}

void apply(spdlog::logger& logger, const State& s) {
  auto own = s.levels.find(logger.name());
  logger.set_level(own != s.levels.end() ? own->second : s.level);
  if (s.json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonEscapedMessage>('j').add_flag<JsonFields>('J').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","component":"%n","msg":"%j"%J})");
    logger.set_formatter(std::move(formatter));
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<EscapedMessage>('q').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %q");
    logger.set_formatter(std::move(formatter));
  }
}

}  // namespace

std::optional<std::map<std::string, spdlog::level::level_enum>> parse_levels(const std::string& text,
                                                                            std::string* problem) {
  std::map<std::string, spdlog::level::level_enum> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (item.empty()) continue;
    auto eq = item.find('=');
    std::string name = item.substr(0, eq);
    std::string level = eq == std::string::npos ? "" : item.substr(eq + 1);
    bool name_ok = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
      return (c >= 'a' && c <= 'z') || c == '_';
    });
    if (!name_ok || eq == std::string::npos) {
      if (problem) *problem = "'" + item + "' is not component=level";
      return std::nullopt;
    }
    auto parsed = spdlog::level::from_str(level);
    // from_str answers off for any unknown name: only "off" itself means off.
    if (parsed == spdlog::level::off && level != "off") {
      if (problem) *problem = "'" + level + "' (for " + name + ") is not a level";
      return std::nullopt;
    }
    out[name] = parsed;
  }
  return out;
}

void setup(const std::string& level, bool json, const std::string& levels) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.level = spdlog::level::from_str(level);
  s.json = json;
  s.levels = parse_levels(levels, nullptr).value_or(std::map<std::string, spdlog::level::level_enum>{});
  spdlog::apply_all([&s](const std::shared_ptr<spdlog::logger>& logger) { apply(*logger, s); });
}

std::shared_ptr<spdlog::logger> get(const std::string& component) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (auto existing = spdlog::get(component)) return existing;
  auto logger = std::make_shared<spdlog::logger>(component, s.sink);
  apply(*logger, s);
  spdlog::register_logger(logger);
  return logger;
}

Fields::Fields() noexcept : mark_(t_fields.size()) {}

Fields::Fields(std::initializer_list<std::pair<std::string_view, std::string_view>> strings)
    : mark_(t_fields.size()) {
  for (const auto& [key, value] : strings) add(key, value);
}

Fields::~Fields() { t_fields.resize(mark_); }

Fields& Fields::add(std::string_view key, std::string_view value) {
  t_fields += ",\"";
  append_json_escaped(key, t_fields);
  t_fields += "\":\"";
  append_json_escaped(value, t_fields);
  t_fields += '"';
  return *this;
}

Fields& Fields::add(std::string_view key, std::int64_t value) {
  t_fields += ",\"";
  append_json_escaped(key, t_fields);
  t_fields += "\":";
  t_fields += std::to_string(value);
  return *this;
}

bool RateLimit::allow() {
  auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                 std::chrono::steady_clock::now().time_since_epoch())
                 .count();
  if (now - last_ms_ < 1000) return false;
  last_ms_ = now;
  return true;
}

bool ProblemLog::report(const std::string& problem) {
  if (problem == last_) {
    ++repeats_;
    return false;
  }
  last_ = problem;
  repeats_ = 0;
  return true;
}

std::optional<std::pair<std::string, int>> ProblemLog::resolve() {
  if (last_.empty()) return std::nullopt;
  std::pair<std::string, int> out{std::move(last_), repeats_};
  last_.clear();
  repeats_ = 0;
  return out;
}

}  // namespace boxgate::log
