#include "cluster_commands.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cctype>
#include <iterator>
#include <vector>

#include "boxgate/logging.hpp"

namespace boxgate::redis {

struct ClusterCommands::Request {
  std::string resp;                   // the command, formatted once
  std::optional<std::uint16_t> slot;  // none: any master
  std::optional<NodeAddress> ask;     // send ASKING first, to this node (one ASK redirect)
  int attempts = 0;
  Commands::ReplyCallback done;       // may be empty (reply ignored)
  std::uint64_t seq = 0;              // submission order, for the slot's held queue
  bool retried = false;               // its last answer was retryable (TRYAGAIN, ...): it goes alone
};

struct ClusterCommands::InFlight {
  ClusterCommands* self;
  std::shared_ptr<Request> request;
  NodeAddress node;
};

namespace {
bool equals_nocase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// Errors a cluster gives while it reconfigures: worth another try soon.
bool retryable(std::string_view error) {
  for (std::string_view prefix : {"CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "LOADING"}) {
    if (error.substr(0, prefix.size()) == prefix) return true;
  }
  return false;
}
}  // namespace

std::optional<std::string_view> routing_key(const std::vector<std::string_view>& argv) {
  if (argv.empty()) return std::nullopt;
  if (equals_nocase(argv[0], "EVAL") || equals_nocase(argv[0], "EVALSHA")) {
    if (argv.size() < 4 || argv[2] == "0") return std::nullopt;
    return argv[3];
  }
  if (equals_nocase(argv[0], "PING") || argv.size() < 2) return std::nullopt;
  // XGROUP CREATE <key> ...: the key after the subcommand.
  if (equals_nocase(argv[0], "XGROUP")) return argv.size() >= 3 ? std::optional(argv[2]) : std::nullopt;
  // XREAD/XREADGROUP ... STREAMS <key> ... <id>: the first key after STREAMS
  // (boxgate names one stream per call; several would have to share a slot).
  if (equals_nocase(argv[0], "XREAD") || equals_nocase(argv[0], "XREADGROUP")) {
    for (std::size_t i = 1; i + 1 < argv.size(); ++i) {
      if (equals_nocase(argv[i], "STREAMS")) return argv[i + 1];
    }
    return std::nullopt;
  }
  return argv[1];
}

ClusterCommands::ClusterCommands(EventLoop& loop, const RedisSettings& settings, ops::Dependency& dependency,
                                 std::function<void()> on_up)
    : dependency_(dependency),
      on_up_(std::move(on_up)),
      pool_(loop, settings, "redis command connection",
            {[this](const NodeAddress& node) { node_up(node); },
             [this](const NodeAddress&) {
               topology_.refresh_soon();
               update_state();
             }}),
      topology_(loop, pool_,
                seeds_of(settings),
                [this](const SlotMap& map) { map_changed(map); }),
      retry_timer_(loop, [this] { retry_parked(); }),
      state_timer_(loop, [this] { update_state(); }),
      notify_timer_(loop, [this] {
        if (up() && on_up_) on_up_();
      }) {}

ClusterCommands::~ClusterCommands() { stop(); }

void ClusterCommands::start() {
  stopping_ = false;
  topology_.start();
  state_timer_.start(std::chrono::milliseconds(50), true);
}

void ClusterCommands::stop() {
  stopping_ = true;
  topology_.stop();
  retry_timer_.cancel();
  state_timer_.cancel();
  notify_timer_.cancel();
  pool_.stop();  // in-flight callbacks run now, with null (lost)
  std::deque<Parked> parked;
  parked.swap(parked_);
  for (auto& [slot, queue] : held_) parked.insert(parked.end(), queue.begin(), queue.end());
  held_.clear();
  held_count_ = 0;
  flights_.clear();
  for (Parked& p : parked) {
    if (p.request->done) p.request->done(nullptr);
  }
  dependency_.set_up(false);
}

std::optional<NodeAddress> ClusterCommands::target_of(const Request& request) const {
  if (request.ask) return request.ask;
  const SlotMap* map = topology_.map();
  if (!map) return std::nullopt;
  if (request.slot) {
    const NodeAddress* master = map->master_of(*request.slot);
    return master ? std::optional<NodeAddress>(*master) : std::nullopt;
  }
  for (const NodeAddress& master : map->masters()) {
    if (pool_.up(master)) return master;
  }
  return std::nullopt;
}

bool ClusterCommands::run(const std::vector<std::string_view>& argv, Commands::ReplyCallback done) {
  if (!up()) return false;
  auto request = std::make_shared<Request>();
  request->resp = resp_command(argv);
  if (auto key = routing_key(argv)) request->slot = key_slot(*key);
  request->done = std::move(done);
  return submit(std::move(request));
}

bool ClusterCommands::submit(std::shared_ptr<Request> request) {
  request->seq = ++next_seq_;
  auto target = target_of(*request);
  if (!target) return false;
  if (request->slot && (held_.count(*request->slot) || must_wait(*request->slot, *target))) {
    if (parked_.size() + held_count_ >= kMaxParked) return false;
    hold(std::move(request), Clock::duration::zero());
    return true;
  }
  return write(*target, std::move(request));
}

bool ClusterCommands::set_and_publish(const std::string& key, std::string_view payload, std::string_view message,
                                      std::int64_t ttl_ms, Commands::ReplyCallback done) {
  if (!up()) return false;
  std::uint16_t slot = key_slot(key);
  const SlotMap* map = topology_.map();
  const NodeAddress* master = map ? map->master_of(slot) : nullptr;
  if (!master || !pool_.up(*master)) return false;
  std::string ttl = std::to_string(ttl_ms);
  // Both follow redirects on their own: during a migration the SET of a new
  // key is ASKed to the importing node while the source, which still owns
  // the slot and its subscribers, takes the SPUBLISH.
  auto set = std::make_shared<Request>(Request{resp_command({"SET", key, payload, "PX", ttl}), slot, {}, 0, {}, 0});
  auto publish =
      std::make_shared<Request>(Request{resp_command({"SPUBLISH", key, message}), slot, {}, 0, std::move(done), 0});
  return submit(std::move(set)) && submit(std::move(publish));
}

bool ClusterCommands::write(const NodeAddress& node, std::shared_ptr<Request> request) {
  redisAsyncContext* ctx = pool_.context(node);
  if (!ctx) return false;
  if (request->ask) {
    static const std::string asking = resp_command({"ASKING"});
    if (redisAsyncFormattedCommand(ctx, nullptr, nullptr, asking.data(), asking.size()) != REDIS_OK) return false;
  }
  auto* flight = new InFlight{this, request, node};
  if (redisAsyncFormattedCommand(ctx, &ClusterCommands::on_reply, flight, request->resp.data(),
                                 request->resp.size()) != REDIS_OK) {
    delete flight;
    return false;
  }
  if (request->slot) {
    Flight& on_wire = flights_[*request->slot];
    on_wire.node = node;
    ++on_wire.count;
    if (request->retried) on_wire.alone = true;
  }
  pool_.flush_soon(node);
  return true;
}

void ClusterCommands::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<InFlight> flight(static_cast<InFlight*>(privdata));
  flight->self->answered(std::move(flight->request), flight->node, static_cast<const redisReply*>(reply));
}

void ClusterCommands::answered(std::shared_ptr<Request> request, const NodeAddress& node, const redisReply* reply) {
  if (stopping_) {
    if (request->done) request->done(reply);
    return;
  }
  const std::optional<std::uint16_t> slot = request->slot;
  if (slot) {
    auto on_wire = flights_.find(*slot);
    if (on_wire != flights_.end()) {
      if (request->retried) on_wire->second.alone = false;
      if (--on_wire->second.count == 0) flights_.erase(on_wire);
    }
  }
  if (!reply) {
    topology_.refresh_soon();
    if (request->done) request->done(reply);
    if (slot) drain(*slot);
    return;
  }
  if (reply->type == REDIS_REPLY_ERROR && request->attempts + 1 < kMaxAttempts) {
    std::string_view error(reply->str, reply->len);
    if (auto redirect = parse_redirect(error)) {
      ++request->attempts;
      request->retried = false;
      if (redirect->kind == Redirect::Kind::moved) {
        request->ask.reset();
        topology_.note_moved(redirect->slot, redirect->to);
      } else {
        request->ask = redirect->to;
      }
      log::get("redis")->debug("{} from {}: following", error, node.text());
      return again(std::move(request), Clock::duration::zero());
    }
    if (retryable(error)) {
      ++request->attempts;
      request->retried = true;
      request->ask.reset();
      topology_.refresh_soon();
      return again(std::move(request), std::chrono::milliseconds(25) * request->attempts);
    }
  }
  if (request->done) request->done(reply);
  if (slot && !held_.empty()) drain(*slot);
}

void ClusterCommands::again(std::shared_ptr<Request> request, Clock::duration after) {
  if (!request->slot) return dispatch(std::move(request), after);
  std::uint16_t slot = *request->slot;
  hold(std::move(request), after);
  drain(slot);
}

// A slot's command for `node` waits while the slot has commands on the wire
// to another node (answered MOVED or ASK, they would come back after it), or
// a retried one on any node. A node that redirects a command redirects the
// later ones of its slot too (MOVED; ASK per key), so those may follow it;
// but TRYAGAIN is what Redis answers a multi-key command whose keys a
// migration has split, while it serves the slot's single-key commands at
// once: pipelined behind a retry that is answered TRYAGAIN again, they would
// run before it.
bool ClusterCommands::must_wait(std::uint16_t slot, const NodeAddress& node) const {
  auto on_wire = flights_.find(slot);
  return on_wire != flights_.end() && (on_wire->second.alone || !(on_wire->second.node == node));
}

void ClusterCommands::hold(std::shared_ptr<Request> request, Clock::duration after) {
  if (parked_.size() + held_count_ >= kMaxParked) {
    if (request->done) request->done(nullptr);
    return;
  }
  auto now = Clock::now();
  std::deque<Parked>& queue = held_[*request->slot];
  // A redirected command is older than the ones held since it left: it goes
  // before them.
  auto at = queue.end();
  while (at != queue.begin() && std::prev(at)->request->seq > request->seq) --at;
  queue.insert(at, Parked{std::move(request), now + after, now + kParkLimit});
  ++held_count_;
  if (!retry_timer_.pending()) retry_timer_.start(std::chrono::milliseconds(10));
}

void ClusterCommands::drain(std::uint16_t slot) {
  const auto now = Clock::now();
  while (!stopping_) {
    auto queue = held_.find(slot);
    if (queue == held_.end()) return;
    if (queue->second.empty()) {
      held_.erase(queue);
      return;
    }
    Parked& head = queue->second.front();
    auto target = target_of(*head.request);
    if (now >= head.due && target && pool_.up(*target) && !must_wait(slot, *target) &&
        write(*target, head.request)) {
      queue->second.pop_front();
      --held_count_;
      continue;
    }
    if (target && !pool_.up(*target)) pool_.connect(*target);
    if (now < head.give_up) return;  // the slot's next answer or the retry timer tries again
    // Lost, and with it every later command of the slot: their owners send
    // them again in their order, none overtakes the one given up.
    std::deque<Parked> lost;
    lost.swap(queue->second);
    held_.erase(queue);
    held_count_ -= lost.size();
    for (Parked& p : lost) {
      if (p.request->done) p.request->done(nullptr);
    }
  }
}

// A redirected or retried command without a slot: written now when its node
// is up, else parked until it is (or kParkLimit passes: lost).
void ClusterCommands::dispatch(std::shared_ptr<Request> request, Clock::duration after) {
  auto now = Clock::now();
  if (after == Clock::duration::zero()) {
    if (auto target = target_of(*request); target && pool_.up(*target) && write(*target, request)) return;
    if (auto target = target_of(*request)) pool_.connect(*target);
  }
  if (parked_.size() >= kMaxParked) {
    if (request->done) request->done(nullptr);
    return;
  }
  parked_.push_back({std::move(request), now + after, now + kParkLimit});
  if (!retry_timer_.pending()) retry_timer_.start(std::chrono::milliseconds(10));
}

void ClusterCommands::retry_parked() {
  auto now = Clock::now();
  std::deque<Parked> parked;
  parked.swap(parked_);
  for (Parked& p : parked) {
    if (now >= p.due) {
      auto target = target_of(*p.request);
      if (target && pool_.up(*target) && write(*target, p.request)) continue;
      if (target) pool_.connect(*target);
    }
    if (now >= p.give_up) {
      if (p.request->done) p.request->done(nullptr);
      continue;
    }
    parked_.push_back(std::move(p));
  }
  std::vector<std::uint16_t> slots;
  for (const auto& [slot, queue] : held_) slots.push_back(slot);
  for (std::uint16_t slot : slots) drain(slot);
  if ((!parked_.empty() || !held_.empty()) && !retry_timer_.pending()) {
    retry_timer_.start(std::chrono::milliseconds(10));
  }
}

void ClusterCommands::map_changed(const SlotMap& map) {
  // Every master is connected at once: readiness means "can serve any key".
  for (const NodeAddress& master : map.masters()) pool_.connect(master);
  pool_.retain_only(map.masters());
  update_state();
  notify_up_soon();
}

void ClusterCommands::node_up(const NodeAddress&) {
  topology_.node_up();
  update_state();
  notify_up_soon();
  if (!parked_.empty() || !held_.empty()) retry_parked();
}

void ClusterCommands::update_state() {
  const SlotMap* map = topology_.map();
  bool all_up = map && map->complete() && !map->masters().empty();
  bool stalled = false;
  if (all_up) {
    for (const NodeAddress& master : map->masters()) {
      if (!pool_.up(master)) all_up = false;
      if (pool_.stalled(master)) stalled = true;
    }
  }
  using State = ops::Dependency::State;
  State now = dependency_.state();
  State want = !all_up ? State::down : stalled ? State::stalled : State::up;
  if (want == now) return;  // checked every 50 ms: change only what changed
  if (now == State::down) {
    if (ever_up_) dependency_.count_reconnect();
    ever_up_ = true;
    log::get("redis")->info("cluster: every slot's master connected");
  } else if (want == State::down) {
    log::get("redis")->warn("cluster: a slot's master is not connected (or the map has a gap)");
  }
  dependency_.set_up(want != State::down);
  dependency_.set_stalled(want == State::stalled);
}

void ClusterCommands::notify_up_soon() {
  if (!notify_timer_.pending()) notify_timer_.start(std::chrono::milliseconds(0));
}

std::optional<NodeAddress> ClusterCommands::master_of_key(std::string_view key) const {
  const SlotMap* map = topology_.map();
  const NodeAddress* master = map ? map->master_of(key_slot(key)) : nullptr;
  if (!master) return std::nullopt;
  return *master;
}

}  // namespace boxgate::redis
