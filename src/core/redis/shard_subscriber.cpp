#include "shard_subscriber.hpp"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <cstring>

#include "boxgate/logging.hpp"
#include "boxgate/redis/commands.hpp"

namespace boxgate::redis {

struct ShardSubscriber::Channel {
  struct Member {
    Subscriber::Listener* listener;
    bool confirmed = false;  // had its on_subscribed()
  };
  std::string name;
  std::uint16_t slot = 0;
  std::vector<Member> members;      // empty once the last one left: being released
  std::optional<NodeAddress> node;  // where its SSUBSCRIBE went
  bool live = false;                // confirmed on `node`
  bool unsubscribe_sent = false;

  Member* find(Subscriber::Listener* l) {
    auto it = std::find_if(members.begin(), members.end(), [l](const Member& m) { return m.listener == l; });
    return it == members.end() ? nullptr : &*it;
  }
};

namespace {
std::string_view text_of(const redisReply* r) {
  return r && (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR)
             ? std::string_view(r->str, r->len)
             : std::string_view();
}
}  // namespace

ShardSubscriber::ShardSubscriber(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency)
    : loop_(loop),
      settings_(settings),
      dependency_(dependency),
      pool_(loop, settings, "redis cluster map connection",
            {[this](const NodeAddress&) { topology_.node_up(); }, [](const NodeAddress&) {}}),
      topology_(loop, pool_, seeds_of(settings), [this](const SlotMap& map) { map_changed(map); }),
      retry_timer_(loop, [this] { place_all(); }),
      bury_timer_(loop, [this] { bury_closed_links(); }) {}

ShardSubscriber::~ShardSubscriber() { stop(); }

void ShardSubscriber::start() {
  stopped_ = false;
  topology_.start();
  retry_timer_.start(kRetryEvery, true);
}

void ShardSubscriber::stop() {
  stopped_ = true;
  retry_timer_.cancel();
  bury_timer_.cancel();
  topology_.stop();
  pool_.stop();
  for (auto& [key, link] : links_) link.link.reset();  // destructor: no events
  links_.clear();
  graveyard_.clear();
  channels_.clear();
  dependency_.set_up(false);
}

void ShardSubscriber::force_reconnect(const char* why) {
  for (auto& [key, link] : links_) link.link->close(why);
}

Subscriber::Result ShardSubscriber::subscribe(const std::string& name, Subscriber::Listener* listener) {
  if (!up()) return Subscriber::Result::unavailable;
  if (auto it = channels_.find(name); it != channels_.end()) {
    Channel& channel = *it->second;
    if (channel.members.empty() || channel.find(listener)) return Subscriber::Result::busy;
    channel.members.push_back({listener, channel.live});
    if (channel.live) listener->on_subscribed();  // nothing to wait for
    return Subscriber::Result::ok;
  }
  auto channel = std::make_unique<Channel>();
  channel->name = name;
  channel->slot = key_slot(name);
  channel->members.push_back({listener});
  Channel& placed = *channel;
  channels_.emplace(name, std::move(channel));
  place(placed);  // or the retry timer places it once its master's link is up
  return Subscriber::Result::ok;
}

void ShardSubscriber::unsubscribe(const std::string& name, Subscriber::Listener* listener) {
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  Channel& channel = *it->second;
  auto& members = channel.members;
  members.erase(std::remove_if(members.begin(), members.end(),
                               [listener](const Channel::Member& m) { return m.listener == listener; }),
                members.end());
  if (!members.empty()) return;
  if (!channel.node) return release(name);
  send_unsubscribe(channel);
}

void ShardSubscriber::send_unsubscribe(Channel& channel) {
  Link* link = channel.node ? link_to(*channel.node) : nullptr;
  if (!link || !link->link->up()) return release(channel.name);
  // The record stays until the node's sunsubscribe: a new subscribe meanwhile is busy.
  link->link->send(resp_command({"SUNSUBSCRIBE", channel.name}));
  link->expect.push_back({false, channel.name});
  channel.unsubscribe_sent = true;
}

void ShardSubscriber::release(const std::string& name) { channels_.erase(name); }

ShardSubscriber::Link* ShardSubscriber::link_to(const NodeAddress& node) {
  std::string key = node.text();
  if (auto it = links_.find(key); it != links_.end()) return &it->second;
  if (stopped_) return nullptr;
  Link& link = links_[key];
  link.link = std::make_unique<ShardLink>(
      loop_, settings_, node,
      ShardLink::Events{[this, key] { link_up(key); }, [this, key] { link_down(key); },
                        [this, key](const redisReply* reply) { on_reply(key, reply); }});
  link.link->start();  // may fail at once: link_down then moved it to the graveyard
  auto again = links_.find(key);
  return again == links_.end() ? nullptr : &again->second;
}

// SSUBSCRIBE on the slot's master, if its link is up. false: try later.
bool ShardSubscriber::place(Channel& channel) {
  if (channel.node || channel.members.empty()) return true;
  const SlotMap* map = topology_.map();
  const NodeAddress* master = map ? map->master_of(channel.slot) : nullptr;
  if (!master) return false;
  Link* link = link_to(*master);
  if (!link || !link->link->up()) return false;
  link->link->send(resp_command({"SSUBSCRIBE", channel.name}));
  link->expect.push_back({true, channel.name});
  channel.node = *master;
  channel.live = false;
  return true;
}

void ShardSubscriber::place_all() {
  // Links to masters that are down are tried again here too (one attempt
  // per node at a time), so readiness comes back without a map change.
  if (const SlotMap* map = topology_.map()) {
    for (const NodeAddress& master : map->masters()) link_to(master);
  }
  std::size_t waiting = 0;
  for (auto& [name, channel] : channels_) {
    if (!place(*channel)) ++waiting;
  }
  if (waiting) topology_.refresh_soon();  // a master we cannot reach: maybe the map is stale
}

void ShardSubscriber::link_up(const std::string&) {
  place_all();
  update_state();
}

void ShardSubscriber::link_down(const std::string& key) {
  auto it = links_.find(key);
  if (it == links_.end()) return;
  NodeAddress node = it->second.link->node();
  graveyard_.push_back(std::move(it->second.link));
  links_.erase(it);
  if (!bury_timer_.pending()) bury_timer_.start(std::chrono::milliseconds(0));
  // Its channels go back to "unplaced"; released ones are done with.
  std::vector<std::string> gone;
  for (auto& [name, channel] : channels_) {
    if (channel->node != node) continue;
    channel->node.reset();
    channel->live = false;
    if (channel->members.empty()) gone.push_back(name);
  }
  for (const std::string& name : gone) release(name);
  topology_.refresh_soon();
  update_state();
}

void ShardSubscriber::bury_closed_links() { graveyard_.clear(); }

void ShardSubscriber::on_reply(const std::string& key, const redisReply* reply) {
  if (reply->type == REDIS_REPLY_ERROR) return refused(key, text_of(reply));
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) return;
  std::string_view kind = text_of(reply->element[0]);
  std::string name(text_of(reply->element[1]));
  if (kind == "smessage") return message(name, text_of(reply->element[2]));
  if (kind == "ssubscribe") return confirmed(key, name);
  if (kind == "sunsubscribe") return sunsubscribed(key, name);
}

void ShardSubscriber::message(const std::string& name, std::string_view payload) {
  auto it = channels_.find(name);
  if (it == channels_.end() || it->second->members.empty()) {
    if (orphans_) orphans_->inc();
    return;
  }
  Channel* channel = it->second.get();
  std::vector<Channel::Member> members = channel->members;
  for (const Channel::Member& m : members) {
    auto now = channels_.find(name);
    if (now == channels_.end() || now->second.get() != channel) return;
    if (channel->find(m.listener)) m.listener->on_message(payload);
  }
}

void ShardSubscriber::confirmed(const std::string& key, const std::string& name) {
  if (auto link = links_.find(key); link != links_.end()) {
    auto& expect = link->second.expect;
    auto due = std::find_if(expect.begin(), expect.end(), [&](const auto& e) { return e.subscribe && e.channel == name; });
    if (due != expect.end()) expect.erase(due);
  }
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  Channel& channel = *it->second;
  if (!channel.node || channel.node->text() != key) return;  // moved on meanwhile
  channel.live = true;
  if (channel.members.empty()) {
    if (!channel.unsubscribe_sent) send_unsubscribe(channel);
    return;
  }
  notify(channel);
}

void ShardSubscriber::notify(Channel& channel) {
  // A listener may leave (or the channel be released) from inside its call.
  Channel* record = &channel;
  std::string name = channel.name;
  std::vector<Channel::Member> members = channel.members;
  for (const Channel::Member& m : members) {
    auto it = channels_.find(name);
    if (it == channels_.end() || it->second.get() != record) return;
    Channel::Member* now = record->find(m.listener);
    if (!now) continue;
    if (now->confirmed) {
      now->listener->on_resubscribed();
    } else {
      now->confirmed = true;
      now->listener->on_subscribed();
    }
  }
}

void ShardSubscriber::sunsubscribed(const std::string& key, const std::string& name) {
  bool asked = false;
  if (auto link = links_.find(key); link != links_.end()) {
    auto& expect = link->second.expect;
    auto due = std::find_if(expect.begin(), expect.end(), [&](const auto& e) { return !e.subscribe && e.channel == name; });
    asked = due != expect.end();
    if (asked) expect.erase(due);
  }
  auto it = channels_.find(name);
  if (it == channels_.end()) return;
  Channel& channel = *it->second;
  if (!channel.node || channel.node->text() != key) return;  // an old node letting go
  if (channel.members.empty()) return release(name);
  if (asked) return;
  // Unsolicited: the slot left this node (a migration or failover). The
  // channel is subscribed again wherever the map now says.
  log::get("redis")->info("{}: {} dropped it (slot {} moved); subscribing again", name, key, channel.slot);
  channel.node.reset();
  channel.live = false;
  topology_.refresh_soon();
}

void ShardSubscriber::refused(const std::string& key, std::string_view error) {
  auto link = links_.find(key);
  if (link == links_.end() || link->second.expect.empty()) return;
  auto& expect = link->second.expect;
  auto front = expect.front();
  expect.pop_front();
  auto it = channels_.find(front.channel);
  if (it == channels_.end()) return;
  Channel& channel = *it->second;
  if (!channel.node || channel.node->text() != key) return;
  if (!front.subscribe || channel.members.empty()) return release(front.channel);
  log::get("redis")->debug("SSUBSCRIBE {} on {}: {}", front.channel, key, error);
  channel.node.reset();
  channel.live = false;
  if (auto redirect = parse_redirect(error)) topology_.note_moved(redirect->slot, redirect->to);
  else topology_.refresh_soon();
}

void ShardSubscriber::map_changed(const SlotMap& map) {
  // A link to every master, so readiness says whether any channel could be
  // served; the map connections need only the masters (any one answers).
  for (const NodeAddress& master : map.masters()) link_to(master);
  pool_.retain_only(map.masters());
  std::size_t moved = 0;
  for (auto& [name, channel] : channels_) {
    if (!channel->node || channel->members.empty()) continue;
    const NodeAddress* master = map.master_of(channel->slot);
    if (master && *master == *channel->node) continue;
    // The slot has a new master (7.0 may not tell a demoted master's
    // subscribers): leave the old node, subscribe on the new one.
    if (auto old = links_.find(channel->node->text()); old != links_.end() && old->second.link->up()) {
      old->second.link->send(resp_command({"SUNSUBSCRIBE", name}));
      old->second.expect.push_back({false, name});
    }
    channel->node.reset();
    channel->live = false;
    ++moved;
  }
  if (moved) log::get("redis")->info("{} channels move to their slot's new master; subscribing again", moved);
  place_all();
  update_state();
}

void ShardSubscriber::update_state() {
  const SlotMap* map = topology_.map();
  bool all_up = !stopped_ && map && map->complete() && !map->masters().empty();
  if (all_up) {
    for (const NodeAddress& master : map->masters()) {
      auto it = links_.find(master.text());
      if (it == links_.end() || !it->second.link->up()) all_up = false;
    }
  }
  if (all_up == dependency_.up()) return;
  if (all_up && ever_up_) dependency_.count_reconnect();
  if (all_up) ever_up_ = true;
  dependency_.set_up(all_up);
}

}  // namespace boxgate::redis
