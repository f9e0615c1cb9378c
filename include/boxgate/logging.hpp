#pragma once
// Logging: one spdlog logger per component ("http", "redis", "mqtt", "gateway",
// "bridge", "ops", "devsim"), all writing to one stderr sink. spdlog loggers are
// thread-safe and a log call never throws (spdlog routes its own errors to its
// error handler), so any thread may log. Every byte of a message outside
// printable ASCII is written escaped (\xNN, or \u00NN in JSON lines): a
// message may quote what a caller or device sent.

#include <memory>
#include <string>

#include <spdlog/spdlog.h>

namespace boxgate::log {

// Creates the component loggers. level: spdlog level name; json: one JSON
// object per line. Call once from main() before starting threads.
void setup(const std::string& level, bool json);

// The logger of a component; created on first use with the current settings.
std::shared_ptr<spdlog::logger> get(const std::string& component);

}  // namespace boxgate::log
