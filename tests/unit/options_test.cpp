#include "boxgate/options.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "boxgate/config.hpp"

#include <nlohmann/json.hpp>

using namespace boxgate;

namespace {
Options::Outcome load(Options& o, std::vector<const char*> args) {
  args.insert(args.begin(), "prog");
  return o.load(static_cast<int>(args.size()), args.data());
}

std::string write_temp(const std::string& text) {
  std::string path = ::testing::TempDir() + "/options_test." + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << text;
  return path;
}
}  // namespace

TEST(Options, FlagsOverrideEnvironmentOverrideFile) {
  GatewayConfig c;
  Options o("prog", "test");
  declare_gateway(o, c);
  auto path = write_temp(R"({"http_port": 1000, "redis_port": 2000, "max_pending": 3000, "log_json": true})");
  setenv("BOXGATE_REDIS_PORT", "2001", 1);
  setenv("BOXGATE_MAX_PENDING", "3001", 1);
  EXPECT_EQ(load(o, {"--config", path.c_str(), "--max-pending", "3002"}), Options::Outcome::run);
  unsetenv("BOXGATE_REDIS_PORT");
  unsetenv("BOXGATE_MAX_PENDING");
  EXPECT_EQ(c.http.port, 1000);
  EXPECT_EQ(c.redis.port, 2001);
  EXPECT_EQ(c.max_pending, 3002);
  EXPECT_TRUE(c.log.json);
}

namespace {
// The key a gateway configuration error names, or "no error".
std::string key_of(std::vector<const char*> args) {
  GatewayConfig c;
  Options o("prog", "test");
  declare_gateway(o, c);
  try {
    load(o, args);
  } catch (const ConfigError& e) {
    return e.key();
  }
  return "no error";
}
}  // namespace

TEST(Options, BadValuesNameTheirKey) {
  EXPECT_EQ(key_of({"--http-port", "70000"}), "http_port");
  EXPECT_EQ(key_of({"--http_port=abc"}), "http_port");
  EXPECT_EQ(key_of({"--log-level", "loud"}), "log_level");
  EXPECT_EQ(key_of({"--prefix", "a/#"}), "prefix");
  EXPECT_EQ(key_of({"--mqtt-uri", "http://x"}), "mqtt_uri");
  EXPECT_EQ(key_of({"--no-such-key", "1"}), "no_such_key");
  EXPECT_EQ(key_of({"--default-timeout-ms", "90000"}), "default_timeout_ms");
  EXPECT_EQ(key_of({"--log-json", "maybe"}), "log_json");
}

TEST(Options, UnknownKeyInFileIsAnError) {
  BridgeConfig c;
  Options o("prog", "test");
  declare_bridge(o, c);
  auto path = write_temp(R"({"share_grup": "x"})");
  try {
    load(o, {"--config", path.c_str()});
    FAIL() << "accepted an unknown key";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "share_grup");
  }
}

TEST(Options, HelpVersionAndSecretsMasked) {
  BridgeConfig c;
  Options o("prog", "test");
  declare_bridge(o, c);
  EXPECT_EQ(load(o, {"--help"}), Options::Outcome::help);
  EXPECT_EQ(load(o, {"--version"}), Options::Outcome::version);
  EXPECT_NE(o.help_text().find("--share-group"), std::string::npos);
  EXPECT_EQ(c.http.port, 9101);
  load(o, {"--mqtt-password", "hunter2"});
  EXPECT_EQ(o.describe().find("hunter2"), std::string::npos);
}

// config/*.json are documentation of every key and its default: keep them true.
TEST(Options, ShippedConfigFilesListEveryKeyWithItsDefault) {
  GatewayConfig defaults_g, loaded_g;
  Options d1("prog", "t"), l1("prog", "t");
  declare_gateway(d1, defaults_g);
  declare_gateway(l1, loaded_g);
  std::string gw = BOXGATE_SOURCE_DIR "/config/gateway.json";
  load(l1, {"--config", gw.c_str()});
  EXPECT_EQ(l1.describe(), d1.describe());
  auto keys = nlohmann::json::parse(std::ifstream(gw));
  EXPECT_EQ(keys.size(), nlohmann::json::parse(d1.describe()).size()) << "a key is missing from gateway.json";

  BridgeConfig defaults_b, loaded_b;
  Options d2("prog", "t"), l2("prog", "t");
  declare_bridge(d2, defaults_b);
  declare_bridge(l2, loaded_b);
  std::string br = BOXGATE_SOURCE_DIR "/config/bridge.json";
  load(l2, {"--config", br.c_str()});
  EXPECT_EQ(l2.describe(), d2.describe());
  EXPECT_EQ(nlohmann::json::parse(std::ifstream(br)).size(), nlohmann::json::parse(d2.describe()).size());
}

// A command accepted just before SIGTERM may wait max_timeout_ms: the default
// drain must let it finish.
TEST(Config, DefaultDrainOutlastsTheLongestCommand) {
  GatewayConfig c;
  EXPECT_GE(c.drain_timeout_ms, c.max_timeout_ms);
  EXPECT_GE(c.max_pending_bytes, c.max_body_bytes);
  BridgeConfig b;
  EXPECT_GE(b.queue_max_bytes, b.max_reply_bytes);
}

// Secrets: never in --help (not even a default set in
// code), masked in the start-up line, and a config file holding one that
// others may read draws a warning.
TEST(Options, SecretsNeverShownInHelpOrDescribe) {
  GatewayConfig c;
  c.redis.password = "compiled-in-secret";
  c.mqtt.password = "another-secret";
  Options o("prog", "test");
  declare_gateway(o, c);
  std::string help = o.help_text();
  EXPECT_EQ(help.find("compiled-in-secret"), std::string::npos);
  EXPECT_EQ(help.find("another-secret"), std::string::npos);
  EXPECT_NE(help.find("--redis-password  (secret, not shown"), std::string::npos) << help;
  EXPECT_NE(help.find("BOXGATE_REDIS_PASSWORD"), std::string::npos);
  load(o, {"--redis-password", "flag-secret", "--redis-username", "gw"});
  std::string line = o.describe();
  EXPECT_EQ(line.find("flag-secret"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("redis_username":"gw")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("redis_password":"***")"), std::string::npos) << line;
}

TEST(Options, RedisUsernameNeedsAPassword) {
  BridgeConfig c;
  Options o("prog", "test");
  declare_bridge(o, c);
  try {
    load(o, {"--redis-username", "bridge"});
    FAIL() << "accepted a username without a password";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "redis_password");
  }
}

TEST(Options, ReadableConfigFileWithSecretsIsWarnedAbout) {
  std::string path = ::testing::TempDir() + "/options_secret_test." + std::to_string(::getpid()) + ".json";
  auto warnings_for = [&](const std::string& text, mode_t mode) {
    std::ofstream(path) << text;
    EXPECT_EQ(::chmod(path.c_str(), mode), 0);
    BridgeConfig c;
    Options o("prog", "test");
    declare_bridge(o, c);
    load(o, {"--config", path.c_str()});
    return o.secret_file_warnings();
  };
  auto open = warnings_for(R"({"redis_password": "pw", "redis_username": "bridge"})", 0644);
  ASSERT_EQ(open.size(), 1u);
  EXPECT_NE(open[0].find("redis_password"), std::string::npos) << open[0];
  EXPECT_NE(open[0].find("0644"), std::string::npos) << open[0];
  EXPECT_EQ(open[0].find("\"pw\""), std::string::npos) << open[0];
  EXPECT_TRUE(warnings_for(R"({"redis_password": "pw", "redis_username": "bridge"})", 0600).empty());
  EXPECT_TRUE(warnings_for(R"({"redis_password": "", "mqtt_password": ""})", 0644).empty())
      << "empty secrets expose nothing";
  EXPECT_TRUE(warnings_for(R"({"redis_port": 7000})", 0644).empty());
}

TEST(Options, OpsPortRules) {
  EXPECT_EQ(key_of({"--ops-host", "127.0.0.1"}), "ops_port");
  EXPECT_EQ(key_of({"--ops-port", "8080"}), "ops_port");
  EXPECT_EQ(key_of({"--ops-port", "9100"}), "no error");
  EXPECT_EQ(key_of({"--ops-port", "8080", "--ops-host", "127.0.0.2"}), "no error");
}

// TLS client certificate: the files must be readable at
// start-up, cert and key go together, and the key's passphrase is a secret.
TEST(Options, MqttClientCertificateKeys) {
  std::string cert = write_temp("not checked here");  // readable is all config.cpp asks
  EXPECT_EQ(key_of({"--mqtt-cert-file", cert.c_str(), "--mqtt-key-file", cert.c_str()}), "no error");
  EXPECT_EQ(key_of({"--mqtt-cert-file", cert.c_str()}), "mqtt_key_file");
  EXPECT_EQ(key_of({"--mqtt-key-file", cert.c_str()}), "mqtt_cert_file");
  EXPECT_EQ(key_of({"--mqtt-cert-file", "/no/such/cert.pem", "--mqtt-key-file", cert.c_str()}), "mqtt_cert_file");
  EXPECT_EQ(key_of({"--mqtt-cert-file", cert.c_str(), "--mqtt-key-file", "/no/such/key.pem"}), "mqtt_key_file");
  EXPECT_EQ(key_of({"--mqtt-ca-file", "/no/such/ca.pem"}), "mqtt_ca_file");
  EXPECT_EQ(key_of({"--mqtt-key-password", "pw"}), "mqtt_key_password");
  EXPECT_EQ(key_of({"--mqtt-uri", "mqtts://127.0.0.1:8883"}), "no error");

  GatewayConfig c;
  c.mqtt.key_password = "compiled-in-passphrase";
  Options o("prog", "test");
  declare_gateway(o, c);
  std::string help = o.help_text();
  EXPECT_EQ(help.find("compiled-in-passphrase"), std::string::npos);
  EXPECT_NE(help.find("--mqtt-key-password  (secret, not shown"), std::string::npos) << help;
  EXPECT_NE(help.find("--mqtt-cert-file  (default: \"\")"), std::string::npos) << help;
  load(o, {"--mqtt-cert-file", cert.c_str(), "--mqtt-key-file", cert.c_str(), "--mqtt-key-password", "flag-pass"});
  std::string line = o.describe();
  EXPECT_EQ(line.find("flag-pass"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("mqtt_key_password":"***")"), std::string::npos) << line;
  EXPECT_NE(line.find(R"("mqtt_cert_file":")" + cert), std::string::npos) << "paths are not secret: " << line;
}

TEST(Options, RedisClusterModeTakesSeedNodes) {
  GatewayConfig c;
  Options o("prog", "test");
  declare_gateway(o, c);
  load(o, {"--redis-mode", "cluster", "--redis-nodes", "127.0.0.1:7000,[::1]:7001"});
  EXPECT_EQ(c.redis.mode, RedisMode::cluster);
  EXPECT_EQ(c.redis.nodes, (std::vector<std::string>{"127.0.0.1:7000", "[::1]:7001"}));
}

TEST(Options, RedisClusterSettingsAreCheckedWithTheirKey) {
  auto key_refused = [](std::vector<const char*> args) -> std::string {
    BridgeConfig c;
    Options o("prog", "test");
    declare_bridge(o, c);
    try {
      load(o, args);
    } catch (const ConfigError& e) {
      return e.key();
    }
    return "";
  };
  EXPECT_EQ(key_refused({"--redis-mode", "sharded"}), "redis_mode");
  EXPECT_EQ(key_refused({"--redis-mode", "cluster"}), "redis_nodes");
  EXPECT_EQ(key_refused({"--redis-mode", "cluster", "--redis-nodes", "::1:7000"}), "redis_nodes");
  EXPECT_EQ(key_refused({"--redis-nodes", "127.0.0.1:7000"}), "redis_nodes");  // standalone ignores it: say so
  EXPECT_EQ(key_refused({"--redis-mode", "standalone"}), "");
}

// Sentinel mode: the mode names, the sentinel list (IPv6 in
// brackets) and the rules a start-up must refuse with the key named.
namespace {
std::string redis_config_error(std::vector<const char*> args) {
  BridgeConfig c;
  Options o("prog", "t");
  declare_bridge(o, c);
  try {
    load(o, std::move(args));
  } catch (const ConfigError& e) {
    return e.key() + ": " + e.what();
  }
  return "";
}
}  // namespace

TEST(Options, RedisSentinelModeParsesTheSentinelList) {
  GatewayConfig c;
  Options o("prog", "t");
  declare_gateway(o, c);
  EXPECT_EQ(c.redis.mode, RedisMode::standalone);
  ASSERT_EQ(load(o, {"--redis-mode", "sentinel", "--redis-sentinels", "10.0.0.1:26379,[::1]:26380,s3:1",
                     "--redis-master-name", "cache-1"}),
            Options::Outcome::run);
  EXPECT_EQ(c.redis.mode, RedisMode::sentinel);
  ASSERT_EQ(c.redis.sentinels.size(), 3u);
  EXPECT_EQ(c.redis.sentinels[0], (RedisAddress{"10.0.0.1", 26379}));
  EXPECT_EQ(c.redis.sentinels[1], (RedisAddress{"::1", 26380}));
  EXPECT_EQ(c.redis.sentinels[2], (RedisAddress{"s3", 1}));
  EXPECT_EQ(to_string(c.redis.sentinels[1]), "[::1]:26380");
  EXPECT_EQ(c.redis.master_name, "cache-1");
}

TEST(Options, RedisModeRules) {
  EXPECT_EQ(redis_config_error({"--redis-mode", "sentinel"}),
            "redis_sentinels: must name at least one sentinel when redis_mode=sentinel");
  EXPECT_EQ(redis_config_error({"--redis-mode", "cluster"}),
            "redis_nodes: must name at least one seed node when redis_mode is cluster");
  EXPECT_EQ(redis_config_error({"--redis-mode", "replica"}),
            "redis_mode: must be standalone, sentinel or cluster, not 'replica'");
  EXPECT_EQ(redis_config_error({"--redis-mode", "sentinel", "--redis-sentinels", "a:1", "--redis-sentinel-username",
                                "u"}),
            "redis_sentinel_password: must be set when redis_sentinel_username is");
  EXPECT_EQ(redis_config_error({"--redis-mode", "sentinel", "--redis-sentinels", "a:1", "--redis-master-name", "a b"}),
            "redis_master_name: 'a b' is not a valid name");
  for (const char* bad : {"host", "::1:26379", "[::1]26379", "[::1]:", "h:0", "h:70000", ":1", "h:1x"}) {
    EXPECT_EQ(redis_config_error({"--redis-mode", "sentinel", "--redis-sentinels", bad}).rfind("redis_sentinels: '", 0),
              0u)
        << bad;
  }
  // Standalone ignores a sentinel list but still refuses a malformed one.
  EXPECT_EQ(redis_config_error({"--redis-sentinels", "127.0.0.1:26379"}), "");
  EXPECT_EQ(redis_config_error({"--redis-sentinels", "nope"}).rfind("redis_sentinels: 'nope'", 0), 0u);
}
