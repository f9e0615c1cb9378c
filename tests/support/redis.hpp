#pragma once
// A real redis-server for integration tests, and a tiny blocking RESP2 client.
//
// Callers: RedisServer and RedisClient belong to the test thread that made
// them (not thread-safe). Subscriber reads on its own background thread; its
// public methods may be called from any thread (a mutex guards the messages).
// The redis-server child is stopped in the destructor (see Process), and a
// Subscriber closes its connection and joins its thread in its destructor.
// Errors (connection refused, timeouts, protocol errors) throw std::runtime_error.

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/tempdir.hpp"

namespace boxgate::test {

using namespace std::chrono_literals;

// One RESP2 reply.
struct RespValue {
  enum class Type { simple, error, integer, bulk, nil, array };
  Type type = Type::nil;
  std::string str;          // simple, error, bulk
  long long integer = 0;    // integer
  std::vector<RespValue> elements;  // array
  bool is_nil() const { return type == Type::nil; }
};

// An ACL user and password; empty: Redis's default user, no AUTH.
struct RedisCredentials {
  std::string user;
  std::string password;
  bool empty() const { return password.empty(); }
};

// A blocking connection to 127.0.0.1:port: one command, one reply.
class RedisClient {
 public:
  // With credentials, sends AUTH first and throws if Redis refuses it.
  explicit RedisClient(int port, std::chrono::milliseconds timeout = 5s, const RedisCredentials& credentials = {});
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Sends the command as a RESP array of bulk strings and reads one reply.
  // An error reply is returned as Type::error, not thrown.
  RespValue command(const std::vector<std::string>& args);

  bool ping();
  // AUTH user password; the error reply (Type::error) when refused.
  RespValue auth(const RedisCredentials& credentials);
  std::optional<std::string> get(const std::string& key);
  // SET key value [PX px] (px <= 0: no expiry).
  void set(const std::string& key, const std::string& value, long long px = 0);
  long long pttl(const std::string& key);
  long long del(const std::string& key);
  long long publish(const std::string& channel, const std::string& message);
  long long pubsub_numsub(const std::string& channel);
  std::vector<std::string> pubsub_channels(const std::string& pattern = "*");
  // CLIENT KILL TYPE pubsub|normal; the number of connections killed.
  long long client_kill_type(const std::string& type);

 private:
  friend class Subscriber;
  void send(const std::vector<std::string>& args);
  RespValue read_reply();
  std::string read_line();
  std::string read_exact(std::size_t n);
  void fill();

  int fd_ = -1;
  std::string buf_;
  std::size_t pos_ = 0;
};

// A redis-server child on 127.0.0.1 with no persistence, data dir = the TempDir.
class RedisServer {
 public:
  // port 0 picks a free port. Starts and waits until PING answers (10 s),
  // else throws with the log tail. `admin`: the user the fixture's own
  // clients (client(), the convenience wrappers, the PING wait) log in as,
  // for a server whose default user is off (an --aclfile).
  explicit RedisServer(const TempDir& dir, int port = 0, std::vector<std::string> extra_args = {},
                       RedisCredentials admin = {});
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  int port() const { return port_; }
  bool running() { return process_.running(); }
  int stop() { return process_.stop(); }
  int kill9() { return process_.kill9(); }
  // Starts again on the same port (after stop/kill9) and waits for PING.
  void start();
  Process& process() { return process_; }

  const RedisCredentials& admin() const { return admin_; }
  // Convenience wrappers: each opens a short-lived RedisClient (as admin()).
  RedisClient client() const { return RedisClient(port_, 5s, admin_); }
  std::optional<std::string> get(const std::string& key) const;
  void set(const std::string& key, const std::string& value, long long px = 0) const;
  long long publish(const std::string& channel, const std::string& message) const;
  long long pubsub_numsub(const std::string& channel) const;
  std::vector<std::string> pubsub_channels(const std::string& pattern = "*") const;

 private:
  void wait_ping();

  int port_;
  RedisCredentials admin_;
  Process process_;
};

// The passwords of the boxgate ACL users, for redis_acl_file().
struct BoxgateRedisUsers {
  std::string gateway_password = "gateway-test-password";
  std::string bridge_password = "bridge-test-password";
  RedisCredentials gateway() const { return {"boxgate-gateway", gateway_password}; }
  RedisCredentials bridge() const { return {"boxgate-bridge", bridge_password}; }
};

// Writes <dir>/redis-users.acl: the shipped config/redis-users.acl with its
// placeholder hashes replaced by these passwords, plus an `admin` user (all
// commands, for the test's own clients and MONITOR). Returns the path, for
// redis-server --aclfile.
std::string redis_acl_file(const TempDir& dir, const BoxgateRedisUsers& users, const RedisCredentials& admin);

struct RedisMessage {
  std::string channel;
  std::string payload;
  std::string pattern;  // the PSUBSCRIBE pattern that matched, "" for SUBSCRIBE
};

// Collects pub/sub messages on its own connection and thread.
class Subscriber {
 public:
  explicit Subscriber(int port);
  ~Subscriber();
  Subscriber(const Subscriber&) = delete;
  Subscriber& operator=(const Subscriber&) = delete;

  // Both return after Redis confirmed the subscription (throw after 5 s).
  void subscribe(const std::string& channel);
  void psubscribe(const std::string& pattern);

  // True once at least `count` messages have arrived in total.
  bool wait_for(std::size_t count, std::chrono::milliseconds timeout);
  std::vector<RedisMessage> messages() const;
  std::size_t count() const;
  // False once the connection was closed by the server.
  bool connected() const;

 private:
  void run();
  void wait_confirmed(std::size_t n);

  RedisClient conn_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<RedisMessage> messages_;
  std::size_t confirmations_ = 0;
  std::size_t requested_ = 0;
  bool closed_ = false;
  std::thread reader_;
};

}  // namespace boxgate::test
