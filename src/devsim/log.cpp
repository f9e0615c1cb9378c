#include "devsim/log.hpp"

#include <mutex>

#include <nlohmann/json.hpp>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace boxgate::devsim {

namespace {

// %j: the message as the body of a JSON string (quotes, backslashes, control
// bytes and invalid UTF-8 escaped or replaced), so a log line stays one object.
class JsonMessage : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
    std::string quoted = nlohmann::json(std::string(msg.payload.data(), msg.payload.size()))
                             .dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    dest.append(quoted.data() + 1, quoted.data() + quoted.size() - 1);  // without the quotes
  }
  std::unique_ptr<custom_flag_formatter> clone() const override { return std::make_unique<JsonMessage>(); }
};

struct State {
  std::mutex mutex;
  spdlog::sink_ptr sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  LogSettings settings;
};

State& state() {
  static State s;
  return s;
}

void apply(spdlog::logger& logger, const LogSettings& settings) {
  logger.set_level(spdlog::level::from_str(settings.level));
  if (settings.json) {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessage>('j').set_pattern(
        R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","component":"%n","msg":"%j"})");
    logger.set_formatter(std::move(formatter));
  } else {
    logger.set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ [%n] %v");
  }
}

}  // namespace

void setup_logging(const LogSettings& settings) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  s.settings = settings;
  // The default logger too, for code that logs before it has a component.
  auto fallback = std::make_shared<spdlog::logger>("devsim-default", s.sink);
  apply(*fallback, s.settings);
  spdlog::set_default_logger(fallback);
  spdlog::apply_all([&s](const std::shared_ptr<spdlog::logger>& l) { apply(*l, s.settings); });
}

std::shared_ptr<spdlog::logger> logger(const std::string& component) {
  State& s = state();
  std::lock_guard lock(s.mutex);
  if (auto existing = spdlog::get(component)) return existing;
  auto created = std::make_shared<spdlog::logger>(component, s.sink);
  apply(*created, s.settings);
  spdlog::register_logger(created);
  return created;
}

}  // namespace boxgate::devsim
