#pragma once
// Logging of boxgate-devsim: loggers "devsim" and "mqtt" writing to stderr,
// plain text or one JSON object per line (log_json).
//
// Why here and not in the core: the core library has no logging module yet;
// when it gets one (boxgate::log), these two functions become thin wrappers.
//
// Threads: setup() once from main() before any thread starts; spdlog loggers
// are thread-safe and never throw from a log call, so any thread may log.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

#include "boxgate/config.hpp"

namespace boxgate::devsim {

void setup_logging(const LogSettings& settings);

// The logger of a component ("devsim", "mqtt"); created on first use.
std::shared_ptr<spdlog::logger> logger(const std::string& component);

}  // namespace boxgate::devsim
