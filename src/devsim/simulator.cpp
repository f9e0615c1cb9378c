#include "devsim/simulator.hpp"

#include <algorithm>
#include <numeric>

#include "boxgate/logging.hpp"

namespace boxgate::devsim {

namespace {

device::Settings device_settings(const DevsimConfig& c) {
  device::Settings s;
  s.uri = c.mqtt.uri;
  s.username = c.mqtt.username;
  s.password = c.mqtt.password;
  s.ca_file = c.mqtt.ca_file;
  s.cert_file = c.mqtt.cert_file;
  s.key_file = c.mqtt.key_file;
  s.version = static_cast<int>(c.mqtt.version);
  s.prefix = c.prefix;
  s.keepalive_s = static_cast<int>(c.mqtt.keepalive_s);
  s.backoff_max_ms = c.mqtt.backoff_max_ms;
  s.persistent = c.fleet.persistent;
  s.session_expiry_s = static_cast<std::uint32_t>(c.fleet.session_expiry_s);
  s.presence = c.fleet.presence;
  s.id_in_topic = parse_reply_mode(c.fleet.reply_mode) == ReplyMode::topic;
  // A load generator answers as fast as commands come: a deep outbox.
  s.max_outbox_messages = 100000;
  s.max_outbox_bytes = 256u << 20;
  return s;
}

}  // namespace

Simulator::Simulator(EventLoop& loop, const DevsimConfig& config, std::vector<BoxId> boxes)
    : loop_(loop),
      config_(config),
      fleet_(config.fleet, Topics(config.prefix)),
      rng_(std::random_device{}()),
      delay_timer_(loop, [this] { release_due(); }),
      storm_timer_(loop, [this] { storm(); }) {
  box_count_ = boxes.size();
  const auto clients = static_cast<std::size_t>(config.fleet.clients);
  // Box i goes to connection i mod clients, so every connection gets a fair share.
  std::vector<std::vector<BoxId>> shares(clients);
  for (std::size_t i = 0; i < boxes.size(); ++i) shares[i % clients].push_back(boxes[i]);
  std::vector<device::Device*> by_index;
  for (std::size_t i = 0; i < clients; ++i) {
    device::Settings s = device_settings(config);
    s.client_id = client_id(i, shares[i]);
    s.boxes = std::move(shares[i]);
    auto device = std::make_unique<device::Device>(loop, std::move(s));
    device->on_command([this, i](const device::Command& c, device::Reply r) { on_command(i, c, std::move(r)); });
    device->on_connection([this, i](bool up) { on_connection(i, up); });
    by_index.push_back(device.get());
    devices_.push_back(std::move(device));
  }
  ever_up_.assign(clients, false);
  online_ms_.assign(clients, 0);
  sleep_ = std::make_unique<SleepCycle>(loop, config.fleet, by_index, rng_());
  telemetry_ = std::make_unique<Telemetry>(loop, config.fleet, std::move(boxes), std::move(by_index));
  if (!config.fleet.command_log.empty()) command_log_ = std::make_unique<CommandLog>(loop, config.fleet.command_log);
}

std::string Simulator::client_id(std::size_t index, const std::vector<BoxId>& boxes) const {
  const std::string& given = config_.mqtt.client_id;
  if (!given.empty()) return config_.fleet.clients == 1 ? given : given + "-" + std::to_string(index + 1);
  // Stable ids, so a persistent session is found again after a restart; two
  // connections with one id would keep kicking each other off the broker.
  if (boxes.size() == 1) return boxes.front().str();
  return "devsim-" + boxes.front().str() + "-" + std::to_string(boxes.size());
}

void Simulator::start() {
  for (auto& device : devices_) device->start();
}

void Simulator::on_connection(std::size_t index, bool up) {
  if (!up) return;
  online_ms_[index] = wall_ms();  // the device announced its boxes online just before
  sleep_->connection_up(index);
  if (ever_up_[index]) {
    log::get("mqtt")->info("client {} resubscribed its boxes after a reconnect", index + 1);
    return;
  }
  ever_up_[index] = true;
  if (++ready_ == devices_.size()) {
    // Tests and scripts wait for this exact line.
    log::get("devsim")->info("devsim ready: {} boxes subscribed", box_count_);
    telemetry_->start();
    // Storms start once the fleet is up: the first one hits a settled fleet.
    if (config_.fleet.storm_boxes > 0) {
      storm_timer_.start(std::chrono::milliseconds(config_.fleet.storm_every_ms), /*repeat=*/true);
    }
    sleep_->arm();
  }
}

void Simulator::on_command(std::size_t index, const device::Command& command, device::Reply reply) {
  ++received_;
  if (command_log_) command_log_->record(command.box, command.id, wall_ms(), online_ms_[index]);
  if (fleet_.draw_silent(rng_)) {
    ++silent_;  // the Reply is dropped unanswered: the caller times out
    return;
  }
  std::string payload = build_reply(command.box, command.id, command.payload);
  auto delay = fleet_.draw_delay(command.box, rng_);
  if (delay.count() == 0) {
    reply.raw(std::move(payload));
    return;
  }
  auto due = std::chrono::steady_clock::now() + delay;
  bool earliest = delayed_.empty() || due < delayed_.begin()->first;
  delayed_.emplace(due, std::make_pair(std::move(reply), std::move(payload)));
  if (earliest) delay_timer_.start(delay);
}

void Simulator::release_due() {
  auto now = std::chrono::steady_clock::now() + kTimerSlack;
  while (!delayed_.empty() && delayed_.begin()->first <= now) {
    auto node = delayed_.extract(delayed_.begin());
    node.mapped().first.raw(std::move(node.mapped().second));
  }
  if (!delayed_.empty()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(delayed_.begin()->first -
                                                                      std::chrono::steady_clock::now());
    delay_timer_.start(std::max(left, std::chrono::milliseconds(0)));
  }
}

void Simulator::storm() {
  // Connections at random until they carry storm_boxes boxes.
  std::vector<std::size_t> order(devices_.size());
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), rng_);
  const auto window = config_.fleet.storm_window_ms;
  std::uniform_int_distribution<std::int64_t> back(0, window);
  std::size_t boxes = 0, connections = 0;
  for (std::size_t i : order) {
    if (boxes >= static_cast<std::size_t>(config_.fleet.storm_boxes)) break;
    devices_[i]->interrupt(std::chrono::milliseconds(back(rng_)));
    boxes += devices_[i]->boxes().size();
    ++connections;
  }
  log::get("devsim")->info("storm: {} connections ({} boxes) dropped, back within {} ms", connections, boxes, window);
}

void Simulator::stop(std::chrono::milliseconds timeout) {
  storm_timer_.cancel();
  sleep_->cancel();
  telemetry_->stop();
  delay_timer_.cancel();
  delayed_.clear();
  for (auto& device : devices_) device->stop(timeout);
}

bool Simulator::stopped() const {
  return std::all_of(devices_.begin(), devices_.end(), [](const auto& d) { return d->stopped(); });
}

Totals Simulator::totals() const {
  Totals t;
  t.received = received_;
  t.silent = silent_;
  for (const auto& device : devices_) {
    const device::Stats& s = device->stats();
    t.replied += s.replies;
    t.failed += s.replies_dropped;
    t.rejected += s.rejected;
    t.duplicates += s.duplicates;
    t.expired += s.expired;
  }
  return t;
}

}  // namespace boxgate::devsim
