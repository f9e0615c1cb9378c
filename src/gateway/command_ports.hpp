#pragma once
// What CommandService needs from Redis and MQTT, as three small faces. The
// daemon binds them to the real clients (the adapters below); unit tests bind
// them to fakes, so the command state machine is tested without processes
// or timing.
//
// Thread ownership: loop thread only, like the clients behind them. A fake may
// call a Listener or a GetCallback from inside subscribe()/get();
// CommandService is written to survive that (the real clients never do it).

#include <string>
#include <string_view>

#include "boxgate/mqtt/client.hpp"
#include "boxgate/redis/commands.hpp"
#include "boxgate/redis/subscriber.hpp"

namespace boxgate::gateway {

// The reply channels (Redis pub/sub).
class ReplyChannels {
 public:
  virtual ~ReplyChannels() = default;
  virtual bool up() const = 0;
  virtual redis::Subscriber::Result subscribe(const std::string& channel, redis::Subscriber::Listener* listener) = 0;
  virtual void unsubscribe(const std::string& channel) = 0;
};

// The result keys (Redis GET on the command connection).
class ResultStore {
 public:
  virtual ~ResultStore() = default;
  virtual bool up() const = 0;
  // false when not sent (the callback is then never called).
  virtual bool get(const std::string& key, redis::Commands::GetCallback done) = 0;
};

// The command topics (MQTT).
class CommandPublisher {
 public:
  virtual ~CommandPublisher() = default;
  virtual bool connected() const = 0;
  // false when the command was not queued for the broker.
  virtual bool publish(const std::string& topic, std::string_view payload, int qos,
                       const mqtt::ResponseProperties* v5) = 0;
};

// ---- the real clients behind the faces ----------------------------------

class SubscriberChannels final : public ReplyChannels {
 public:
  explicit SubscriberChannels(redis::Subscriber& subscriber) : subscriber_(subscriber) {}
  bool up() const override { return subscriber_.up(); }
  redis::Subscriber::Result subscribe(const std::string& channel, redis::Subscriber::Listener* listener) override {
    return subscriber_.subscribe(channel, listener);
  }
  void unsubscribe(const std::string& channel) override { subscriber_.unsubscribe(channel); }

 private:
  redis::Subscriber& subscriber_;
};

class RedisResults final : public ResultStore {
 public:
  explicit RedisResults(redis::Commands& commands) : commands_(commands) {}
  bool up() const override { return commands_.up(); }
  bool get(const std::string& key, redis::Commands::GetCallback done) override {
    return commands_.get(key, std::move(done));
  }

 private:
  redis::Commands& commands_;
};

class MqttPublisher final : public CommandPublisher {
 public:
  explicit MqttPublisher(mqtt::Client& client) : client_(client) {}
  bool connected() const override { return client_.connected(); }
  bool publish(const std::string& topic, std::string_view payload, int qos,
               const mqtt::ResponseProperties* v5) override {
    return client_.publish(topic, payload, qos, v5);
  }

 private:
  mqtt::Client& client_;
};

}  // namespace boxgate::gateway
