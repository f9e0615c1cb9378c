#pragma once
// What the gateway's services need from Redis and MQTT, as three small faces. The
// daemon binds them to the real clients (the adapters below); unit tests bind
// them to fakes, so the command state machine is tested without processes
// or timing.
//
// Thread ownership: loop thread only, like the clients behind them. A fake may
// call a Listener or a GetCallback from inside subscribe()/get();
// CommandService is written to survive that (the real clients never do it).

#include <hiredis/hiredis.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "boxgate/ids.hpp"
#include "boxgate/mqtt/client.hpp"
#include "boxgate/outcome_events.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/subscriber.hpp"
#include "commands/command_request.hpp"

namespace boxgate::gateway {

// The reply channels (Redis pub/sub).
class ReplyChannels {
 public:
  virtual ~ReplyChannels() = default;
  virtual bool up() const = 0;
  virtual redis::Subscriber::Result subscribe(const std::string& channel, redis::Subscriber::Listener* listener) = 0;
  virtual void unsubscribe(const std::string& channel, redis::Subscriber::Listener* listener) = 0;
};

// The result keys and the command records (Redis, on the command connection).
class StateStore {
 public:
  // lost: the connection broke before Redis answered (it may come back);
  // failed: Redis answered with an error.
  enum class Created { created, exists, failed, lost };
  using CreateCallback = std::function<void(Created)>;

  virtual ~StateStore() = default;
  virtual bool up() const = 0;
  // Each returns false when not sent (the callback is then never called).
  virtual bool get(const std::string& key, redis::Commands::GetCallback done) = 0;
  // SET key value NX PX ttl: `exists` when another holds the key.
  virtual bool create(const std::string& key, std::string_view value, std::int64_t ttl_ms, CreateCallback done) = 0;
  // SET key value XX KEEPTTL (nothing when the key is gone), unanswered.
  virtual bool update(const std::string& key, std::string_view value) = 0;
  // DEL key, unanswered.
  virtual bool remove(const std::string& key) = 0;
};

// Two GETs pipelined on one connection (a record and its result key);
// `done` runs once both answered, with ok=false if either failed. false when
// not sent; `done` is then never called.
using PairCallback =
    std::function<void(bool ok, std::optional<std::string> first, std::optional<std::string> second)>;
inline bool get_pair(StateStore& store, const std::string& first, const std::string& second, PairCallback done) {
  struct Pair {
    PairCallback done;
    int answers = 0;
    bool ok = true;
    bool abandoned = false;
    std::optional<std::string> values[2];
  };
  auto pair = std::make_shared<Pair>();
  pair->done = std::move(done);
  auto answer = [pair](int slot) {
    return [pair, slot](bool ok, std::optional<std::string> value) {
      pair->ok = pair->ok && ok;
      pair->values[slot] = std::move(value);
      if (++pair->answers == 2 && !pair->abandoned) {
        pair->done(pair->ok, std::move(pair->values[0]), std::move(pair->values[1]));
      }
    };
  };
  if (!store.get(first, answer(0))) return false;
  if (!store.get(second, answer(1))) {
    pair->abandoned = true;  // the first one's answer is dropped
    return false;
  }
  return true;
}

// The command topics (MQTT).
class CommandPublisher {
 public:
  virtual ~CommandPublisher() = default;
  virtual bool connected() const = 0;
  // false when the command was not queued for the broker. on_ack: see
  // mqtt::Client::AckHandler (never called when publish() returns false).
  virtual bool publish(const std::string& topic, std::string_view payload, int qos,
                       const mqtt::ResponseProperties* v5, mqtt::Client::AckHandler on_ack) = 0;
};

// A box's presence (offline_policy=fail). online: nullopt when nothing is
// stored; ok=false when Redis failed. false when not sent.
class DevicePresence {
 public:
  using Callback = std::function<void(bool ok, std::optional<bool> online)>;
  virtual ~DevicePresence() = default;
  virtual bool online(const BoxId& box, Callback done) = 0;
};

// Where commands with a ttl go (queue/queue_service.hpp implements it).
class CommandQueue {
 public:
  virtual ~CommandQueue() = default;
  // Accepts `request` (request.ttl set) into its box's queue and completes
  // `done` once: accepted with the record (JSON), or a refusal. `known`: the
  // record its id already has, queued (a retry): it is only made sure that
  // the entry is there.
  virtual void enqueue(CommandRequest&& request, Completion done, const std::optional<CommandRecord>& known) = 0;
};

// Where command state changes are told: the outcome stream.
class OutcomeLog {
 public:
  virtual ~OutcomeLog() = default;
  // False when nothing is written: the service then builds no event.
  virtual bool enabled() const = 0;
  virtual void note(const OutcomeEvent& event) = 0;
};

// ---- the real clients behind the faces ----------------------------------

class SubscriberChannels final : public ReplyChannels {
 public:
  explicit SubscriberChannels(redis::Subscriber& subscriber) : subscriber_(subscriber) {}
  bool up() const override { return subscriber_.up(); }
  redis::Subscriber::Result subscribe(const std::string& channel, redis::Subscriber::Listener* listener) override {
    return subscriber_.subscribe(channel, listener);
  }
  void unsubscribe(const std::string& channel, redis::Subscriber::Listener* listener) override {
    subscriber_.unsubscribe(channel, listener);
  }

 private:
  redis::Subscriber& subscriber_;
};

class RedisState final : public StateStore {
 public:
  explicit RedisState(redis::Commands& commands) : commands_(commands) {}
  bool up() const override { return commands_.up(); }
  bool get(const std::string& key, redis::Commands::GetCallback done) override {
    return commands_.get(key, std::move(done));
  }
  bool create(const std::string& key, std::string_view value, std::int64_t ttl_ms, CreateCallback done) override {
    std::string ttl = std::to_string(ttl_ms);
    return commands_.run({"SET", key, value, "NX", "PX", ttl}, [done = std::move(done)](const redisReply* r) {
      if (!r) return done(Created::lost);
      if (r->type == REDIS_REPLY_ERROR) return done(Created::failed);
      done(r->type == REDIS_REPLY_NIL ? Created::exists : Created::created);
    });
  }
  bool update(const std::string& key, std::string_view value) override {
    return commands_.run({"SET", key, value, "XX", "KEEPTTL"}, {});
  }
  bool remove(const std::string& key) override { return commands_.run({"DEL", key}, {}); }

 private:
  redis::Commands& commands_;
};

class StreamOutcomes final : public OutcomeLog {
 public:
  explicit StreamOutcomes(StreamAppender& stream) : stream_(stream) {}
  bool enabled() const override { return stream_.enabled(); }
  void note(const OutcomeEvent& event) override { stream_.add(event); }

 private:
  StreamAppender& stream_;
};

class MqttPublisher final : public CommandPublisher {
 public:
  explicit MqttPublisher(mqtt::Client& client) : client_(client) {}
  bool connected() const override { return client_.connected(); }
  bool publish(const std::string& topic, std::string_view payload, int qos, const mqtt::ResponseProperties* v5,
               mqtt::Client::AckHandler on_ack) override {
    return client_.publish(topic, payload, qos, v5, std::move(on_ack));
  }

 private:
  mqtt::Client& client_;
};

}  // namespace boxgate::gateway
