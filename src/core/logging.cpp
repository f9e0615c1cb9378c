#include "boxgate/logging.hpp"

#include <mutex>

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

// %j: the message, escaped for a JSON string (bytes outside printable ASCII
// as \u00NN, so the line stays valid JSON whatever the bytes).
class JsonEscapedMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    for (char c : msg.payload) {
      auto b = static_cast<unsigned char>(c);
      switch (c) {
        case '"': dest.append(std::string_view("\\\"")); break;
        case '\\': dest.append(std::string_view("\\\\")); break;
        case '\n': dest.append(std::string_view("\\n")); break;
        case '\t': dest.append(std::string_view("\\t")); break;
        default:
          if (!printable(b)) {
            char esc[6] = {'\\', 'u', '0', '0', kHex[b >> 4], kHex[b & 0xf]};
            dest.append(esc, esc + 6);
          } else {
            dest.push_back(c);
          }
      }
    }
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
};

State& state() {
  static State s;
  return s;
}

void apply(spdlog::logger& logger, const State& s) {
  logger.set_level(s.level);
  if (s.json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonEscapedMessage>('j').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","component":"%n","msg":"%j"})");
    logger.set_formatter(std::move(formatter));
  } else {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<EscapedMessage>('q').set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %q");
    logger.set_formatter(std::move(formatter));
  }
}

}  // namespace

void setup(const std::string& level, bool json) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.level = spdlog::level::from_str(level);
  s.json = json;
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

}  // namespace boxgate::log
