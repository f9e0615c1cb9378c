// A broker named by host name. libmosquitto resolves it with a blocking
// getaddrinfo() inside mosquitto_connect_async; the Client makes that call on
// a worker thread, so a slow or dead DNS server never holds the gateway's loop
// (its HTTP answers, Redis, timers).
//
// Slow names come from tests/support/slow_resolver.cpp, preloaded into the
// gateway: "slow-<ms>.boxgate.test" resolves to 127.0.0.1 after <ms>,
// "dead-<ms>.boxgate.test" fails (EAI_AGAIN) after <ms>. No DNS query leaves
// the machine. "localhost" goes through the real getaddrinfo (/etc/hosts).

#include <gtest/gtest.h>

#include <dirent.h>

#include <cstdlib>

#include "faults_support.hpp"
#include "support/fixtures.hpp"

#ifndef BOXGATE_SLOW_RESOLVER
#error "BOXGATE_SLOW_RESOLVER must be defined by the build (tests/CMakeLists.txt)"
#endif

namespace boxgate::itest::faults {
namespace {

// The gateway's environment: the slow resolver in front of libc. An ASan
// build wants its runtime first among the loaded libraries; the preload is
// not instrumented, so that check is turned off for it.
std::vector<std::string> slow_resolver_env() {
  const char* inherited = std::getenv("ASAN_OPTIONS");
  std::string asan = inherited && *inherited ? std::string(inherited) + ":" : "";
  return {std::string("LD_PRELOAD=") + BOXGATE_SLOW_RESOLVER, "ASAN_OPTIONS=" + asan + "verify_asan_link_order=0"};
}

// Threads of a process (/proc/<pid>/task).
int thread_count(pid_t pid) {
  DIR* dir = ::opendir(("/proc/" + std::to_string(pid) + "/task").c_str());
  if (!dir) return -1;
  int count = 0;
  while (dirent* entry = ::readdir(dir)) count += entry->d_name[0] != '.';
  ::closedir(dir);
  return count;
}

class MqttResolve : public StackTest {
 protected:
  MqttResolve() : StackTest("mqtt-resolve") {}

  // A gateway whose broker is `host` on the Stack's broker port, through the
  // slow resolver; readiness is not awaited.
  int add_named_gateway(const std::string& host, std::vector<std::string> env = slow_resolver_env()) {
    std::vector<std::string> flags{"--mqtt-uri", "tcp://" + host + ":" + std::to_string(stack->mqtt_port()),
                                   "--mqtt-backoff-max-ms", "500"};
    return stack->add_gateway(std::move(flags), /*wait_ready=*/false, std::move(env));
  }

  // GET /healthz every 100 ms for `span`: every one must answer 200 within
  // 1 s (a loop held by a lookup answers nothing until it ends).
  void expect_healthz_prompt(int port, std::chrono::milliseconds span) {
    long long slowest = 0;
    const auto until = std::chrono::steady_clock::now() + span;
    while (std::chrono::steady_clock::now() < until) {
      HttpResult r = get(port, "/healthz");
      ASSERT_EQ(r.status, 200) << r.error << "\n" << stack->gateway().log_tail();
      slowest = std::max<long long>(slowest, r.elapsed.count());
      ASSERT_LT(r.elapsed.count(), 1000) << "/healthz held by a lookup\n" << stack->gateway().log_tail();
      std::this_thread::sleep_for(100ms);  // the sampling pace: time passing is the point
    }
    report("slowest_healthz_ms_during_lookups", slowest);
  }

  // A command from the gateway to a device and back, through a bridge.
  void expect_command_round_trip(int gw) {
    int br = stack->add_bridge({}, /*wait_ready=*/false);
    ASSERT_TRUE(test::wait_ready(br, 10s)) << stack->bridge().log_tail();
    ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
    auto c = client(gw);
    HttpResult r = post(*c, command_path("box-1"), kPing, {{"X-Request-Id", "by-name"}});
    EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << stack->logs();
    EXPECT_EQ(r.body, R"({"id":"by-name","result":{"ok":true}})");
  }
};

// A DNS server that answers nothing useful, slowly: every attempt's lookup
// takes 2 s. On the loop that held it 2 s of every 2.5 s (backoff at most
// 0.5 s); off the loop /healthz never waits.
TEST_F(MqttResolve, DeadDnsServerNeverHoldsTheLoop) {
  int gw = add_named_gateway("dead-2000.boxgate.test");
  expect_healthz_prompt(gw, 7s);
  HttpResult ready = get(gw, "/readyz");
  EXPECT_EQ(ready.status, 503) << ready.body;
  EXPECT_EQ(ready.json().value("mqtt_error", ""), "cannot resolve the host: Temporary failure in name resolution")
      << ready.body;
}

// A lookup that hangs (6.5 s) is given up at the 5 s deadline; while it still
// runs no second worker starts (the thread count stays put over several
// attempts); when it ends, the worker frees the handle it still held and the
// next attempt gets a worker of its own. SIGTERM ends the gateway at once,
// with that worker asleep in getaddrinfo, and with no sanitizer report (the
// Stack checks both).
TEST_F(MqttResolve, HungLookupIsGivenUpAtTheDeadlineWithOneWorker) {
  int gw = add_named_gateway("dead-6500.boxgate.test");
  // The first attempt's worker starts before the loop serves HTTP: once
  // /healthz answers, it is counted.
  ASSERT_TRUE(test::eventually([&] { return get(gw, "/healthz").status == 200; }, 5s, 20ms))
      << stack->gateway().log_tail();
  const int threads_at_start = thread_count(stack->gateway().pid());
  expect_healthz_prompt(gw, 7s);
  EXPECT_TRUE(test::eventually(
      [&] {
        return get(gw, "/readyz").json().value("mqtt_error", "") == "cannot resolve the host: no answer within 5 s";
      },
      3s, 50ms))
      << get(gw, "/readyz").body;
  // The hung lookup lasts 6.5 s by design: wait until the first worker has
  // ended and the next attempt's runs (nothing to poll for: the thread
  // count must stay put, which is what is checked).
  std::this_thread::sleep_for(2s);
  EXPECT_LE(thread_count(stack->gateway().pid()), threads_at_start) << "a second worker started";

  const auto stopping = std::chrono::steady_clock::now();
  stack->stop_daemons_and_check();
  auto stop_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - stopping);
  EXPECT_LT(stop_ms.count(), 3000) << "the gateway waited for its worker";
}

// A slow lookup (3 s) that answers: the gateway serves /healthz before it
// ends (add_gateway waits for that; a loop held by the lookup would answer
// only after it), stays prompt meanwhile, then connects and serves.
TEST_F(MqttResolve, SlowLookupStillConnectsAndServes) {
  const auto started = std::chrono::steady_clock::now();
  int gw = add_named_gateway("slow-3000.boxgate.test");
  auto healthy_ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
  EXPECT_LT(healthy_ms.count(), 2500) << "/healthz waited for the lookup";
  expect_healthz_prompt(gw, 1s);
  ASSERT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << stack->gateway().log_tail();
  expect_command_round_trip(gw);
}

// The real getaddrinfo, through /etc/hosts: "localhost" connects and serves.
TEST_F(MqttResolve, LocalhostConnectsAndServes) {
  int gw = add_named_gateway("localhost", {});
  ASSERT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << stack->gateway().log_tail();
  expect_command_round_trip(gw);
}

class MqttResolveTls : public StackTest {
 protected:
  MqttResolveTls() : StackTest(StackOptions{.tag = "mqtt-resolve-tls", .mqtt_tls = true}) {}

  int add_tls_gateway(const std::string& host, const std::vector<std::string>& more_flags = {},
                      const std::vector<std::string>& more_env = {}) {
    std::vector<std::string> flags{"--mqtt-uri", "ssl://" + host + ":" + std::to_string(stack->mqtt_tls_port()),
                                   "--mqtt-ca-file", stack->pki().ca_cert, "--mqtt-backoff-max-ms", "500"};
    flags.insert(flags.end(), more_flags.begin(), more_flags.end());
    std::vector<std::string> env = slow_resolver_env();
    env.insert(env.end(), more_env.begin(), more_env.end());
    return stack->add_gateway(std::move(flags), /*wait_ready=*/false, std::move(env));
  }
  std::string mqtt_error(int port) { return get(port, "/readyz").json().value("mqtt_error", ""); }
};

// The broker's certificate names IP 127.0.0.1 and DNS localhost. TLS checks
// the name the URI gives, not the address the worker resolved it to.
TEST_F(MqttResolveTls, BrokerIsVerifiedAgainstTheNameNotItsAddress) {
  int by_name = add_tls_gateway("localhost");
  ASSERT_TRUE(test::wait_ready(by_name, 10s)) << get(by_name, "/readyz").body << "\n" << stack->gateway().log_tail();

  int other_name = add_tls_gateway("slow-100.boxgate.test");  // resolves to 127.0.0.1
  EXPECT_TRUE(
      test::eventually([&] { return mqtt_error(other_name) == "tls: host name verification failed"; }, 10s, 50ms))
      << mqtt_error(other_name) << "\n" << stack->gateway(1).log_tail();
  EXPECT_EQ(get(other_name, "/readyz").status, 503);
}

// An encrypted client key: OpenSSL asks for its passphrase while the worker
// connects, and the job, not the Client, answers. A wrong passphrase fails on
// loading the key; libmosquitto says so in a log line on the worker, which
// the loop replays into the reason /readyz gives.
TEST_F(MqttResolveTls, EncryptedClientKeyIsUnlockedWhileTheWorkerConnects) {
  const test::TestPki& pki = stack->pki();
  const std::vector<std::string> key{"--mqtt-cert-file", pki.client_cert, "--mqtt-key-file", pki.client_key_encrypted};
  int right = add_tls_gateway("localhost", key,
                              {"BOXGATE_MQTT_KEY_PASSWORD=" + std::string(test::TestPki::kClientKeyPassphrase)});
  int wrong = add_tls_gateway("localhost", key, {"BOXGATE_MQTT_KEY_PASSWORD=not-the-passphrase"});
  EXPECT_TRUE(test::wait_ready(right, 10s)) << get(right, "/readyz").body << "\n" << stack->gateway(0).log_tail();
  EXPECT_TRUE(test::eventually(
      [&] { return mqtt_error(wrong).rfind("tls: unable to load client key file", 0) == 0; }, 10s, 50ms))
      << mqtt_error(wrong) << "\n" << stack->gateway(1).log_tail();
}

}  // namespace
}  // namespace boxgate::itest::faults
