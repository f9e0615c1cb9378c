// MQTT over TLS (ssl://) on the daemon's own loop. libmosquitto's
// TLS handshake is the weak spot of its external-loop API (want_write() stays
// true while OpenSSL waits for the broker: upstream #942, #1507, #3745), so
// besides "it connects and serves" these tests watch the gateway's CPU while a
// handshake cannot finish. The broker has a plain listener (bridge, device)
// and a TLS one (gateway), with a certificate for IP 127.0.0.1 signed by a CA
// made here with the openssl command.

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "faults_support.hpp"
#include "support/fixtures.hpp"

namespace boxgate::itest::faults {
namespace {

const std::string kBody = R"({"method":"ping"})";

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

class MqttTls : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp = std::make_unique<test::TempDir>("mqtt-tls");
    make_certificates();
    if (HasFatalFailure()) return;
    tls_port = test::free_port();
    redis = std::make_unique<test::RedisServer>(*tmp);
    mqtt = std::make_unique<test::Mosquitto>(
        *tmp, 0,
        std::vector<std::string>{"listener " + std::to_string(tls_port) + " 127.0.0.1", "cafile " + tmp->file("ca.pem"),
                                 "certfile " + tmp->file("server.pem"), "keyfile " + tmp->file("server.key")});
    ASSERT_TRUE(test::wait_for_port(tls_port, 5s)) << mqtt->process().log_tail();
  }
  void TearDown() override {
    if (mqtt) mqtt->process().signal(SIGCONT);
    for (auto& p : daemons) {
      EXPECT_EQ(p.stop(SIGTERM, 10s), 0) << p.name() << ":\n" << p.log_tail();
      EXPECT_TRUE(p.sanitizer_report().empty()) << p.sanitizer_report();
    }
    daemons.clear();
    mqtt.reset();
    redis.reset();
    tmp.reset();
  }

  void openssl(const std::string& step, std::vector<std::string> args) {
    args.insert(args.begin(), "openssl");
    Process p("openssl-" + step, std::move(args), tmp->path());
    auto status = p.wait_exit(30s);
    ASSERT_TRUE(status && *status == 0) << "openssl " << step << " failed:\n" << p.log_tail();
  }
  void make_certificates() {
    const std::string ec = "ec_paramgen_curve:prime256v1";
    openssl("ca", {"req", "-x509", "-newkey", "ec", "-pkeyopt", ec, "-nodes", "-days", "2", "-subj",
                   "/CN=boxgate test CA", "-keyout", tmp->file("ca.key"), "-out", tmp->file("ca.pem")});
    openssl("csr", {"req", "-newkey", "ec", "-pkeyopt", ec, "-nodes", "-subj", "/CN=127.0.0.1", "-keyout",
                    tmp->file("server.key"), "-out", tmp->file("server.csr")});
    std::string ext = tmp->write("server.ext", "subjectAltName=IP:127.0.0.1\n");
    openssl("sign", {"x509", "-req", "-days", "2", "-in", tmp->file("server.csr"), "-CA", tmp->file("ca.pem"),
                     "-CAkey", tmp->file("ca.key"), "-CAcreateserial", "-extfile", ext, "-out",
                     tmp->file("server.pem")});
  }

  // A gateway whose MQTT connection is TLS to the broker's TLS listener.
  int add_tls_gateway(std::vector<std::string> flags) {
    int port = test::free_port();
    flags.insert(flags.begin(), {"--mqtt-uri", "ssl://127.0.0.1:" + std::to_string(tls_port)});
    daemons.push_back(test::start_gateway(*tmp, port, redis->port(), mqtt->port(), std::move(flags)));
    return port;
  }

  std::unique_ptr<test::TempDir> tmp;
  int tls_port = 0;
  std::unique_ptr<test::RedisServer> redis;
  std::unique_ptr<test::Mosquitto> mqtt;
  std::vector<Process> daemons;
};

TEST_F(MqttTls, GatewayVerifiesTheBrokerAgainstItsCaFileAndServes) {
  int gw = add_tls_gateway({"--mqtt-ca-file", tmp->file("ca.pem")});
  ASSERT_TRUE(test::wait_ready(gw, 10s)) << get(gw, "/readyz").body << "\n" << daemons.back().log_tail();
  int br = test::free_port();
  daemons.push_back(test::start_bridge(*tmp, br, redis->port(), mqtt->port()));
  ASSERT_TRUE(test::wait_ready(br, 10s)) << daemons.back().log_tail();
  ProbeDevice device(mqtt->port(), "dev/+/request/+", ProbeDevice::echo());

  auto c = client(gw);
  HttpResult r = post(*c, command_path("box-1"), kBody, {{"X-Request-Id", "over-tls"}});
  EXPECT_EQ(r.status, 200) << r.body << r.error << "\n" << daemons.front().log_tail();
  EXPECT_EQ(r.body, R"({"id":"over-tls","result":{"ok":true}})");
  report("gateway_cpu_ms_after_tls_connect_and_one_command", cpu_ms(daemons.front().pid()));
}

// The broker frozen during the handshake: the TCP connect succeeds (the
// kernel accepts), the ClientHello leaves, no answer comes. A gateway that
// re-armed its write event on want_write() would spin on a core until the
// connect deadline; ours waits for the broker's answer.
TEST_F(MqttTls, HandshakeWithAFrozenBrokerDoesNotSpinAndCompletesAfterSigcont) {
  mqtt->process().signal(SIGSTOP);
  int gw = add_tls_gateway({"--mqtt-ca-file", tmp->file("ca.pem"), "--mqtt-backoff-max-ms", "500"});
  const pid_t pid = daemons.back().pid();
  const long long before = cpu_ms(pid);
  const auto started = Clock::now();
  // 3 s: inside the first attempt's 5 s CONNACK deadline.
  EXPECT_FALSE(test::eventually([&] { return get(gw, "/readyz").status == 200; }, 3s, 100ms));
  const long long used = cpu_ms(pid) - before;
  report("gateway_cpu_ms_during_3s_of_stalled_handshake", used);
  report("window_ms", ms_since(started));
  EXPECT_LT(used, 300) << "the gateway spins while the TLS handshake waits";

  const auto resumed = Clock::now();
  mqtt->process().signal(SIGCONT);
  EXPECT_TRUE(test::wait_ready(gw, 15s)) << get(gw, "/readyz").body << "\n" << daemons.back().log_tail();
  report("ready_ms_after_sigcont", ms_since(resumed));
}

// Peer verification is on by default: without the CA file the system store
// does not trust the test CA, the handshake fails, and the gateway retries
// with backoff and never becomes ready. Its CPU is reported, not checked:
// every attempt loads the system CA store, which costs tens of ms natively
// and far more under a sanitizer (the spin check is the frozen-broker test).
TEST_F(MqttTls, UntrustedBrokerCertificateIsRefusedAndNeverReady) {
  int gw = add_tls_gateway({"--mqtt-backoff-max-ms", "500"});
  Process& gateway = daemons.back();
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
