#pragma once
// The configuration of boxgate-devsim, the simulated device fleet.
//
// DevsimConfig holds the shared slices (prefix, MQTT, log) plus FleetSettings,
// the knobs of the simulated devices. declare_devsim() registers every key with
// Options, so the JSON file, BOXGATE_* environment and --flags all reach the
// same fields, and its checks reject a bad value with a ConfigError naming the
// key (main() turns that into exit status 2). Single-threaded: main() only.

#include <cstdint>
#include <string>
#include <vector>

#include "boxgate/config.hpp"
#include "boxgate/ids.hpp"
#include "boxgate/options.hpp"

namespace boxgate::devsim {

// How a device addresses its reply (see the MQTT section of the contract).
enum class ReplyMode {
  topic,    // {prefix}/{box}/response/{req}
  payload,  // {prefix}/{box}/response, the id only in the payload's "id"
};

struct FleetSettings {
  std::int64_t boxes = 100;               // box-1..box-N when box_list is empty
  std::vector<std::string> box_list;      // explicit ids; overrides boxes
  std::int64_t delay_ms = 0;              // reply delay of every box
  std::int64_t jitter_ms = 0;             // uniform extra delay 0..jitter_ms
  std::int64_t silent_percent = 0;        // share of commands never answered
  std::vector<std::string> slow_boxes;    // these use slow_delay_ms instead of delay_ms
  std::int64_t slow_delay_ms = 5000;
  std::string reply_mode = "topic";       // "topic" or "payload"
  std::int64_t clients = 1;               // MQTT connections the boxes are spread over
  // Presence (docs/contract.md): publish `online` retained on
  // {prefix}/{box}/status at every (re)connect and `offline` at a clean stop;
  // a connection that serves exactly one box (clients = number of boxes)
  // also leaves `offline` as its MQTT will, so an abrupt loss shows too.
  bool presence = true;
  // Telemetry (telemetry.hpp): events on {prefix}/{box}/event/telemetry at
  // this many per second over the whole fleet (0: none), each event_bytes
  // long, and every box's state every state_every_ms (0: none).
  std::int64_t event_rate = 0;
  std::int64_t event_bytes = 64;
  std::int64_t state_every_ms = 0;
  // Sessions (docs/devices.md): persistent by default, as the device library,
  // so commands sent while a box is away reach it when it is back. Client ids
  // are then stable: the box id for a one-box connection, else
  // devsim-<first box>-<n boxes> (or mqtt_client_id-<i> when given).
  bool persistent = true;
  std::int64_t session_expiry_s = 3600;
  // Reconnect storm: every storm_every_ms (from the moment the whole fleet
  // is first up), connections carrying at least
  // storm_boxes boxes drop without DISCONNECT (their wills fire) and each
  // comes back at a random moment within storm_window_ms. 0: off.
  std::int64_t storm_boxes = 0;
  std::int64_t storm_every_ms = 10000;
  std::int64_t storm_window_ms = 1000;
  // Sleep (sleep.hpp): sleep_after_ms after the whole fleet is first up
  // (0: never), every connection announces its boxes offline and
  // DISCONNECTs; once all are gone they stay away sleep_for_ms, then each
  // comes back at a random moment within wake_window_ms. Once.
  std::int64_t sleep_after_ms = 0;
  std::int64_t sleep_for_ms = 10000;
  std::int64_t wake_window_ms = 1000;
  // Command log (command_log.hpp): one JSON line per command a box ran, to
  // this file (appended; empty: none).
  std::string command_log;
};

struct DevsimConfig {
  std::string prefix = "dev";
  MqttSettings mqtt;
  LogSettings log;
  FleetSettings fleet;
};

// Registers the devsim keys and their checks (including those of the shared
// slices declared through declare_mqtt/declare_log/declare_prefix).
void declare_devsim(Options& options, DevsimConfig& config);

// The fleet's box ids: box_list when given, else box-1..box-N. Throws
// ConfigError("box_list") on an id that does not match the contract's pattern
// or appears twice.
std::vector<BoxId> make_box_ids(const FleetSettings& fleet);

// Parses "topic" / "payload"; throws ConfigError("reply_mode") otherwise.
ReplyMode parse_reply_mode(const std::string& text);

}  // namespace boxgate::devsim
