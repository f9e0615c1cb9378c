// MQTT over TLS (ssl://) on the daemon's own loop. libmosquitto's
// TLS handshake is the weak spot of its external-loop API (want_write() stays
// true while OpenSSL waits for the broker: upstream #942, #1507, #3745), so
// besides "it connects and serves" these tests watch the gateway's CPU while a
// handshake cannot finish. The broker has a plain listener (bridge, device)
// and a TLS one (gateway), with a certificate for IP 127.0.0.1 signed by the
// test CA (StackOptions::mqtt_tls).

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "faults_support.hpp"
#include "support/fixtures.hpp"

namespace boxgate::itest::faults {
namespace {


// utime + stime of a process in milliseconds (from /proc/<pid>/stat).
long long cpu_ms(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::istringstream fields(stat.substr(stat.rfind(')') + 2));
  std::string field;
  long long ticks = 0;
  for (int i = 3; fields >> field && i <= 15; ++i) {
    if (i == 14 || i == 15) ticks += std::stoll(field);
  }
  return ticks * 1000 / sysconf(_SC_CLK_TCK);
}

class MqttTls : public StackTest {
 protected:
  MqttTls() : StackTest(StackOptions{.tag = "mqtt-tls", .mqtt_tls = true}) {}
  void TearDown() override {
    if (stack) stack->mqtt().process().signal(SIGCONT);  // never leave a frozen broker behind
    StackTest::TearDown();
  }

  // A gateway whose MQTT connection is TLS to the broker's TLS listener.
  int add_tls_gateway(std::vector<std::string> flags) {
    flags.insert(flags.begin(), {"--mqtt-uri", "ssl://127.0.0.1:" + std::to_string(stack->mqtt_tls_port())});
    return stack->add_gateway(std::move(flags), /*wait_ready=*/false);
  }
  std::string ca() const { return stack->pki().ca_cert; }
};

TEST_F(MqttTls, GatewayVerifiesTheBrokerAgainstItsCaFileAndServes) {
  int gw = add_tls_gateway({"--mqtt-ca-file", ca()});
  ASSERT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << stack->gateway().log_tail();
  int br = stack->add_bridge({}, /*wait_ready=*/false);
  ASSERT_TRUE(test::wait_ready(br, 10s)) << stack->bridge().log_tail();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());

  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1"), kPing, {{"X-Request-Id", "over-tls"}});
  EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << stack->gateway().log_tail();
  EXPECT_EQ(r.body, R"({"id":"over-tls","result":{"ok":true}})");
  report("gateway_cpu_ms_after_tls_connect_and_one_command", cpu_ms(stack->gateway().pid()));
}

// The broker frozen during the handshake: the TCP connect succeeds (the
// kernel accepts), the ClientHello leaves, no answer comes. A gateway that
// re-armed its write event on want_write() would spin on a core until the
// connect deadline; ours waits for the broker's answer.
TEST_F(MqttTls, HandshakeWithAFrozenBrokerDoesNotSpinAndCompletesAfterSigcont) {
  stack->mqtt().process().signal(SIGSTOP);
  int gw = add_tls_gateway({"--mqtt-ca-file", ca(), "--mqtt-backoff-max-ms", "500"});
  const pid_t pid = stack->gateway().pid();
  const long long before = cpu_ms(pid);
  const auto started = Clock::now();
  // 3 s: inside the first attempt's 5 s CONNACK deadline.
  EXPECT_FALSE(test::eventually([&] { return get(gw, "/readyz").status == 200; }, 3s, 100ms));
  const long long used = cpu_ms(pid) - before;
  report("gateway_cpu_ms_during_3s_of_stalled_handshake", used);
  report("window_ms", ms_since(started));
  EXPECT_LT(used, 300) << "the gateway spins while the TLS handshake waits";

  const auto resumed = Clock::now();
  stack->mqtt().process().signal(SIGCONT);
  EXPECT_TRUE(test::wait_ready(gw, 15s)) << get(gw, "/readyz").body << "\n" << stack->gateway().log_tail();
  report("ready_ms_after_sigcont", ms_since(resumed));
}

// Peer verification is on by default: without the CA file the system store
// does not trust the test CA, the handshake fails, and the gateway retries
// with backoff and never becomes ready. Its CPU is reported, not checked:
// every attempt loads the system CA store, which costs tens of ms natively
// and far more under a sanitizer (the spin check is the frozen-broker test).
TEST_F(MqttTls, UntrustedBrokerCertificateIsRefusedAndNeverReady) {
  int gw = add_tls_gateway({"--mqtt-backoff-max-ms", "500"});
  Process& gateway = stack->gateway();
  ASSERT_TRUE(gateway.wait_for_log("certificate verify failed", 10s)) << gateway.log_tail();
  const long long before = cpu_ms(gateway.pid());
  EXPECT_FALSE(test::eventually([&] { return get(gw, "/readyz").status == 200; }, 2s, 100ms));
  const long long used = cpu_ms(gateway.pid()) - before;
  report("gateway_cpu_ms_during_2s_of_refused_handshakes", used);
  HttpResult ready = get(gw, "/readyz");
  EXPECT_EQ(ready.json().value("mqtt", ""), "down") << ready.body;
  EXPECT_EQ(ready.json().value("mqtt_error", ""), "tls: certificate verify failed") << ready.body;
}

}  // namespace
}  // namespace boxgate::itest::faults
