#include "boxgate/options.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
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
  std::string path = ::testing::TempDir() + "/options_test.json";
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

TEST(Options, BadValuesNameTheirKey) {
  auto key_of = [](std::vector<const char*> args) {
    GatewayConfig c;
    Options o("prog", "test");
    declare_gateway(o, c);
    try {
      load(o, args);
    } catch (const ConfigError& e) {
      return e.key();
    }
    return std::string("no error");
  };
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
  std::string gw = std::string(BOXGATE_SOURCE_DIR) + "/config/gateway.json";
  load(l1, {"--config", gw.c_str()});
  EXPECT_EQ(l1.describe(), d1.describe());
  auto keys = nlohmann::json::parse(std::ifstream(gw));
  EXPECT_EQ(keys.size(), nlohmann::json::parse(d1.describe()).size()) << "a key is missing from gateway.json";

  BridgeConfig defaults_b, loaded_b;
  Options d2("prog", "t"), l2("prog", "t");
  declare_bridge(d2, defaults_b);
  declare_bridge(l2, loaded_b);
  std::string br = std::string(BOXGATE_SOURCE_DIR) + "/config/bridge.json";
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
