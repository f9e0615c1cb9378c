#include "devsim/settings.hpp"

#include <unordered_set>

namespace boxgate::devsim {

namespace {
constexpr std::int64_t kMaxDelayMs = 3600000;  // an hour: longer is a typo, not a test
constexpr std::int64_t kMaxBoxes = 1000000;
constexpr std::int64_t kMaxClients = 1000;
}  // namespace

void declare_devsim(Options& o, DevsimConfig& c) {
  declare_prefix(o, c.prefix);
  declare_mqtt(o, c.mqtt);
  declare_log(o, c.log);

  FleetSettings& f = c.fleet;
  o.add("boxes", &f.boxes, 1, kMaxBoxes, "number of simulated boxes, named box-1..box-N");
  o.add("box_list", &f.box_list, "explicit box ids (overrides boxes)");
  o.add("delay_ms", &f.delay_ms, 0, kMaxDelayMs, "reply delay of every box");
  o.add("jitter_ms", &f.jitter_ms, 0, kMaxDelayMs, "uniform random extra delay 0..jitter_ms");
  o.add("silent_percent", &f.silent_percent, 0, 100,
        "share of commands (chosen at random) that are never answered");
  o.add("slow_boxes", &f.slow_boxes, "box ids that reply after slow_delay_ms instead of delay_ms");
  o.add("slow_delay_ms", &f.slow_delay_ms, 0, kMaxDelayMs, "reply delay of the slow boxes");
  o.add("reply_mode", &f.reply_mode,
        "topic: reply on {prefix}/{box}/response/{req}; payload: on {prefix}/{box}/response");
  o.add("clients", &f.clients, 1, kMaxClients,
        "MQTT connections the boxes are spread over (as many as boxes: one connection, and one will, per box)");
  o.add("presence", &f.presence,
        "publish retained online/offline on {prefix}/{box}/status; offline is the will of one-box connections");
  o.add("event_rate", &f.event_rate, 0, 1000000, "events per second over the fleet, round robin (0: none)");
  o.add("event_bytes", &f.event_bytes, 1, 16 << 20, "size of each event payload (JSON, padded)");
  o.add("state_every_ms", &f.state_every_ms, 0, 86400000, "each box publishes its state this often (0: never)");
  o.add("persistent", &f.persistent,
        "persistent MQTT sessions (stable client ids): commands sent while a box is away arrive when it is back");
  o.add("session_expiry_s", &f.session_expiry_s, 0, 4294967295LL, "MQTT 5: how long the broker keeps a session");
  o.add("storm_boxes", &f.storm_boxes, 0, kMaxBoxes,
        "reconnect storm: connections carrying this many boxes drop at once every storm_every_ms (0: off)");
  o.add("storm_every_ms", &f.storm_every_ms, 100, 86400000, "reconnect storm: how often");
  o.add("storm_window_ms", &f.storm_window_ms, 0, 3600000,
        "reconnect storm: each dropped connection comes back at a random moment within this window");
  o.add("sleep_after_ms", &f.sleep_after_ms, 0, 86400000,
        "sleep: this long after the fleet is first up, every box goes offline and its connection disconnects (0: off)");
  o.add("sleep_for_ms", &f.sleep_for_ms, 0, 86400000, "sleep: how long the fleet stays away once all are offline");
  o.add("wake_window_ms", &f.wake_window_ms, 0, 3600000,
        "sleep: each connection comes back at a random moment within this window");
  o.add("command_log", &f.command_log,
        "append one JSON line per command a box runs to this file: box, id, t_ms, online_ms (empty: none)");

  o.check([&f] {
    parse_reply_mode(f.reply_mode);
    auto boxes = make_box_ids(f);
    for (const auto& slow : f.slow_boxes) {
      if (!is_valid_id(slow)) throw ConfigError("slow_boxes", "'" + slow + "' is not a valid box id");
    }
    if (static_cast<std::size_t>(f.clients) > boxes.size()) {
      throw ConfigError("clients", std::to_string(f.clients) + " connections for " +
                                       std::to_string(boxes.size()) + " boxes: at most one per box");
    }
  });
}

std::vector<BoxId> make_box_ids(const FleetSettings& fleet) {
  std::vector<BoxId> out;
  if (fleet.box_list.empty()) {
    out.reserve(static_cast<std::size_t>(fleet.boxes));
    for (std::int64_t i = 1; i <= fleet.boxes; ++i) {
      // "box-<n>" always matches the id pattern.
      out.push_back(*BoxId::parse("box-" + std::to_string(i)));
    }
    return out;
  }
  std::unordered_set<std::string> seen;
  out.reserve(fleet.box_list.size());
  for (const auto& text : fleet.box_list) {
    auto id = BoxId::parse(text);
    if (!id) throw ConfigError("box_list", "'" + text + "' is not a valid box id");
    // A duplicate would subscribe twice and answer each command twice.
    if (!seen.insert(text).second) throw ConfigError("box_list", "'" + text + "' is listed twice");
    out.push_back(std::move(*id));
  }
  return out;
}

ReplyMode parse_reply_mode(const std::string& text) {
  if (text == "topic") return ReplyMode::topic;
  if (text == "payload") return ReplyMode::payload;
  throw ConfigError("reply_mode", "'" + text + "' is not topic or payload");
}

}  // namespace boxgate::devsim
