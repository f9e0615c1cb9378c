// CommandService's state machine against small fakes of its three ports: the
// stages, the step order, the sequence guard against a reused id, and
// completion from inside the ports' calls (which the real clients never do,
// and ASan checks that nothing touches a finished command).

#include "commands/command_service.hpp"
#include "commands/command_status.hpp"
#include "commands/message_service.hpp"

#include <event2/event.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "boxgate/stored_reply.hpp"

using namespace boxgate;
using namespace boxgate::gateway;
using namespace std::chrono_literals;

namespace {

struct FakeChannels final : ReplyChannels {
  bool is_up = true;
  bool confirm_at_once = false;  // call on_subscribed() from inside subscribe()
  redis::Subscriber::Result result = redis::Subscriber::Result::ok;
  std::map<std::string, redis::Subscriber::Listener*> listeners;
  std::vector<std::string> unsubscribed;

  bool up() const override { return is_up; }
  redis::Subscriber::Result subscribe(const std::string& channel, redis::Subscriber::Listener* l) override {
    if (result != redis::Subscriber::Result::ok) return result;
    listeners[channel] = l;
    if (confirm_at_once) l->on_subscribed();
    return redis::Subscriber::Result::ok;
  }
  void unsubscribe(const std::string& channel, redis::Subscriber::Listener*) override {
    listeners.erase(channel);
    unsubscribed.push_back(channel);
  }
  redis::Subscriber::Listener& listener(const std::string& channel) { return *listeners.at(channel); }
};

struct FakeState final : StateStore {
  bool is_up = true;
  bool answer_at_once = true;  // GETs; SET NX is always answered at once
  std::map<std::string, std::string> keys;
  std::vector<std::string> removed;
  std::vector<std::pair<std::string, redis::Commands::GetCallback>> queued;  // when !answer_at_once
  int gets = 0;
  std::vector<std::string> sent;  // "GET key" / "SET NX key", in order
  std::map<std::string, std::int64_t> ttls;  // the PX of the last SET NX per key

  bool up() const override { return is_up; }
  bool get(const std::string& key, redis::Commands::GetCallback done) override {
    if (!is_up) return false;
    ++gets;
    sent.push_back("GET " + key);
    if (!answer_at_once) {
      queued.emplace_back(key, std::move(done));
      return true;
    }
    answer(key, done);
    return true;
  }
  void answer(const std::string& key, redis::Commands::GetCallback& done) {
    auto it = keys.find(key);
    done(true, it == keys.end() ? std::nullopt : std::make_optional(it->second));
  }
  void answer_queued() {
    auto pending = std::move(queued);
    queued.clear();
    for (auto& [key, done] : pending) answer(key, done);
  }
  bool lose_creates = false;  // the connection breaks before Redis answers the SET NX
  bool create(const std::string& key, std::string_view value, std::int64_t ttl_ms, CreateCallback done) override {
    if (!is_up) return false;
    sent.push_back("SET NX " + key);
    ttls[key] = ttl_ms;
    if (lose_creates) {
      done(Created::lost);
      return true;
    }
    bool fresh = keys.emplace(key, std::string(value)).second;
    done(fresh ? Created::created : Created::exists);
    return true;
  }
  bool update(const std::string& key, std::string_view value) override {
    if (auto it = keys.find(key); it != keys.end()) it->second = value;
    return is_up;
  }
  bool remove(const std::string& key) override {
    keys.erase(key);
    removed.push_back(key);
    return is_up;
  }
};

struct Published {
  std::string topic, payload;
  std::uint32_t expiry_s;
};

struct FakePublisher final : CommandPublisher {
  bool is_connected = true;
  bool accept = true;
  std::function<void()> inside_publish;  // e.g. a reply arriving at once
  std::vector<Published> sent;

  bool connected() const override { return is_connected; }
  std::vector<mqtt::Client::AckHandler> acks;  // one per accepted publish, in order

  bool publish(const std::string& topic, std::string_view payload, int, const mqtt::ResponseProperties* v5,
               mqtt::Client::AckHandler on_ack) override {
    if (!accept) return false;
    sent.push_back({topic, std::string(payload), v5 ? v5->expiry_s : 0});
    acks.push_back(std::move(on_ack));
    if (inside_publish) inside_publish();
    return true;
  }
};

class CommandServiceTest : public ::testing::Test {
 protected:
  CommandServiceTest() : topics("dev") { make_service(100, 100, 1 << 20); }

  void make_service(std::size_t max_pending, std::size_t per_device, std::size_t max_bytes) {
    service.reset();
    service = std::make_unique<CommandService>(loop, topics, CommandSettings{max_pending, per_device, max_bytes, 1},
                                               CommandPorts{channels, results, publisher}, metrics);
  }

  // Submits a command; its result lands in results_by_id[id].
  void submit(const std::string& id, bool caller_id = false, std::chrono::milliseconds timeout = 10s,
              const std::string& box = "box-1", std::string payload = R"({"id":"x"})",
              CommandMode mode = CommandMode::sync, std::string body_hash = "") {
    CommandRequest request{*BoxId::parse(box), *RequestId::parse(id), caller_id, std::move(payload), timeout,
                           std::move(body_hash), mode, {}};
    service->submit(std::move(request), [this, id](CommandResult&& r) { done[id].push_back(std::move(r)); });
  }
  std::string channel(const std::string& id, const std::string& box = "box-1") { return "dev/" + box + "/response/" + id; }
  std::string record_key(const std::string& id, const std::string& box = "box-1") {
    return "dev/" + box + "/command/" + id;
  }
  // A reply stored for a command some gateway sent (its record says so).
  void plant(const std::string& id, const std::string& reply, const std::string& body_hash = "") {
    CommandRecord r;
    r.box_id = "box-1";
    r.request_id = id;
    r.body_sha256 = body_hash;
    r.accepted_ms = now_ms();
    r.deadline_ms = r.accepted_ms + 10000;
    r.gateway = "other";
    results.keys[record_key(id)] = r.to_json();
    results.keys[channel(id)] = reply;
  }
  Outcome outcome(const std::string& id) {
    EXPECT_EQ(done[id].size(), 1u) << id << " must complete exactly once";
    return done[id].empty() ? Outcome::client_gone : done[id].back().outcome;
  }

  EventLoop loop;
  Topics topics;
  ops::Metrics metrics;
  FakeChannels channels;
  FakeState results;
  FakePublisher publisher;
  std::map<std::string, std::vector<CommandResult>> done;
  std::unique_ptr<CommandService> service;  // last: its destructor completes what still waits
};

TEST_F(CommandServiceTest, PublishesOnlyAfterTheSubscriptionIsConfirmed) {
  submit("r1");
  EXPECT_TRUE(publisher.sent.empty()) << "a fast reply would be lost before the confirmation";
  channels.listener(channel("r1")).on_subscribed();
  ASSERT_EQ(publisher.sent.size(), 1u);
  EXPECT_EQ(publisher.sent[0].topic, "dev/box-1/request/r1");
  EXPECT_EQ(publisher.sent[0].payload, R"({"id":"x"})");
  EXPECT_EQ(publisher.sent[0].expiry_s, 10u);
  channels.listener(channel("r1")).on_message(R"({"id":"r1","result":1})");
  EXPECT_EQ(outcome("r1"), Outcome::ok);
  EXPECT_EQ(done["r1"][0].reply, R"({"id":"r1","result":1})");
  EXPECT_EQ(channels.unsubscribed, std::vector<std::string>{channel("r1")});
  EXPECT_EQ(service->pending(), 0u);
  EXPECT_EQ(service->pending_bytes(), 0u);
}

TEST_F(CommandServiceTest, AStoredReplyComesBeforeEveryRefusal) {
  plant("kept", "stored");
  service->start_draining();
  publisher.is_connected = false;
  submit("kept", true);
  EXPECT_EQ(outcome("kept"), Outcome::replayed);
  EXPECT_EQ(done["kept"][0].reply, "stored");
  EXPECT_TRUE(channels.listeners.empty());
  EXPECT_TRUE(publisher.sent.empty());
  // Without a stored reply the refusals apply, in order.
  submit("fresh", true);
  EXPECT_EQ(outcome("fresh"), Outcome::shutting_down);
}

TEST_F(CommandServiceTest, RefusalsInContractOrder) {
  channels.is_up = false;
  publisher.is_connected = false;
  submit("a");
  EXPECT_EQ(outcome("a"), Outcome::redis_unavailable);
  channels.is_up = true;
  submit("b");
  EXPECT_EQ(outcome("b"), Outcome::mqtt_unavailable);
  results.is_up = false;
  submit("c", true);  // the stored reply cannot be read: Redis is down
  EXPECT_EQ(outcome("c"), Outcome::redis_unavailable);
}

TEST_F(CommandServiceTest, LimitsInCountBytesAndPerDevice) {
  make_service(3, 2, 3 * (100 + kPendingEntryBytes));
  const std::string body(100, 'x');
  submit("a", false, 10s, "box-1", body);
  submit("b", false, 10s, "box-1", body);
  submit("c", false, 10s, "box-1", body);
  EXPECT_EQ(outcome("c"), Outcome::device_busy);
  done.erase("c");
  submit("c", false, 10s, "box-2", body + "y");  // one byte over the budget
  EXPECT_EQ(outcome("c"), Outcome::too_many_bytes);
  done.erase("c");
  submit("c", false, 10s, "box-2", body);  // exactly the budget
  EXPECT_TRUE(done["c"].empty());
  EXPECT_EQ(service->pending_bytes(), 3 * (100 + kPendingEntryBytes));
  submit("d", false, 10s, "box-3", "{}");
  EXPECT_EQ(outcome("d"), Outcome::too_many_pending);
  submit("a", false, 10s, "box-4", "{}");
  EXPECT_EQ(done["a"].back().outcome, Outcome::duplicate_request_id);
  EXPECT_EQ(service->pending(), 3u);
}

TEST_F(CommandServiceTest, CompletionFromInsideSubscribeAndPublish) {
  channels.confirm_at_once = true;
  publisher.accept = false;
  submit("refused");  // subscribe -> on_subscribed -> publish fails -> finish, all inside submit()
  EXPECT_EQ(outcome("refused"), Outcome::mqtt_unavailable);
  EXPECT_EQ(channels.unsubscribed, std::vector<std::string>{channel("refused")});

  publisher.accept = true;
  publisher.inside_publish = [this] { channels.listener(channel("instant")).on_message("reply"); };
  submit("instant");  // the device answers before publish() returns
  EXPECT_EQ(outcome("instant"), Outcome::ok);
  EXPECT_EQ(service->pending(), 0u);
}

TEST_F(CommandServiceTest, AStaleReadNeverCompletesALaterCommandWithTheSameId) {
  results.answer_at_once = false;
  submit("same");
  channels.listener(channel("same")).on_subscribed();
  service->recheck_result_keys();  // a read of the key is now in flight
  channels.listener(channel("same")).on_message("first reply");
  EXPECT_EQ(outcome("same"), Outcome::ok);

  results.keys.erase(record_key("same"));  // as if its record had expired
  submit("same");  // the id is reused by a new command
  channels.listener(channel("same")).on_subscribed();
  results.keys[channel("same")] = "first reply";
  results.answer_queued();  // the old read returns
  EXPECT_EQ(done["same"].size(), 1u) << "the stale read completed the new command";
  EXPECT_EQ(service->pending(), 1u);
}

// A Redis restart without persistence: the reconnect writes back the record
// Redis lost, byte for byte and with the TTL it had left, before reading the
// result key; a record Redis still holds is left as it is.
TEST_F(CommandServiceTest, AReconnectWritesBackTheRecordsRedisLostBeforeTheRecheck) {
  submit("lost");
  channels.listener(channel("lost")).on_subscribed();
  submit("kept");
  channels.listener(channel("kept")).on_subscribed();
  const std::string as_sent = results.keys.at(record_key("lost"));
  const std::int64_t first_ttl = results.ttls.at(record_key("lost"));
  results.keys.erase(record_key("lost"));
  results.keys[record_key("kept")] = "what Redis kept";
  results.sent.clear();

  service->recheck_result_keys();
  EXPECT_EQ(results.keys.at(record_key("lost")), as_sent);
  EXPECT_EQ(results.keys.at(record_key("kept")), "what Redis kept");
  EXPECT_LE(results.ttls.at(record_key("lost")), first_ttl);
  EXPECT_GT(results.ttls.at(record_key("lost")), first_ttl - 1000);
  auto at = [this](const std::string& op) {
    return std::find(results.sent.begin(), results.sent.end(), op) - results.sent.begin();
  };
  for (const char* id : {"lost", "kept"}) {
    EXPECT_LT(at("SET NX " + record_key(id)), at("GET " + channel(id))) << id << ": record first";
    EXPECT_LT(at("GET " + channel(id)), static_cast<long>(results.sent.size())) << id << ": key read";
  }
  EXPECT_NE(metrics.render().find("boxgate_command_records_restored_total 1"), std::string::npos);
  EXPECT_EQ(service->pending(), 2u);
}

TEST_F(CommandServiceTest, AStoredReplyNoticeReadsTheResultKey) {
  submit("big");
  channels.listener(channel("big")).on_subscribed();
  results.keys[channel("big")] = "sixteen mebibytes";
  channels.listener(channel("big")).on_message(stored_reply_notice(16 << 20));
  EXPECT_EQ(outcome("big"), Outcome::ok);
  EXPECT_EQ(done["big"][0].reply, "sixteen mebibytes");
}

TEST_F(CommandServiceTest, ResubscriptionRereadsTheKey) {
  submit("gap");
  channels.listener(channel("gap")).on_subscribed();
  channels.listener(channel("gap")).on_resubscribed();
  EXPECT_TRUE(done["gap"].empty()) << "no reply stored yet: keep waiting";
  results.keys[channel("gap")] = "stored in the gap";
  channels.listener(channel("gap")).on_resubscribed();
  EXPECT_EQ(outcome("gap"), Outcome::ok);
}

TEST_F(CommandServiceTest, DrainEndTellsPublishedFromUnsent) {
  submit("sent");
  channels.listener(channel("sent")).on_subscribed();
  submit("unsent");  // never confirmed, so never published
  service->abandon_all();
  EXPECT_EQ(outcome("sent"), Outcome::delivered);
  EXPECT_EQ(outcome("unsent"), Outcome::shutting_down);
}

TEST_F(CommandServiceTest, CancelCompletesOnceAsClientGone) {
  submit("left");
  channels.listener(channel("left")).on_subscribed();
  service->cancel(*RequestId::parse("left"));
  EXPECT_EQ(outcome("left"), Outcome::client_gone);
  service->cancel(*RequestId::parse("left"));
  EXPECT_EQ(done["left"].size(), 1u);
}

// The one test that runs the loop: the deadline timer, then the final read.
TEST_F(CommandServiceTest, DeadlineReadsTheKeyOnceThenTimesOut) {
  submit("slow", false, 1ms);
  channels.listener(channel("slow")).on_subscribed();
  for (int i = 0; i < 200 && done["slow"].empty(); ++i) event_base_loop(loop.base(), EVLOOP_ONCE);
  EXPECT_EQ(outcome("slow"), Outcome::device_timeout);
  EXPECT_EQ(results.gets, 1);
}

}  // namespace

namespace {

// Redis that never answers (stalled): the reads an answer waits on are bounded.
TEST_F(CommandServiceTest, AStalledFinalReadStillEndsInATimeout) {
  results.answer_at_once = false;
  submit("stuck", false, 1ms);
  channels.listener(channel("stuck")).on_subscribed();
  for (int i = 0; i < 2000 && done["stuck"].empty(); ++i) event_base_loop(loop.base(), EVLOOP_ONCE);
  EXPECT_EQ(outcome("stuck"), Outcome::device_timeout);
  EXPECT_EQ(results.queued.size(), 1u) << "the final read never came back";
  results.answer_queued();  // a late answer changes nothing
  EXPECT_EQ(done["stuck"].size(), 1u);
}

TEST_F(CommandServiceTest, AStalledStoredReplyLookUpIsRefusedSafely) {
  results.answer_at_once = false;
  submit("retry", true, 10ms);
  for (int i = 0; i < 2000 && done["retry"].empty(); ++i) event_base_loop(loop.base(), EVLOOP_ONCE);
  EXPECT_EQ(outcome("retry"), Outcome::redis_unavailable);
  EXPECT_TRUE(publisher.sent.empty());
  results.keys[channel("retry")] = "late";
  results.answer_queued();
  EXPECT_EQ(done["retry"].size(), 1u);
  EXPECT_EQ(service->pending(), 0u);
}

}  // namespace

namespace {

// The broker connection breaks between admission and publish: the command was
// not sent, so it waits in grace for the reconnect instead of a 503.
TEST_F(CommandServiceTest, APublishThatFindsTheConnectionLostWaitsForTheReconnect) {
  make_service(100, 100, 1 << 20);
  CommandSettings settings{100, 100, 1 << 20, 1, 1000ms};
  service.reset();
  service = std::make_unique<CommandService>(loop, topics, settings, CommandPorts{channels, results, publisher},
                                             metrics);
  submit("lost");
  publisher.accept = false;
  publisher.is_connected = false;  // the publish finds the connection gone
  channels.listener(channel("lost")).on_subscribed();
  EXPECT_TRUE(done["lost"].empty()) << "held, not refused";
  EXPECT_TRUE(channels.unsubscribed.empty()) << "stays subscribed while it waits";
  EXPECT_EQ(service->pending(), 1u);
  publisher.accept = true;
  publisher.is_connected = true;
  service->dependencies_changed();
  ASSERT_EQ(publisher.sent.size(), 1u);
  EXPECT_EQ(publisher.sent[0].payload, R"({"id":"x"})") << "the payload survived the detour";
  channels.listener(channel("lost")).on_message("reply");
  EXPECT_EQ(outcome("lost"), Outcome::ok);
}

}  // namespace

namespace {

// ... and when the broker does not come back within the grace, the unsent
// command is refused as mqtt_unavailable (never published, safe to retry).
TEST_F(CommandServiceTest, AnUnsentCommandIsRefusedWhenTheGraceEnds) {
  service.reset();
  service = std::make_unique<CommandService>(loop, topics, CommandSettings{100, 100, 1 << 20, 1, 20ms},
                                             CommandPorts{channels, results, publisher}, metrics);
  submit("gone");
  publisher.accept = false;
  publisher.is_connected = false;
  channels.listener(channel("gone")).on_subscribed();
  EXPECT_TRUE(done["gone"].empty());
  for (int i = 0; i < 2000 && done["gone"].empty(); ++i) event_base_loop(loop.base(), EVLOOP_ONCE);
  EXPECT_EQ(outcome("gone"), Outcome::mqtt_unavailable);
  EXPECT_TRUE(publisher.sent.empty());
  EXPECT_EQ(channels.unsubscribed, std::vector<std::string>{channel("gone")});
  EXPECT_EQ(service->pending(), 0u);
}

}  // namespace

namespace {

// ---- the command record (issue: command lifecycle) ----------------------

TEST_F(CommandServiceTest, TheRecordIsWrittenBeforeThePublishAndNotesTheEnd) {
  submit("rec", false, 10s, "box-1", R"({"id":"x"})", CommandMode::sync, "hash-1");
  auto record = parse_record(results.keys.at(record_key("rec")));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, CommandState::pending);
  EXPECT_EQ(record->body_sha256, "hash-1");
  EXPECT_EQ(record->deadline_ms - record->accepted_ms, 10000);
  EXPECT_TRUE(publisher.sent.empty());
  channels.listener(channel("rec")).on_subscribed();
  ASSERT_EQ(publisher.sent.size(), 1u);
  channels.listener(channel("rec")).on_message("reply");
  EXPECT_EQ(outcome("rec"), Outcome::ok);
  EXPECT_EQ(parse_record(results.keys.at(record_key("rec")))->state, CommandState::succeeded);
}

TEST_F(CommandServiceTest, AnIdAnotherReplicaHoldsIsRefusedAndNeverPublished) {
  plant("held", "ignored");
  results.keys.erase(channel("held"));  // recorded, no reply yet: still waiting there
  submit("held", true);
  EXPECT_EQ(outcome("held"), Outcome::duplicate_request_id);
  EXPECT_TRUE(channels.listeners.empty());
  EXPECT_TRUE(publisher.sent.empty());
  EXPECT_TRUE(results.keys.count(record_key("held"))) << "another's record is never deleted";
}

TEST_F(CommandServiceTest, TheSameIdWithAnotherBodyIsRefused) {
  plant("reuse", "stored", "hash-a");
  submit("reuse", true, 10s, "box-1", R"({"id":"x"})", CommandMode::sync, "hash-b");
  EXPECT_EQ(outcome("reuse"), Outcome::request_id_reused);
  EXPECT_TRUE(publisher.sent.empty());
}

TEST_F(CommandServiceTest, AReplyNoRecordClaimsIsDeletedNotReplayed) {
  results.keys[channel("planted")] = "forged";
  submit("planted", true);
  EXPECT_TRUE(done["planted"].empty()) << "runs as a new command";
  EXPECT_EQ(results.removed, std::vector<std::string>{channel("planted")});
  channels.listener(channel("planted")).on_subscribed();
  EXPECT_EQ(publisher.sent.size(), 1u);
  service->recheck_result_keys();
  EXPECT_TRUE(done["planted"].empty()) << "the forged reply is gone";
}

TEST_F(CommandServiceTest, ARaceLostAtTheRecordIsRefusedWithoutTouchingIt) {
  // Another replica's SET NX came first (no look-up stands between: the id
  // is not the caller's, or both looked before either wrote).
  results.keys[record_key("race")] = "theirs";
  submit("race");
  EXPECT_EQ(outcome("race"), Outcome::duplicate_request_id);
  EXPECT_EQ(results.keys.at(record_key("race")), "theirs");
  EXPECT_TRUE(publisher.sent.empty());
  EXPECT_TRUE(channels.listeners.empty());
}

TEST_F(CommandServiceTest, ACommandNeverPublishedDeletesItsRecord) {
  publisher.accept = false;  // the outgoing queue is full
  submit("full");
  channels.listener(channel("full")).on_subscribed();
  EXPECT_EQ(outcome("full"), Outcome::mqtt_unavailable);
  EXPECT_FALSE(results.keys.count(record_key("full"))) << "a retry must be able to send it";
}

TEST_F(CommandServiceTest, ATimeoutNotesWhetherTheBrokerTookTheCommand) {
  submit("late", false, 1ms);
  channels.listener(channel("late")).on_subscribed();
  ASSERT_EQ(publisher.acks.size(), 1u);
  publisher.acks[0](true);  // PUBACK
  for (int i = 0; i < 200 && done["late"].empty(); ++i) event_base_loop(loop.base(), EVLOOP_ONCE);
  EXPECT_EQ(outcome("late"), Outcome::device_timeout);
  EXPECT_EQ(done["late"][0].delivered, std::optional<bool>(true));
  auto record = parse_record(results.keys.at(record_key("late")));
  ASSERT_TRUE(record);
  EXPECT_EQ(record->state, CommandState::timed_out);
  EXPECT_EQ(record->delivered, std::optional<bool>(true));

  // A retry of that id is told so, and nothing is sent again.
  submit("late", true);
  EXPECT_EQ(done["late"].back().outcome, Outcome::timed_out_before);
  EXPECT_EQ(done["late"].back().delivered, std::optional<bool>(true));
  EXPECT_EQ(publisher.sent.size(), 1u);
}

TEST_F(CommandServiceTest, AnAsyncCommandIsAcceptedOncePublishedAndOutlivesItsCaller) {
  submit("job", false, 60s, "box-1", R"({"id":"x"})", CommandMode::async);
  EXPECT_TRUE(done["job"].empty());
  channels.listener(channel("job")).on_subscribed();
  ASSERT_EQ(outcome("job"), Outcome::accepted);
  EXPECT_EQ(parse_record(done["job"][0].reply)->mode, CommandMode::async);
  EXPECT_EQ(service->pending(), 1u);
  EXPECT_EQ(service->callers_waiting(), 0u) << "a drain does not wait for it";
  service->cancel(*RequestId::parse("job"));  // the caller's connection closes
  EXPECT_EQ(service->pending(), 1u);
  // An async retry is accepted again; a sync one is a duplicate.
  submit("job", true, 60s, "box-1", R"({"id":"x"})", CommandMode::async);
  EXPECT_EQ(done["job"].back().outcome, Outcome::accepted);
  submit("job", true, 60s);
  EXPECT_EQ(done["job"].back().outcome, Outcome::duplicate_request_id);
  std::size_t answers = done["job"].size();
  channels.listener(channel("job")).on_message("done");
  EXPECT_EQ(done["job"].size(), answers) << "nobody to answer";
  EXPECT_EQ(parse_record(results.keys.at(record_key("job")))->state, CommandState::succeeded);
  EXPECT_EQ(service->pending(), 0u);
}

TEST(CommandRecord, StatusFollowsRecordReplyAndClock) {
  CommandRecord r;
  r.box_id = "b";
  r.request_id = "r";
  r.body_sha256 = "h";
  r.gateway = "g";
  r.accepted_ms = 1000;
  r.deadline_ms = 2000;
  EXPECT_EQ(status_of(r, false, 1500).state, CommandState::pending);
  EXPECT_EQ(status_of(r, false, 2500).state, CommandState::timed_out) << "its gateway is gone";
  EXPECT_EQ(status_of(r, true, 1500).state, CommandState::succeeded);
  EXPECT_FALSE(status_of(r, true, 1500).late);
  r.state = CommandState::timed_out;
  EXPECT_TRUE(status_of(r, true, 2500).late);
  auto back = parse_record(r.to_json());
  ASSERT_TRUE(back);
  EXPECT_EQ(back->to_json(), r.to_json());
  EXPECT_FALSE(parse_record("[]"));
  EXPECT_FALSE(parse_record(std::string(5000, ' ')));
  EXPECT_FALSE(parse_record(R"({"box_id":"b"})"));
}

}  // namespace

namespace {

struct FakePresence final : DevicePresence {
  std::optional<bool> answer;  // what the hash says
  bool ok = true;
  int reads = 0;
  bool online(const BoxId&, Callback done) override {
    ++reads;
    done(ok, answer);
    return true;
  }
};

TEST_F(CommandServiceTest, OfflinePolicyFailRefusesAnOfflineBoxBeforeAnyPublish) {
  FakePresence presence;
  presence.answer = false;
  service.reset();
  service = std::make_unique<CommandService>(loop, topics, CommandSettings{100, 100, 1 << 20, 1},
                                             CommandPorts{channels, results, publisher, &presence}, metrics);
  submit("off");
  EXPECT_EQ(outcome("off"), Outcome::device_offline);
  EXPECT_TRUE(publisher.sent.empty());
  EXPECT_FALSE(results.keys.count(record_key("off")));
  presence.answer = std::nullopt;  // nothing stored: sent as usual
  submit("unknown");
  channels.listener(channel("unknown")).on_subscribed();
  EXPECT_EQ(publisher.sent.size(), 1u);
  presence.ok = false;  // Redis failed the read: sent as usual
  presence.answer = false;
  submit("unread");
  channels.listener(channel("unread")).on_subscribed();
  EXPECT_EQ(publisher.sent.size(), 2u);
}

}  // namespace

namespace {

// ---- failure paths of the record, the status reads and one-way messages ----

TEST_F(CommandServiceTest, ARecordLostWithTheConnectionIsWrittenAgainOnTheReconnect) {
  results.lose_creates = true;
  submit("blip");
  channels.listener(channel("blip")).on_subscribed();
  EXPECT_TRUE(publisher.sent.empty()) << "not published without its record";
  EXPECT_TRUE(done["blip"].empty()) << "a blip is not a 503";
  results.lose_creates = false;
  service->recheck_result_keys();  // the command connection is back
  ASSERT_EQ(publisher.sent.size(), 1u);
  EXPECT_TRUE(results.keys.count(record_key("blip")));
}

class StatusReaderTest : public CommandServiceTest {
 protected:
  StatusReaderTest() : reader(loop, topics, channels, results, metrics) {}
  void read(const std::string& id, std::chrono::milliseconds wait) {
    reader.read(*BoxId::parse("box-1"), *RequestId::parse(id), wait,
                [this](StatusAnswer&& a) { answers.push_back(std::move(a)); });
  }
  CommandStatusReader reader;
  std::vector<StatusAnswer> answers;
};

TEST_F(StatusReaderTest, UnknownIdsAndADeadRedisAreAnsweredAtOnce) {
  results.keys[channel("nobody")] = "a reply no record claims";
  read("nobody", 0ms);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_EQ(answers[0].kind, StatusAnswer::Kind::unknown) << "a reply without a record is never shown";
  results.is_up = false;
  read("nobody", 1000ms);
  ASSERT_EQ(answers.size(), 2u);
  EXPECT_EQ(answers[1].kind, StatusAnswer::Kind::unavailable);
}

TEST_F(StatusReaderTest, ALongPollEndsWithTheReplyAndLeavesTheChannel) {
  plant("job", "ignored");
  results.keys.erase(channel("job"));  // pending
  read("job", 10000ms);
  EXPECT_TRUE(answers.empty()) << "pending: it waits";
  channels.listener(channel("job")).on_subscribed();
  EXPECT_TRUE(answers.empty());
  results.keys[channel("job")] = R"({"result":1})";
  channels.listener(channel("job")).on_message(R"({"result":1})");
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_NE(answers[0].body.find(R"("state":"succeeded")"), std::string::npos) << answers[0].body;
  EXPECT_NE(answers[0].body.find(R"("reply":{"result":1})"), std::string::npos) << answers[0].body;
  EXPECT_EQ(channels.unsubscribed, std::vector<std::string>{channel("job")});
  EXPECT_EQ(reader.watching(), 0u);
}

TEST_F(StatusReaderTest, ALongPollWhoseWaitEndsAnswersPending) {
  plant("slow", "ignored");
  results.keys.erase(channel("slow"));
  read("slow", 1ms);
  for (int i = 0; i < 200 && answers.empty(); ++i) event_base_loop(loop.base(), EVLOOP_ONCE);
  ASSERT_EQ(answers.size(), 1u);
  EXPECT_NE(answers[0].body.find(R"("state":"pending")"), std::string::npos) << answers[0].body;
}

class MessageServiceTest : public CommandServiceTest {
 protected:
  void make(std::size_t max_in_flight = 10) {
    messages = std::make_unique<MessageService>(loop, topics, MessageService::Settings{1, 5ms, max_in_flight},
                                                publisher, metrics);
  }
  void send(const std::string& id) {
    messages->send(*BoxId::parse("box-1"), *RequestId::parse(id), "{}",
                   [this, id](MessageService::Result r) { results_of[id].push_back(r); });
  }
  std::unique_ptr<MessageService> messages;
  std::map<std::string, std::vector<MessageService::Result>> results_of;
};

TEST_F(MessageServiceTest, EachWayAMessageCanEndIsAnsweredOnce) {
  make(2);
  send("acked");
  ASSERT_EQ(publisher.acks.size(), 1u);
  publisher.acks[0](true);
  publisher.acks[0] = nullptr;
  send("refused");
  publisher.acks[1](false);  // PUBACK with a failure reason, or the connection lost
  EXPECT_EQ(results_of["acked"], std::vector{MessageService::Result::acknowledged});
  EXPECT_EQ(results_of["refused"], std::vector{MessageService::Result::not_acknowledged});
  EXPECT_EQ(publisher.sent[0].topic, "dev/box-1/message/acked");

  publisher.accept = false;  // not connected, or the outgoing queue is full
  send("unsent");
  EXPECT_EQ(results_of["unsent"], std::vector{MessageService::Result::mqtt_unavailable});
  publisher.accept = true;

  send("silent-1");  // the broker never answers these two
  send("silent-2");
  send("third");  // two already wait for their PUBACK
  EXPECT_EQ(results_of["third"], std::vector{MessageService::Result::too_many});
  for (int i = 0; i < 200 && messages->in_flight() > 0; ++i) event_base_loop(loop.base(), EVLOOP_ONCE);
  EXPECT_EQ(results_of["silent-1"], std::vector{MessageService::Result::not_acknowledged});
  publisher.acks[2](true);  // a PUBACK after the bound changes nothing
  EXPECT_EQ(results_of["silent-1"].size(), 1u);

  messages->start_draining();
  send("late");
  EXPECT_EQ(results_of["late"], std::vector{MessageService::Result::shutting_down});
}

}  // namespace
