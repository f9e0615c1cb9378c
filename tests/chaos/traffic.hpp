#pragma once
// What the chaos run sends and watches: the steady load (client threads
// posting commands with unique X-Request-Ids round-robin to the gateways), the
// recovery probes after the last fault, and the MQTT observer that records
// every command topic the broker delivers.
//
// Thread ownership is written at each piece: a load thread owns its Call
// vector until it is joined; the observer's drain thread owns its id counts
// until finish() returns.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "stack.hpp"

namespace boxgate::chaos {

struct Settings {
  int seconds = 60;
  int clients = 16;
  int rate = 800;  // calls per second offered by all clients together
  int timeout_ms = 2000;
};

// One command and how it ended.
struct Call {
  std::int64_t start_us = 0;  // since the load started
  std::int32_t elapsed_ms = 0;
  int status = -1;            // HTTP status; -1: transport error (no answer)
  bool foreign = false;       // a 200 whose body's "id" is not this call's X-Request-Id
  std::string answer;         // non-200 only: "503 redis_unavailable", "transport Connection", ...
};

// A keep-alive client for a gateway whose read timeout is far above the
// command timeout + slack, so a late answer is measured, not cut off.
std::unique_ptr<httplib::Client> make_client(int port, const Settings& settings);

// One command to box-<box> with X-Request-Id `id`; start_us counts from t0.
Call call_once(httplib::Client& client, const std::string& id, int box, const Settings& settings,
               Clock::time_point t0);

// Sends commands from one thread until `end` or `stop`, alternating the
// gateways; ids "chaos-<thread>-<n>". Paced: one call every clients/rate
// seconds (the next one at once when a call took longer, no catch-up), so the
// load offered is the same whatever the answers — without it a gateway that
// refuses at once would be asked thousands of times a second, and the non-200
// count would measure how fast it refuses, not for how long. A keep-alive client per gateway; after a
// transport error that client is replaced and its gateway skipped for 250 ms,
// as a load balancer would. Appends to `out`, which the caller reads after
// joining the thread.
void run_client(int thread, const Settings& settings, const std::vector<int>& gateway_ports,
                 Clock::time_point t0, Clock::time_point end, const std::atomic<bool>& stop,
                 std::vector<Call>& out);

// After the last fault: a new command every 50 ms on a fresh connection (each
// on its own thread, alternating the gateways, ids "chaos-probe-<n>") until
// one is answered 200 or 10 s passed. Every probe has ended when it returns.
std::vector<Call> probe_recovery(const Settings& settings, const std::vector<int>& gateway_ports,
                                 Clock::time_point t0, const std::atomic<bool>& stop);

// Counts, by request id, every message on dev/+/request/+ (an MqttProbe with
// automatic reconnect: while the broker is down it sees nothing, so it can
// only miss ids, never invent a duplicate).
class Observer {
 public:
  explicit Observer(int mqtt_port);
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  // Waits until no new message came for 300 ms (at most 5 s), then stops the
  // drain thread. The accessors below are valid after it.
  void finish();
  std::size_t ids() const { return seen_.size(); }
  // "<id> x<count>" for up to kShownDuplicates of the ids seen more than
  // once, sorted; *total (when given) gets how many there were in all.
  static constexpr std::size_t kShownDuplicates = 20;
  std::vector<std::string> duplicates(std::size_t* total = nullptr) const;

 private:
  void drain_once();

  test::MqttProbe probe_;
  std::unordered_map<std::string, int> seen_;  // the drain thread's until finish() joined it
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace boxgate::chaos
