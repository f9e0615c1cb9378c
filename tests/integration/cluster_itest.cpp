// Redis Cluster: gateway + bridge + devsim + mosquitto against a
// real 3-primary / 3-replica cluster (redis_mode cluster). Commands spread
// over every shard; a slot migrated while its replies flow; a manual
// failover and a primary killed under load. Every figure goes through
// report() ([ FAULT ] lines) for docs/scale-out.md.

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <set>
#include <atomic>
#include <mutex>
#include <thread>

#include "boxgate/redis/slot_map.hpp"
#include "faults_support.hpp"
#include "sse_client.hpp"
#include "support/http_receiver.hpp"
#include "support/redis_cluster.hpp"

namespace boxgate::itest::faults {
namespace {

// A cluster, a broker and the daemons, stopped in reverse order.
class ClusterStack {
 public:
  ClusterStack() : tmp_("cluster"), cluster_(tmp_), mqtt_(tmp_) {}
  ~ClusterStack() {
    devsims_.clear();
    bridges_.clear();
    gateways_.clear();
  }
  std::vector<std::string> redis_flags() const {
    return {"--redis-mode", "cluster", "--redis-nodes", cluster_.seeds(), "--redis-backoff-max-ms", "50"};
  }
  int add_gateway(std::vector<std::string> flags = {}) {
    int port = test::free_port();
    std::vector<std::string> base = redis_flags();
    flags.insert(flags.begin(), base.begin(), base.end());
    gateways_.push_back(test::start_gateway(tmp_, port, cluster_.node(0).port(), mqtt_.port(), flags));
    EXPECT_TRUE(test::wait_ready(port, 20s)) << gateways_.back().log_tail();
    return port;
  }
  int add_bridge(std::vector<std::string> flags = {}) {
    int port = test::free_port();
    std::vector<std::string> base = redis_flags();
    flags.insert(flags.begin(), base.begin(), base.end());
    bridges_.push_back(test::start_bridge(tmp_, port, cluster_.node(0).port(), mqtt_.port(), flags));
    EXPECT_TRUE(test::wait_ready(port, 20s)) << bridges_.back().log_tail();
    return port;
  }
  void add_devsim(std::vector<std::string> flags) { devsims_.push_back(test::start_devsim(tmp_, mqtt_.port(), flags)); }
  test::RedisCluster& cluster() { return cluster_; }
  const test::TempDir& tmp() const { return tmp_; }
  int mqtt_port() const { return mqtt_.port(); }
  // Every daemon exits 0 on SIGTERM, with no sanitizer report.
  void stop_and_check() {
    for (auto* list : {&devsims_, &bridges_, &gateways_}) {
      for (Process& p : *list) {
        bool was_running = p.running();
        int status = p.stop(SIGTERM, 10s);
        if (was_running) {
          EXPECT_EQ(status, 0) << p.name() << "\n" << p.log_tail();
        }
        EXPECT_EQ(p.sanitizer_report(), "") << p.name();
      }
    }
  }
  // Lines holding `needle` in the logs of the gateways or bridges.
  int lines_with(const std::string& needle, bool gateways) {
    int n = 0;
    for (Process& p : gateways ? gateways_ : bridges_) {
      std::string log = p.log();
      for (auto at = log.find(needle); at != std::string::npos; at = log.find(needle, at + 1)) ++n;
    }
    return n;
  }
  std::string logs() {
    std::string out;
    for (auto* list : {&gateways_, &bridges_}) {
      for (Process& p : *list) out += "---- " + p.name() + "\n" + p.log_tail(25);
    }
    return out;
  }

 private:
  test::TempDir tmp_;
  test::RedisCluster cluster_;
  test::Mosquitto mqtt_;
  std::vector<Process> gateways_, bridges_, devsims_;
};

// Commands with ids chosen by the test, from `threads` threads, until the
// ids run out or stop(). Records each status and the longest call.
class IdLoad {
 public:
  IdLoad(int port, int threads, std::vector<std::string> ids, std::string query)
      : ids_(std::move(ids)) {
    for (int t = 0; t < threads; ++t) {
      workers_.emplace_back([this, port, query, t] {
        auto c = client(port);
        c->set_read_timeout(std::chrono::seconds(20));
        for (std::size_t i; !stop_ && (i = next_++) < ids_.size();) {
          HttpResult r = post(*c, command_path("box-" + std::to_string(t % 8 + 1), query), R"({"method":"m"})",
                              {{"X-Request-Id", ids_[i]}});
          record(r);
          if (r.status == -1) c = client(port);
          if (r.status == 503) std::this_thread::sleep_for(20ms);  // a caller's back-off, not a wait
        }
      });
    }
  }
  ~IdLoad() { join(); }
  LoadCounts join() {
    for (auto& w : workers_) {
      if (w.joinable()) w.join();
    }
    std::lock_guard lock(mu_);
    return counts_;
  }
  void stop() { stop_ = true; }
  LoadCounts snapshot() {
    std::lock_guard lock(mu_);
    return counts_;
  }
  long long longest_ms() {
    std::lock_guard lock(mu_);
    return longest_;
  }

 private:
  void record(const HttpResult& r) {
    std::lock_guard lock(mu_);
    longest_ = std::max<long long>(longest_, r.elapsed.count());
    if (r.status != 200 && counts_.examples.size() < 5) counts_.examples.push_back(std::to_string(r.status) + " " + r.body + r.error);
    counts_.by_status[r.status]++;
  }
  std::vector<std::string> ids_;
  std::atomic<std::size_t> next_{0};
  std::atomic<bool> stop_{false};
  std::mutex mu_;
  LoadCounts counts_;
  long long longest_ = 0;
  std::vector<std::thread> workers_;
};

std::vector<std::string> fresh_ids(const std::string& tag, int n) {
  std::vector<std::string> ids;
  for (int i = 0; i < n; ++i) ids.push_back(tag + "-" + std::to_string(i));
  return ids;
}

// Ids whose result key for box-<t%8+1> lands in `slot` -- but boxes vary
// per thread, so for a one-thread-per-box load each thread's box is fixed:
// ids are chosen for box-1 and the load runs one thread per such list.
std::vector<std::string> ids_in_slot(const std::string& box, std::uint16_t slot, int n) {
  std::vector<std::string> ids;
  for (long i = 0; static_cast<int>(ids.size()) < n && i < 50'000'000; ++i) {
    std::string id = "mig-" + std::to_string(i);
    if (redis::key_slot("dev/" + box + "/response/" + id) == slot) ids.push_back(id);
  }
  return ids;
}

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override { stack = std::make_unique<ClusterStack>(); }
  void TearDown() override {
    if (stack) stack->stop_and_check();
    stack.reset();
  }
  std::unique_ptr<ClusterStack> stack;
};

// (a) Result keys and reply channels spread over every shard; every call succeeds.
TEST_F(ClusterTest, CommandsSpreadOverAllShardsAllSucceed) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  stack->add_devsim({"--boxes", "8", "--delay-ms", "0"});
  IdLoad load(gw, 4, fresh_ids("spread", 400), "timeout_ms=5000");
  LoadCounts counts = load.join();
  report("statuses", counts.summary());
  EXPECT_EQ(counts.count(200), 400) << counts.summary() << "\n" << (counts.examples.empty() ? "" : counts.examples[0]);
  auto per_master = stack->cluster().keys_per_master();
  ASSERT_EQ(per_master.size(), 3u);
  for (auto [port, keys] : per_master) {
    report("keys_on_master_" + std::to_string(port), keys);
    EXPECT_GT(keys, 50) << "shard " << port << " took almost nothing";
  }
}

// The data plane on a cluster: the box and fleet streams live on different
// slots (no script may name both), and the gateway's fleet reader must read
// on the fleet stream's master.
TEST_F(ClusterTest, EventsReachBothStreamsAndLiveStreamsAndStateIsKept) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ASSERT_NE(redis::key_slot("dev/box-1/events"), redis::key_slot("dev/events"));
  SseClient box(gw, "/v1/devices/box-1/events");
  SseClient fleet(gw, "/v1/events");
  ASSERT_EQ(box.status(), 200) << stack->logs();
  ASSERT_EQ(fleet.status(), 200) << stack->logs();
  MqttProbe device(stack->mqtt_port());
  constexpr int kEvents = 20;
  for (int i = 0; i < kEvents; ++i) device.publish("dev/box-1/event/tick", std::to_string(i));
  device.publish("dev/box-1/state", R"({"on":true})");
  ASSERT_TRUE(box.wait_events(kEvents, 10s)) << box.events().size() << "\n" << stack->logs();
  ASSERT_TRUE(fleet.wait_events(kEvents, 10s)) << fleet.events().size() << "\n" << stack->logs();
  std::vector<SseEvent> from_box = box.events(), from_fleet = fleet.events();
  for (int i = 0; i < kEvents; ++i) {
    EXPECT_EQ(from_box[i].data, std::to_string(i)) << "in order, each once";
    EXPECT_EQ(from_box[i].id, from_fleet[i].id) << "one id in both streams";
  }
  // Live streams are fed from the fleet stream, whose XADD comes first on a
  // cluster: the box stream's own XADD of the last events may land a moment
  // after they were shown live.
  auto stored = [&] {
    HttpResult history = get(gw, "/v1/devices/box-1/events?limit=1000");
    return history.status == 200 ? history.json()["events"].size() : std::size_t{0};
  };
  EXPECT_TRUE(test::eventually([&] { return stored() == static_cast<std::size_t>(kEvents); }, 5s)) << stored();
  EXPECT_TRUE(test::eventually([&] { return get(gw, "/v1/devices/box-1/state").status == 200; }, 5s));
  report("events_through_cluster", kEvents);
}

// On a cluster an event is two XADDs: the fleet stream's, then the box
// stream's with the id the fleet stream gave. A box stream already past that
// id (here: an entry planted far in the future, as after a deleted and
// recreated fleet stream) refuses it; the box entry then gets an id of its
// own, and no event is lost from either stream.
TEST_F(ClusterTest, ABoxStreamAheadOfTheFleetStreamStillGetsEveryEvent) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  int box_master = stack->cluster().master_of_slot(redis::key_slot("dev/box-1/events"));
  test::RedisClient redis(box_master);
  test::RespValue planted = redis.command({"XADD", "dev/box-1/events", "99999999999999-0", "box", "box-1", "name",
                                     "planted", "payload", "{}", "received_ms", "0"});
  ASSERT_EQ(planted.type, test::RespValue::Type::bulk) << planted.str;

  MqttProbe device(stack->mqtt_port());
  for (int i = 0; i < 3; ++i) device.publish("dev/box-1/event/tick", std::to_string(i));
  auto names_in = [&](const std::string& path) {
    std::vector<std::string> names;
    HttpResult r = get(gw, path);
    if (r.status != 200) return names;
    const auto body = r.json();
    for (const auto& e : body["events"]) names.push_back(e["name"].get<std::string>() + ":" + e["id"].get<std::string>());
    return names;
  };
  ASSERT_TRUE(test::eventually([&] { return names_in("/v1/devices/box-1/events?limit=100").size() == 4; }, 10s))
      << get(gw, "/v1/devices/box-1/events?limit=100").body << "\n"
      << stack->logs();
  std::vector<std::string> box = names_in("/v1/devices/box-1/events?limit=100");
  EXPECT_EQ(box[0], "planted:99999999999999-0");
  for (int i = 1; i < 4; ++i) {
    EXPECT_EQ(box[i], "tick:99999999999999-" + std::to_string(i)) << "the box stream's own next id";
  }
  // The fleet stream is served as SSE only: read its length from Redis.
  test::RedisClient fleet(stack->cluster().master_of_slot(redis::key_slot("dev/events")));
  EXPECT_EQ(fleet.command({"XLEN", "dev/events"}).integer, 3);
}

// On a cluster the command record and the result key hash to different
// slots: the bridge asks the record's master (EXISTS) before it stores. A
// reply under an id no gateway issued is not stored on any master; a real
// command's reply is. The stream caps in bytes hold there too, each byte
// count on its stream's master.
TEST_F(ClusterTest, RepliesNeedARecordAndStreamsAreCappedInBytes) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge({"--events-box-max-bytes", "20000", "--events-fleet-max-bytes", "40000"});
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);
  for (int i = 0; i < 10; ++i) device.publish("dev/box-1/response/forged-" + std::to_string(i), "{}");
  const std::string unsolicited = R"(boxgate_replies_dropped_total{reason="unsolicited"})";
  ASSERT_TRUE(test::eventually([&] { return metric(br, unsolicited) == 10.0; }, 10s))
      << metric(br, unsolicited).value_or(-1) << "\n" << stack->logs();
  for (int i = 0; i < 10; ++i) {
    std::string key = "dev/box-1/response/forged-" + std::to_string(i);
    test::RedisClient master(stack->cluster().master_of_slot(redis::key_slot(key)));
    EXPECT_EQ(master.command({"EXISTS", key}).integer, 0) << key;
  }
  auto call = std::async(std::launch::async, [gw] {
    auto c = client(gw);
    return post(*c, command_path("box-1", "timeout_ms=5000"), kPing, {{"X-Request-Id", "real-1"}});
  });
  ASSERT_TRUE(device.wait_for(1, 5s)) << stack->logs();
  ASSERT_NE(redis::key_slot("dev/box-1/command/real-1"), redis::key_slot("dev/box-1/response/real-1"));
  device.publish("dev/box-1/response/real-1", R"({"id":"real-1"})");
  HttpResult answered = call.get();
  EXPECT_EQ(answered.status, 200) << answered.body << "\n" << stack->logs();

  for (int i = 0; i < 60; ++i) device.publish("dev/box-1/event/e", std::to_string(i) + ":" + std::string(1000, 'x'));
  ASSERT_TRUE(test::eventually([&] { return metric(br, "boxgate_events_forwarded_total") == 60.0; }, 10s))
      << stack->logs();
  for (const std::string stream : {"dev/box-1/events", "dev/events"}) {
    SCOPED_TRACE(stream);
    test::RedisClient master(stack->cluster().master_of_slot(redis::key_slot(stream)));
    std::size_t bytes = 0, entries = 0;
    for (const auto& e : master.command({"XRANGE", stream, "-", "+"}).elements) {
      bytes += 64;
      for (std::size_t i = 1; i < e.elements.at(1).elements.size(); i += 2) bytes += e.elements.at(1).elements[i].str.size();
      ++entries;
    }
    EXPECT_LE(bytes, stream == "dev/events" ? 40000u : 20000u);
    EXPECT_GT(entries, 10u);
    EXPECT_EQ(master.command({"HGET", stream + "/bytes{" + stream + "}", "bytes"}).str, std::to_string(bytes));
  }
}

// The gateway's fleet-stream reader follows the stream's slot to another
// master (a migration), resuming after the last id it read: events sent
// before, during and after the move all reach a live fleet stream, once.
TEST_F(ClusterTest, FleetStreamReaderFollowsItsSlotToAnotherMaster) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  // From the start of the (still empty) fleet stream: a stream without a
  // resume point shows only what is stored after the gateway's reader took
  // its position, one Redis round trip after the 200, so "before" could be
  // stored in between and never shown.
  SseClient fleet(gw, "/v1/events?after=0");
  ASSERT_EQ(fleet.status(), 200) << stack->logs();
  MqttProbe device(stack->mqtt_port());
  device.publish("dev/box-1/event/tick", "before");
  ASSERT_TRUE(fleet.wait_events(1, 10s)) << stack->logs();

  const std::uint16_t slot = redis::key_slot("dev/events");
  int from = stack->cluster().master_of_slot(slot);
  std::vector<int> masters = stack->cluster().master_ports();
  int to = masters[0] == from ? masters[1] : masters[0];
  stack->cluster().migrate_slot(slot, to, 300ms);
  ASSERT_EQ(stack->cluster().master_of_slot(slot), to);
  // A burst (QoS 0: no wait for each PUBACK), so that some events reach the
  // bridge while earlier ones are on their way to the slot's old master: its
  // MOVED answers must not let the later ones overtake them.
  constexpr int kAfter = 20;
  std::vector<std::string> sent{"before"};
  for (int i = 0; i < kAfter; ++i) {
    sent.push_back("after-" + std::to_string(i));
    device.publish("dev/box-1/event/tick", sent.back(), 0);
  }

  ASSERT_TRUE(fleet.wait_events(sent.size(), 10s)) << fleet.events().size() << "\n" << stack->logs();
  std::vector<std::string> got, ids;
  for (const SseEvent& e : fleet.events()) got.push_back(e.data), ids.push_back(e.id);
  EXPECT_EQ(got, sent) << "each once, in the device's order; ids " << ::testing::PrintToString(ids) << "\n"
                       << stack->logs();
  EXPECT_GE(stack->lines_with("fleet stream moved to", true), 1) << stack->logs();
}

// (b) The slot of the replies in flight migrates to another master while
// the device answers: SETs are ASKed to the importing node, SPUBLISH stays
// with the owner, and the subscribers move when the slot does.
TEST_F(ClusterTest, SlotMigratedUnderLoadLosesNoReply) {
  int gw = stack->add_gateway();
  int br = stack->add_bridge();
  stack->add_devsim({"--boxes", "8", "--delay-ms", "50"});
  const std::uint16_t slot = redis::key_slot("dev/box-1/response/migrating");
  std::vector<std::string> ids = ids_in_slot("box-1", slot, 150);
  ASSERT_EQ(ids.size(), 150u);
  int from = stack->cluster().master_of_slot(slot);
  std::vector<int> masters = stack->cluster().master_ports();
  int to = masters[0] == from ? masters[1] : masters[0];

  IdLoad load(gw, 1, ids, "timeout_ms=3000");  // one thread: every call is box-1's, in the slot
  ASSERT_TRUE(test::eventually([&] { return load.snapshot().count(200) >= 5; }, 5s)) << load.snapshot().summary();
  const auto started = Clock::now();
  stack->cluster().migrate_slot(slot, to, 1500ms);
  report("migration_ms", ms_since(started));
  EXPECT_EQ(stack->cluster().master_of_slot(slot), to);
  LoadCounts counts = load.join();  // the rest of the ids, on the new owner
  report("statuses", counts.summary());
  report("longest_call_ms", load.longest_ms());
  report("bridge_redis_errors", metric(br, R"(boxgate_replies_dropped_total{reason="redis_error"})").value_or(-1));
  // What the migration looked like from inside: SETs ASKed to the importing
  // node, MOVED once it owns the slot, subscribers told to leave.
  report("bridge_ask_redirects", stack->lines_with("ASK ", false));
  report("moved_redirects", stack->lines_with("MOVED ", false) + stack->lines_with("MOVED ", true));
  const int moved_subscriptions = stack->lines_with("subscribing again", true);
  // Either the node's unsolicited sunsubscribe or the next map moves a
  // live subscription (none is live if the slot moved between two calls).
  report("gateway_subscription_moves", moved_subscriptions);
  EXPECT_EQ(counts.count(504), 0) << "a reply the device sent was lost\n" << counts.summary();
  EXPECT_EQ(counts.count(-1), 0) << counts.summary();
  EXPECT_EQ(counts.count(200) + counts.count(503), counts.total()) << counts.summary() << stack->logs();
  EXPECT_GT(counts.count(200), 100) << counts.summary();
  EXPECT_LE(load.longest_ms(), 4000);
}

// (c) and (d): a primary replaced under load, politely or by kill -9.
void run_failover(ClusterStack& stack, bool kill) {
  int gw = stack.add_gateway();
  stack.add_bridge();
  stack.add_devsim({"--boxes", "8", "--delay-ms", "100"});
  const std::string query = "timeout_ms=8000";
  IdLoad load(gw, 4, fresh_ids(kill ? "kill" : "failover", 100000), query);
  ASSERT_TRUE(test::eventually([&] { return load.snapshot().count(200) >= 50; }, 10s)) << load.snapshot().summary();
  int master = stack.cluster().master_ports().front();
  int replica = stack.cluster().replica_of(master);
  ASSERT_NE(replica, 0);
  const auto started = Clock::now();
  if (kill) {
    stack.cluster().node_on(master).kill9();
  } else {
    ASSERT_EQ(stack.cluster().node_on(replica).client().command({"CLUSTER", "FAILOVER"}).str, "OK");
  }
  bool promoted = test::eventually([&] {
    auto m = stack.cluster().master_ports();
    return std::find(m.begin(), m.end(), replica) != m.end();
  }, 20s, 50ms);
  report("promoted_after_ms", ms_since(started));
  EXPECT_TRUE(promoted);
  // Ready again: every slot's master connected.
  EXPECT_TRUE(test::wait_ready(gw, 15s)) << stack.logs();
  report("gateway_ready_after_ms", ms_since(started));
  // Load on the new primary: 25 more answered.
  const int answered_when_ready = load.snapshot().count(200);
  EXPECT_TRUE(test::eventually([&] { return load.snapshot().count(200) >= answered_when_ready + 25; }, 10s))
      << load.snapshot().summary();
  load.stop();
  LoadCounts counts = load.join();
  report("statuses", counts.summary());
  report("longest_call_ms", load.longest_ms());
  EXPECT_EQ(counts.count(-1), 0) << counts.summary();
  EXPECT_LE(load.longest_ms(), 8000 + 1500) << "a call outlived its timeout";
  // Polite failover loses nothing; kill -9 may lose the writes the dead
  // primary had not replicated: at most the calls in flight (4 threads).
  EXPECT_LE(counts.count(504), kill ? 4 : 0) << counts.summary() << "\n" << stack.logs();
  EXPECT_GT(counts.count(200), 50) << counts.summary();
}

TEST_F(ClusterTest, ManualFailoverUnderLoadHangsNoCall) { run_failover(*stack, false); }

TEST_F(ClusterTest, PrimaryKilledUnderLoadHangsNoCall) { run_failover(*stack, true); }

// Queued commands on a cluster: each box's queue is one slot (hash tag), its
// records are elsewhere, the wake channel is a shard channel. Boxes spread
// over the shards get their queued commands in order once they come online,
// from a gateway other than the one that accepted them.
TEST_F(ClusterTest, QueuedCommandsWaitForTheirBoxesOnEveryShard) {
  int gw1 = stack->add_gateway();
  int gw2 = stack->add_gateway();
  stack->add_bridge();
  const std::vector<std::string> boxes = {"qbox-1", "qbox-2", "qbox-3", "qbox-4", "qbox-5", "qbox-6"};
  MqttProbe status(stack->mqtt_port());
  test::MqttPublishOptions retained;
  retained.retained = true;
  auto online = [&](const std::string& box) {
    return test::get(gw1, device_path(box)).json().value("online", false);
  };
  for (const std::string& box : boxes) {
    status.publish("dev/" + box + "/status", "offline", 1, retained);
    ASSERT_TRUE(test::eventually([&] { return test::get(gw1, device_path(box)).status == 200 && !online(box); }, 10s));
  }
  auto c = client(gw1);
  for (const std::string& box : boxes) {
    for (int i = 0; i < 3; ++i) {
      std::string id = box + "-c" + std::to_string(i);
      HttpResult r = post(*c, command_path(box, "ttl_ms=60000&timeout_ms=5000"), R"({"method":"m"})",
                          {{"X-Request-Id", id}, {"Prefer", "respond-async"}});
      ASSERT_EQ(r.status, 202) << r.body << stack->logs();
      EXPECT_EQ(r.json().value("state", ""), "queued");
    }
  }
  // One of each box's cancelled through the other gateway (the record's
  // slot and the queue's differ).
  auto c2 = client(gw2);
  for (const std::string& box : boxes) ASSERT_EQ(c2->Delete(command_path(box) + "/" + box + "-c1")->status, 200);
  EXPECT_EQ(test::get(gw2, device_path("qbox-1")).json().value("queued", -1), 2);

  ProbeDevice devices(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  for (const std::string& box : boxes) status.publish("dev/" + box + "/status", "online", 1, retained);
  ASSERT_TRUE(devices.probe().wait_for(boxes.size() * 2, 15s)) << stack->logs();
  std::map<std::string, std::vector<std::string>> received;
  for (const MqttMessage& m : devices.commands()) {
    std::string box = m.topic.substr(4, m.topic.find('/', 4) - 4);
    received[box].push_back(last_level(m.topic));
  }
  for (const std::string& box : boxes) {
    EXPECT_EQ(received[box], (std::vector<std::string>{box + "-c0", box + "-c2"})) << box;
    EXPECT_TRUE(test::eventually(
        [&] { return test::get(gw2, command_path(box) + "/" + box + "-c2").json().value("state", "") == "succeeded"; },
        10s))
        << box;
  }
  auto per_master = stack->cluster().keys_per_master();
  EXPECT_EQ(per_master.size(), 3u);
}

// Outcomes and webhooks on a cluster: the outcome stream, the webhook
// groups' commands (XGROUP, XREADGROUP: their key is not the first
// argument) and the acknowledgements all go to the stream's own master.
TEST_F(ClusterTest, WebhooksDeliverEveryOutcomeFromTheStreamsMaster) {
  test::Receiver receiver;
  receiver.on("/hook");
  receiver.start();
  std::string file = stack->tmp().write(
      "webhooks.json", R"({"endpoints":[{"name":"c","url":")" + receiver.url("/hook") +
                           R"(","allow_http":true,"secret":"whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",)"
                           R"("kinds":["command.succeeded"]}]})");
  int gw = stack->add_gateway({"--webhooks", file});
  stack->add_bridge();
  stack->add_devsim({"--boxes", "8", "--delay-ms", "0"});
  IdLoad load(gw, 4, fresh_ids("hook", 40), "timeout_ms=5000");
  LoadCounts counts = load.join();
  ASSERT_EQ(counts.count(200), 40) << counts.summary();
  ASSERT_TRUE(test::eventually([&] { return receiver.handled() >= 40; }, 15s)) << receiver.handled();
  std::set<std::string> ids;
  for (const auto& seen : receiver.seen()) ids.insert(seen.headers.find("webhook-id")->second);
  EXPECT_EQ(ids.size(), 40u) << "each outcome once";
  report("webhooks_delivered", static_cast<long long>(receiver.handled()));
}

}  // namespace
}  // namespace boxgate::itest::faults
