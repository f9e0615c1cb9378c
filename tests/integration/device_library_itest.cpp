// libboxgate-device against a real mosquitto: the persistent session keeps
// commands sent while the device was away, an expired command is never run,
// a duplicate is answered again but never run twice, replies follow the v5
// Response Topic and Correlation Data, presence (will, clean stop) and a
// reply held across a broken connection. Commands come from an MqttProbe
// playing the gateway, so every property is under the test's control.

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <map>
#include <mutex>
#include <thread>

#include "boxgate/device/device.hpp"
#include "itest_env.hpp"

namespace boxgate::itest {
namespace {

using test::MqttPublishOptions;

// A Device on its own loop thread. The handler answers {"ran":<n>} where n
// counts the runs of that command id; the test thread reads only atomics
// and the mutex-guarded list of ids run.
class DeviceThread {
 public:
  struct Options {
    int port = 0;
    std::vector<std::string> boxes{"box-1"};
    int version = 5;
    bool persistent = true;
    bool hold_replies = false;  // keep Replies for reply_held() instead of answering
    std::string box_topic{};    // non-empty: subscribe_box_topic(box_topic), payloads kept in seen()
  };
  explicit DeviceThread(Options o) : options_(std::move(o)) {
    thread_ = std::thread([this] { run(); });
  }
  ~DeviceThread() { stop(); }

  void stop() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  bool wait_up(std::chrono::milliseconds timeout = 10s) {
    return test::eventually([&] { return up_.load(); }, timeout);
  }
  std::vector<std::string> ran() const {
    std::lock_guard lock(mu_);
    return ran_;
  }
  std::vector<std::string> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }
  void interrupt(std::chrono::milliseconds delay) { interrupt_ms_.store(static_cast<int>(delay.count())); }
  // stop(), then resume() once stopped.
  void sleep_and_resume() { sleep_.store(true); }
  int resumed() const { return resumed_.load(); }
  void answer_held() { answer_held_.store(true); }
  std::size_t held() const { return held_count_.load(); }
  bool up() const { return up_.load(); }
  int connects() const { return connects_.load(); }

 private:
  void run() {
    EventLoop loop;
    device::Settings s;
    s.uri = "tcp://127.0.0.1:" + std::to_string(options_.port);
    for (const auto& b : options_.boxes) s.boxes.push_back(*BoxId::parse(b));
    s.version = options_.version;
    s.persistent = options_.persistent;
    s.backoff_max_ms = 200;
    s.keepalive_s = 5;
    device::Device device(loop, s);
    std::vector<device::Reply> held;
    device.on_command([&](const device::Command& command, device::Reply reply) {
      std::lock_guard lock(mu_);
      ran_.push_back(command.id.str());
      if (options_.hold_replies) {
        held.push_back(reply);
        held_count_.store(held.size());
        return;
      }
      reply.result({{"ran", std::count(ran_.begin(), ran_.end(), command.id.str())}, {"box", command.box.str()}});
    });
    device.on_connection([&](bool up) {
      up_.store(up);
      if (up) ++connects_;
    });
    if (!options_.box_topic.empty()) {
      device.subscribe_box_topic(options_.box_topic, [&](const BoxId& box, std::string_view suffix, std::string_view payload) {
        std::lock_guard lock(mu_);
        seen_.push_back(box.str() + " " + std::string(suffix) + " " + std::string(payload));
      });
    }
    Timer poll(loop, [&] {
      if (int ms = interrupt_ms_.exchange(0); ms > 0) device.interrupt(std::chrono::milliseconds(ms));
      if (sleep_.exchange(false)) {
        sleeping_ = true;
        device.stop(std::chrono::milliseconds(1000));
      }
      if (sleeping_ && device.stopped()) {
        sleeping_ = false;
        if (device.resume()) ++resumed_;
      }
      if (answer_held_.exchange(false)) {
        for (auto& reply : held) reply.result({{"held", true}});
      }
      if (stop_.load() && !stopping_) {
        stopping_ = true;
        device.stop(std::chrono::milliseconds(1000));
      }
      if (stopping_ && device.stopped()) loop.stop();
    });
    poll.start(std::chrono::milliseconds(5), /*repeat=*/true);
    device.start();
    loop.run();
  }

  Options options_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> up_{false};
  std::atomic<int> connects_{0};
  std::atomic<int> interrupt_ms_{0};
  std::atomic<bool> answer_held_{false};
  std::atomic<std::size_t> held_count_{0};
  std::atomic<bool> sleep_{false};
  std::atomic<int> resumed_{0};
  bool stopping_ = false;  // loop thread only
  bool sleeping_ = false;  // loop thread only
  mutable std::mutex mu_;
  std::vector<std::string> ran_;
  std::vector<std::string> seen_;
  std::thread thread_;
};

class DeviceLibraryTest : public ::testing::Test {
 protected:
  test::TempDir dir{"device-lib"};
  test::Mosquitto broker{dir};

  // The gateway's side: commands in, replies (and statuses) seen.
  std::unique_ptr<MqttProbe> caller(int version = 5) {
    test::MqttProbeOptions o;
    o.uri = broker.uri();
    o.mqtt_version = version;
    auto probe = std::make_unique<MqttProbe>(o);
    probe->subscribe("dev/+/response/#");
    return probe;
  }
  static MqttPublishOptions v5(const std::string& box, const std::string& id, std::optional<std::uint32_t> expiry = {}) {
    MqttPublishOptions p;
    p.response_topic = "dev/" + box + "/response/" + id;
    p.correlation_data = id;
    p.message_expiry_interval = expiry;
    return p;
  }
};

TEST_F(DeviceLibraryTest, APersistentSessionDeliversACommandSentWhileTheDeviceWasAway) {
  for (int version : {5, 3}) {
    SCOPED_TRACE("MQTT " + std::to_string(version));
    const std::string box = "box-away-" + std::to_string(version);
    auto gateway = caller(version);
    {
      DeviceThread first({.port = broker.port(), .boxes = {box}, .version = version});
      ASSERT_TRUE(first.wait_up());
    }  // a clean stop: the session stays with the broker
    gateway->publish("dev/" + box + "/request/while-away", R"({"method":"ping"})", 1, v5(box, "while-away", 60));
    DeviceThread second({.port = broker.port(), .boxes = {box}, .version = version});
    ASSERT_TRUE(gateway->wait_for(1, 10s)) << "the command sent while the device was away never came back";
    auto replies = gateway->messages();
    EXPECT_EQ(replies[0].topic, "dev/" + box + "/response/while-away");
    EXPECT_EQ(replies[0].payload, R"({"id":"while-away","result":{"box":")" + box + R"(","ran":1}})");
    EXPECT_EQ(second.ran(), std::vector<std::string>{"while-away"});
  }
}

TEST_F(DeviceLibraryTest, ACleanSessionLosesWhatWasSentWhileAway) {
  // The contrast that shows why the library's default is a persistent session.
  auto gateway = caller();
  {
    DeviceThread first({.port = broker.port(), .persistent = false});
    ASSERT_TRUE(first.wait_up());
  }
  gateway->publish("dev/box-1/request/lost", R"({"method":"ping"})", 1, v5("box-1", "lost", 60));
  DeviceThread second({.port = broker.port(), .persistent = false});
  ASSERT_TRUE(second.wait_up());
  gateway->publish("dev/box-1/request/after", R"({"method":"ping"})", 1, v5("box-1", "after", 60));
  ASSERT_TRUE(gateway->wait_for(1, 10s));
  EXPECT_EQ(second.ran(), std::vector<std::string>{"after"});
}

TEST_F(DeviceLibraryTest, AnExpiredCommandIsNeverRun) {
  auto gateway = caller();
  {
    DeviceThread first({.port = broker.port()});
    ASSERT_TRUE(first.wait_up());
  }
  gateway->publish("dev/box-1/request/stale", R"({"method":"reboot"})", 1, v5("box-1", "stale", 1));
  gateway->publish("dev/box-1/request/fresh", R"({"method":"ping"})", 1, v5("box-1", "fresh", 60));
  std::this_thread::sleep_for(2200ms);  // the stale command's expiry (1 s) runs out while the box is away
  DeviceThread second({.port = broker.port()});
  ASSERT_TRUE(gateway->wait_for(1, 10s));
  std::this_thread::sleep_for(300ms);  // anything else the session held has arrived by now
  EXPECT_EQ(second.ran(), std::vector<std::string>{"fresh"}) << "the expired command ran";
  EXPECT_EQ(gateway->count(), 1u);
}

TEST_F(DeviceLibraryTest, ADuplicateIsAnsweredAgainButNeverRunTwice) {
  auto gateway = caller();
  DeviceThread device({.port = broker.port()});
  ASSERT_TRUE(device.wait_up());
  for (int i = 0; i < 3; ++i) {
    gateway->publish("dev/box-1/request/twice", R"({"method":"ping"})", 1, v5("box-1", "twice"));
    ASSERT_TRUE(gateway->wait_for(static_cast<std::size_t>(i + 1), 5s));
  }
  auto replies = gateway->messages();
  ASSERT_EQ(replies.size(), 3u);
  for (const auto& reply : replies) {
    EXPECT_EQ(reply.payload, R"({"id":"twice","result":{"box":"box-1","ran":1}})");
    EXPECT_EQ(reply.correlation_data, "twice");
  }
  EXPECT_EQ(device.ran(), std::vector<std::string>{"twice"});
}

TEST_F(DeviceLibraryTest, RepliesFollowTheBoxsOwnResponseTopicWithTheCorrelationData) {
  auto gateway = caller();
  DeviceThread device({.port = broker.port()});
  ASSERT_TRUE(device.wait_up());
  MqttPublishOptions own = v5("box-1", "r1");
  own.response_topic = "dev/box-1/response";
  own.correlation_data = "corr-1";
  gateway->publish("dev/box-1/request/r1", R"({"method":"ping"})", 1, own);
  MqttPublishOptions foreign = v5("box-1", "r2");
  foreign.response_topic = "dev/box-9/response/r2";
  gateway->publish("dev/box-1/request/r2", R"({"method":"ping"})", 1, foreign);
  gateway->publish("dev/box-1/request/r3", "{not json", 1, v5("box-1", "r3"));
  ASSERT_TRUE(gateway->wait_for(3, 5s));
  auto replies = gateway->messages();
  std::map<std::string, MqttMessage> by_topic;
  for (const auto& r : replies) by_topic[r.topic] = r;
  ASSERT_TRUE(by_topic.count("dev/box-1/response")) << "the v5 Response Topic (the box's own, without the id)";
  EXPECT_EQ(by_topic["dev/box-1/response"].correlation_data, "corr-1");
  EXPECT_NE(by_topic["dev/box-1/response"].payload.find(R"("id":"r1")"), std::string::npos);
  EXPECT_TRUE(by_topic.count("dev/box-1/response/r2")) << "another box's topic is never used";
  ASSERT_TRUE(by_topic.count("dev/box-1/response/r3"));
  EXPECT_NE(by_topic["dev/box-1/response/r3"].payload.find(R"("code":"bad_json")"), std::string::npos);
  EXPECT_EQ(device.ran().size(), 2u) << "a payload that is not JSON never reaches the handler";
}

TEST_F(DeviceLibraryTest, PresenceOnlineTheWillOnABreakAndOfflineOnACleanStop) {
  MqttProbe watcher(broker.port());
  watcher.subscribe("dev/box-1/status");
  DeviceThread device({.port = broker.port()});
  ASSERT_TRUE(test::eventually([&] { return watcher.count() == 1; }, 10s));
  EXPECT_EQ(watcher.messages().back().payload, "online");
  MqttProbe late(broker.port());
  late.subscribe("dev/box-1/status");
  ASSERT_TRUE(late.wait_for(1, 5s)) << "the status is retained: a late subscriber gets it";
  EXPECT_TRUE(late.messages()[0].retained);
  EXPECT_EQ(late.messages()[0].payload, "online");
  device.interrupt(1500ms);  // no DISCONNECT: the broker publishes the will
  ASSERT_TRUE(test::eventually([&] { return watcher.count() == 2; }, 5s));
  EXPECT_EQ(watcher.messages().back().payload, "offline");
  ASSERT_TRUE(test::eventually([&] { return watcher.count() == 3; }, 10s)) << "back online after the outage";
  EXPECT_EQ(watcher.messages().back().payload, "online");
  device.stop();
  ASSERT_TRUE(test::eventually([&] { return watcher.count() == 4; }, 5s));
  EXPECT_EQ(watcher.messages().back().payload, "offline");
}

TEST_F(DeviceLibraryTest, AReplyMadeWhileTheConnectionIsDownGoesOutOnTheNextOne) {
  auto gateway = caller();
  DeviceThread device({.port = broker.port(), .hold_replies = true});
  ASSERT_TRUE(device.wait_up());
  gateway->publish("dev/box-1/request/held", R"({"method":"slow"})", 1, v5("box-1", "held"));
  ASSERT_TRUE(test::eventually([&] { return device.held() == 1; }, 5s));
  device.interrupt(1000ms);
  ASSERT_TRUE(test::eventually([&] { return !device.up(); }, 5s));
  device.answer_held();  // answered while down: waits in the outbox
  ASSERT_TRUE(gateway->wait_for(1, 10s)) << "the reply made while down never arrived";
  EXPECT_EQ(gateway->messages()[0].payload, R"({"id":"held","result":{"held":true}})");
  EXPECT_EQ(gateway->messages()[0].correlation_data, "held");
}

TEST_F(DeviceLibraryTest, ADeviceGatewayServesManyBoxesOnOneConnectionWithoutAWill) {
  auto gateway = caller();
  MqttProbe watcher(broker.port());
  watcher.subscribe("dev/+/status");
  DeviceThread device({.port = broker.port(), .boxes = {"gw-a", "gw-b", "gw-c"}});
  ASSERT_TRUE(device.wait_up());
  ASSERT_TRUE(test::eventually([&] { return watcher.count() == 3; }, 5s)) << "each box announced online";
  for (const char* box : {"gw-a", "gw-b", "gw-c"}) {
    gateway->publish(std::string("dev/") + box + "/request/q-" + box, R"({"method":"ping"})", 1,
                     v5(box, std::string("q-") + box));
  }
  gateway->publish("dev/gw-z/request/not-mine", R"({"method":"ping"})", 1, v5("gw-z", "not-mine"));
  ASSERT_TRUE(gateway->wait_for(3, 5s));
  std::this_thread::sleep_for(200ms);  // a reply that should not come: time for it to show
  EXPECT_EQ(gateway->count(), 3u) << "a box it does not serve gets nothing";
  device.interrupt(1000ms);
  std::this_thread::sleep_for(500ms);  // a will that should not fire: time for the broker to publish it
  for (const auto& m : watcher.messages()) EXPECT_EQ(m.payload, "online") << "a shared connection leaves no will";
}

TEST_F(DeviceLibraryTest, ARetainedCommandIsNeverRun) {
  // Someone published a command with retain: every subscribe would deliver
  // it again. The device drops it and runs the live one after it.
  auto gateway = caller();
  MqttPublishOptions retained = v5("box-1", "kept");
  retained.retained = true;
  gateway->publish("dev/box-1/request/kept", R"({"method":"reboot"})", 1, retained);
  DeviceThread device({.port = broker.port()});
  ASSERT_TRUE(device.wait_up());
  gateway->publish("dev/box-1/request/live", R"({"method":"ping"})", 1, v5("box-1", "live"));
  ASSERT_TRUE(gateway->wait_for(1, 5s));
  std::this_thread::sleep_for(200ms);  // a run that should not happen: time for it to show
  EXPECT_EQ(device.ran(), std::vector<std::string>{"live"});
  gateway->publish("dev/box-1/request/kept", "", 1, retained);  // clear it
}

TEST_F(DeviceLibraryTest, TwoDevicesWithOneClientIdBackOffInsteadOfKickingEachOtherInALoop) {
  // The broker drops the older of two connections with one client id. The
  // backoff starts over only after a connection that lasted 10 s, so the two
  // settle into the backoff (cap 200 ms here) instead of reconnecting at
  // once every time (thousands of takeovers in 3 s).
  DeviceThread a({.port = broker.port()});
  ASSERT_TRUE(a.wait_up());
  DeviceThread b({.port = broker.port()});
  std::this_thread::sleep_for(3s);  // the point: how often they reconnect in 3 s
  EXPECT_GE(a.connects() + b.connects(), 3) << "they do take each other over";
  EXPECT_LT(a.connects() + b.connects(), 80) << "a tight reconnect loop";
}

TEST_F(DeviceLibraryTest, ABoxTopicHookGetsItsBoxsMessagesOnly) {
  // Where desired state plugs in: {prefix}/{box}/<suffix> for every box served.
  DeviceThread device({.port = broker.port(), .boxes = {"box-1", "box-2"}, .box_topic = "desired/#"});
  ASSERT_TRUE(device.wait_up());
  MqttProbe backend(broker.port());
  backend.publish("dev/box-2/desired/led", R"({"on":true})");
  backend.publish("dev/box-3/desired/led", R"({"on":false})");  // not served: never subscribed
  backend.publish("dev/box-1/desired", "{}");                   // matches desired/# too
  ASSERT_TRUE(test::eventually([&] { return device.seen().size() == 2; }, 5s));
  std::this_thread::sleep_for(200ms);  // the other box's message, which should not come: time for it to show
  EXPECT_EQ(device.seen(), (std::vector<std::string>{R"(box-2 desired/led {"on":true})", "box-1 desired {}"}));
}

// mosquitto's default Receive Maximum (20 in flight): a DISCONNECT right
// after 50 statuses would lose the 30 libmosquitto still holds back.
class DeviceLibraryNarrowBrokerTest : public ::testing::Test {
 protected:
  test::TempDir dir{"device-lib-narrow"};
  test::Mosquitto broker{dir, 0, {"max_inflight_messages 20"}};
};

TEST_F(DeviceLibraryNarrowBrokerTest, EveryBoxOfABigGatewayGoesOfflineOnStopAndOnlineOnResume) {
  std::vector<std::string> boxes;
  for (int i = 1; i <= 50; ++i) boxes.push_back("gw-" + std::to_string(i));
  MqttProbe watcher(broker.port());
  watcher.subscribe("dev/+/status");
  DeviceThread device({.port = broker.port(), .boxes = boxes});
  ASSERT_TRUE(device.wait_up());
  ASSERT_TRUE(watcher.wait_for(50, 5s)) << "each box announced online";

  device.sleep_and_resume();
  ASSERT_TRUE(watcher.wait_for(150, 10s)) << watcher.count() << " statuses: 50 offline and 50 online expected";
  ASSERT_TRUE(test::eventually([&] { return device.up(); }, 5s));
  EXPECT_EQ(device.resumed(), 1);
  EXPECT_EQ(device.connects(), 2);
  std::map<std::string, std::vector<std::string>> by_box;
  for (const auto& m : watcher.messages()) by_box[m.topic].push_back(m.payload);
  ASSERT_EQ(by_box.size(), 50u);
  const std::vector<std::string> expected{"online", "offline", "online"};
  for (const auto& [topic, statuses] : by_box) EXPECT_EQ(statuses, expected) << topic;

  device.stop();
  MqttProbe late(broker.port());
  late.subscribe("dev/+/status");
  ASSERT_TRUE(test::eventually(
      [&] {
        auto retained = late.messages();
        return retained.size() == 50 && std::all_of(retained.begin(), retained.end(), [](const MqttMessage& m) {
                 return m.retained && m.payload == "offline";
               });
      },
      5s))
      << late.count() << " retained statuses; offline expected for all 50";
}

}  // namespace
}  // namespace boxgate::itest
