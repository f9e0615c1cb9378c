// boxgate-devsim: a simulated device fleet for demos, tests and benchmarks.
//
// Each simulated box subscribes to {prefix}/{box}/request/+ and answers every
// command (after a configurable delay, or never for a share of them) on
// {prefix}/{box}/response/{req} or, in payload mode, {prefix}/{box}/response.
// With --event-rate / --state-every-ms the boxes also publish events and
// state (telemetry.hpp); with --storm-boxes connections drop and come back;
// with --sleep-after-ms the whole fleet goes offline once and comes back
// (sleep.hpp); --command-log records every command a box ran (command_log.hpp).
// It is a tool, not a daemon: it is never linked into the gateway or bridge.
//
// Threads: one. The boxes ride libboxgate-device connections on one
// EventLoop (simulator.hpp); SIGINT/SIGTERM arrive as loop signal events,
// announce every box offline and disconnect; the counters are logged every
// 10 s from a loop timer.

#include <chrono>
#include <csignal>
#include <iostream>
#include <stdexcept>
#include <vector>

#include "boxgate/daemon.hpp"
#include "boxgate/logging.hpp"
#include "boxgate/options.hpp"
#include "boxgate/version.hpp"
#include "devsim/settings.hpp"
#include "devsim/simulator.hpp"

using namespace boxgate;
using namespace boxgate::devsim;

namespace {

constexpr auto kStatsEvery = std::chrono::seconds(10);
constexpr auto kStopBudget = std::chrono::milliseconds(1500);  // stop within 2 s in all

// `waiting`: delayed replies not yet due (at exit: the ones dropped).
void log_totals(const char* when, const Totals& t, const char* waiting_name, std::size_t waiting) {
  log::get("devsim")->info(
      "{}: commands received={} replied={} silent={} failed={} rejected={} duplicates={} expired={} {}={}", when,
      t.received, t.replied, t.silent, t.failed, t.rejected, t.duplicates, t.expired, waiting_name, waiting);
}

}  // namespace

int main(int argc, char** argv) {
  DevsimConfig config;
  Options options("boxgate-devsim", "a simulated device fleet that answers boxgate commands over MQTT");
  declare_devsim(options, config);
  std::vector<BoxId> boxes;
  try {
    switch (options.load(argc, argv)) {
      case Options::Outcome::help: std::cout << options.help_text(); return 0;
      case Options::Outcome::version: std::cout << "boxgate-devsim " << kVersion << "\n"; return 0;
      case Options::Outcome::run: break;
    }
    boxes = make_box_ids(config.fleet);
  } catch (const ConfigError& e) {
    std::cerr << "boxgate-devsim: " << e.key() << ": " << e.what() << "\n";
    return 2;
  }

  log::setup(config.log.level, config.log.json, config.log.levels);
  auto logger = log::get("devsim");
  logger->info("boxgate-devsim {} starting: {}", kVersion, options.describe());

  EventLoop loop;
  std::unique_ptr<Simulator> fleet;
  try {
    fleet = std::make_unique<Simulator>(loop, config, std::move(boxes));
  } catch (const std::invalid_argument& e) {
    std::cerr << "boxgate-devsim: mqtt_uri: " << e.what() << "\n";
    return 2;
  } catch (const ConfigError& e) {
    std::cerr << "boxgate-devsim: " << e.key() << ": " << e.what() << "\n";
    return 2;
  }

  Totals last;
  Timer stats(loop, [&] {
    Totals now = fleet->totals();
    if (!(now == last)) log_totals("totals", now, "delayed", fleet->delayed());
    if (config.fleet.event_rate > 0 || config.fleet.state_every_ms > 0) {
      logger->info("telemetry: events sent={} states sent={}", fleet->telemetry().events_sent(),
                   fleet->telemetry().states_sent());
    }
    last = now;
  });
  stats.start(kStatsEvery, /*repeat=*/true);

  auto deadline = std::chrono::steady_clock::now();
  std::size_t dropped = 0;
  Timer until_stopped(loop, [&] {
    if (fleet->stopped() || std::chrono::steady_clock::now() >= deadline) loop.stop();
  });
  ShutdownSignals signals(loop, [&] {
    if (until_stopped.pending()) return;
    logger->info("stopping");
    stats.cancel();
    dropped = fleet->delayed();
    deadline = std::chrono::steady_clock::now() + kStopBudget;
    fleet->stop(kStopBudget);
    until_stopped.start(std::chrono::milliseconds(5), /*repeat=*/true);
  });

  fleet->start();
  loop.run();
  log_totals("at exit", fleet->totals(), "dropped", dropped);
  return 0;
}
