// boxgate-devsim: a simulated device fleet for demos, tests and benchmarks.
//
// Each simulated box subscribes to {prefix}/{box}/request/+ and answers every
// command (after a configurable delay, or never for a share of them) on
// {prefix}/{box}/response/{req} or, in payload mode, {prefix}/{box}/response.
// With --event-rate / --state-every-ms the boxes also publish events and
// state (telemetry.hpp).
// It is a tool, not a daemon: it is never linked into the gateway or bridge.
//
// Threads: main() blocks SIGINT/SIGTERM before any other thread exists (they
// inherit the mask) and then only waits for them with sigtimedwait(), printing
// the counters every 10 s. paho's callback thread and the Scheduler's thread do
// the device work (see device_client.hpp). On SIGINT/SIGTERM every box is
// announced `offline` (presence) before the connections disconnect.

#include <pthread.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <ctime>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "boxgate/options.hpp"
#include "boxgate/topics.hpp"
#include "boxgate/version.hpp"
#include "devsim/device_client.hpp"
#include "devsim/fleet.hpp"
#include "boxgate/logging.hpp"
#include "devsim/scheduler.hpp"
#include "devsim/settings.hpp"
#include "devsim/telemetry.hpp"

using namespace boxgate;
using namespace boxgate::devsim;
using Clock = std::chrono::steady_clock;

namespace {

constexpr auto kStatsEvery = std::chrono::seconds(10);
constexpr auto kDisconnectBudget = std::chrono::milliseconds(1500);  // stop within 2 s in all

struct Snapshot {
  std::uint64_t received = 0, replied = 0, silent = 0, failed = 0, rejected = 0;
  bool operator==(const Snapshot&) const = default;
};

Snapshot snapshot(const Counters& c) {
  return {c.received.load(), c.replied.load(), c.silent.load(), c.failed.load(), c.rejected.load()};
}

// `waiting`: delayed replies not yet due (at exit: the ones dropped).
void log_stats(const char* when, const Snapshot& s, const char* waiting_name, std::int64_t waiting) {
  log::get("devsim")->info("{}: commands received={} replied={} silent={} failed={} rejected={} {}={}", when,
                         s.received, s.replied, s.silent, s.failed, s.rejected, waiting_name, waiting);
}

std::string client_id_for(const MqttSettings& mqtt, std::size_t index, std::size_t clients) {
  if (mqtt.client_id.empty()) {
    return "boxgate-devsim-" + std::to_string(::getpid()) + "-" + std::to_string(index + 1);
  }
  // Two connections with one id would keep kicking each other off the broker.
  return clients == 1 ? mqtt.client_id : mqtt.client_id + "-" + std::to_string(index + 1);
}

// Waits for SIGINT/SIGTERM until `deadline`; returns the signal, or 0 at the deadline.
int wait_signal(const sigset_t& signals, Clock::time_point deadline) {
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - Clock::now());
    if (left.count() <= 0) return 0;
    timespec ts{};
    ts.tv_sec = static_cast<time_t>(left.count() / 1000000000);
    ts.tv_nsec = static_cast<long>(left.count() % 1000000000);
    int sig = ::sigtimedwait(&signals, nullptr, &ts);
    if (sig > 0) return sig;
    if (errno == EAGAIN) return 0;
    // EINTR (another signal): wait again.
  }
}

}  // namespace

int main(int argc, char** argv) {
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

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

  const Fleet fleet(config.fleet, Topics(config.prefix));
  Counters counters;
  Scheduler scheduler;

  const std::size_t client_count = static_cast<std::size_t>(config.fleet.clients);
  const std::size_t box_count = boxes.size();
  std::atomic<std::size_t> clients_ready{0};
  // Runs on the paho callback thread, once per client per (re)connect.
  auto on_subscribed = [&](std::size_t index, bool first) {
    if (!first) {
      log::get("mqtt")->info("client {} resubscribed its boxes after a reconnect", index + 1);
    } else if (++clients_ready == client_count) {
      // Tests and scripts wait for this exact line.
      logger->info("devsim ready: {} boxes subscribed", box_count);
    }
  };

  // Box i goes to connection i mod clients, so every connection gets a fair share.
  std::vector<std::vector<BoxId>> shares(client_count);
  for (std::size_t i = 0; i < box_count; ++i) shares[i % client_count].push_back(boxes[i]);

  std::vector<std::unique_ptr<DeviceClient>> clients;
  try {
    for (std::size_t i = 0; i < client_count; ++i) {
      DeviceClient::Shared shared{fleet, config.mqtt, scheduler, counters, on_subscribed};
      clients.push_back(std::make_unique<DeviceClient>(shared, i, client_id_for(config.mqtt, i, client_count),
                                                       std::move(shares[i])));
    }
  } catch (const mqtt::exception& e) {
    std::cerr << "boxgate-devsim: mqtt_uri: " << e.what() << "\n";
    return 2;
  }
  for (auto& client : clients) client->start();
  // Box i is served by connection i mod clients (as the shares above).
  std::vector<DeviceClient*> by_index;
  for (auto& client : clients) by_index.push_back(client.get());
  Telemetry telemetry(config.fleet, Topics(config.prefix), boxes, by_index);
  // Telemetry once every connection is up (10 s at most), so the first
  // events are not refused by a client still connecting.
  for (int i = 0; i < 1000 && clients_ready.load() < client_count; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  telemetry.start();

  Snapshot last;
  int sig = 0;
  while (sig == 0) {
    sig = wait_signal(stop_signals, Clock::now() + kStatsEvery);
    Snapshot now = snapshot(counters);
    if (sig == 0 && !(now == last)) log_stats("totals", now, "delayed", counters.delayed.load());
    last = now;
    if (sig == 0 && (config.fleet.event_rate > 0 || config.fleet.state_every_ms > 0)) {
      logger->info("telemetry: events sent={} states sent={}", telemetry.events_sent(), telemetry.states_sent());
    }
  }
  telemetry.stop();

  logger->info("stopping on {}", sig == SIGINT ? "SIGINT" : "SIGTERM");
  auto deadline = Clock::now() + kDisconnectBudget;
  // Replies not yet due are dropped: a device that is switched off answers nothing.
  scheduler.stop();
  // Offline first (a clean DISCONNECT discards the will), acknowledged or
  // out of budget, then the DISCONNECTs.
  std::vector<mqtt::delivery_token_ptr> offline;
  for (auto& client : clients) {
    for (auto& token : client->announce_offline()) offline.push_back(std::move(token));
  }
  for (auto& token : offline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    try {
      token->wait_for(left);
    } catch (const mqtt::exception& e) {
      log::get("mqtt")->warn("offline status: {}", e.what());
    }
  }
  std::vector<mqtt::token_ptr> tokens;
  for (auto& client : clients) tokens.push_back(client->disconnect());
  for (auto& token : tokens) {
    if (!token) continue;
    try {
      token->wait_for(std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()));
    } catch (const mqtt::exception& e) {
      log::get("mqtt")->warn("disconnect: {}", e.what());
    }
  }
  log_stats("at exit", snapshot(counters), "dropped", counters.delayed.load());
  clients.clear();
  return 0;
}
