// Configuration parsing: Options from a JSON config file or from flags, for
// the gateway and the bridge. The first byte picks the daemon (bit 0) and the
// source (bit 1: flags, NUL-separated; else the file's text). Whatever the
// input, loading either succeeds or throws ConfigError -- nothing else --
// and after a success every check holds, the start-up line is JSON that masks
// every secret, and an inline api_tokens value parses or throws ConfigError
// naming api_tokens.
//
// Inputs that would make the loader read another file are skipped: --config
// flags, and api_tokens naming a file (both are the operator's own choice,
// and /dev/stdin would block the fuzzer).

#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <type_traits>
#include <vector>

#include <nlohmann/json.hpp>

#include "api/auth.hpp"
#include "boxgate/config.hpp"
#include "boxgate/options.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

namespace {

// The config file, in memory: rewritten for each input.
const std::string& config_path(const std::string& text) {
  static const int fd = ::memfd_create("boxgate-fuzz-config", 0);
  static const std::string path = "/proc/self/fd/" + std::to_string(fd);
  check(fd >= 0 && ::ftruncate(fd, 0) == 0, "memfd");
  check(::pwrite(fd, text.data(), text.size(), 0) == static_cast<ssize_t>(text.size()), "memfd write");
  return path;
}

std::vector<std::string> split_flags(const std::string& text) {
  std::vector<std::string> args;
  std::size_t start = 0;
  while (start <= text.size() && args.size() < 64) {
    std::size_t nul = text.find('\0', start);
    args.push_back(text.substr(start, nul == std::string::npos ? std::string::npos : nul - start));
    if (nul == std::string::npos) break;
    start = nul + 1;
  }
  return args;
}

// Every secret key shows "" or "***" in the start-up line, whatever was loaded.
void check_secrets_masked(const Options& options) {
  const auto line = nlohmann::json::parse(options.describe(), nullptr, false);
  check(line.is_object(), "the start-up line is not a JSON object");
  for (const auto& name : {"redis_password", "mqtt_password", "api_tokens"}) {
    if (!line.contains(name)) continue;
    const std::string shown = line[name].get<std::string>();
    check(shown.empty() || shown == "***", "a secret is not masked in the start-up line");
  }
}

template <class Config>
void load(Options& options, Config& config, const std::vector<std::string>& args) {
  std::vector<const char*> argv{"fuzz"};
  for (const auto& a : args) argv.push_back(a.c_str());
  Options::Outcome outcome = Options::Outcome::run;
  try {
    outcome = options.load(static_cast<int>(argv.size()), argv.data());
  } catch (const ConfigError&) {
    return;
  }
  if constexpr (std::is_same_v<Config, GatewayConfig>) {
    check(config.default_timeout_ms <= config.max_timeout_ms, "a check did not hold");
    if (!config.api_tokens.empty() && !gateway::names_token_file(config.api_tokens)) {
      try {
        for (const auto& token : gateway::parse_api_tokens(config.api_tokens)) {
          check(gateway::is_valid_token_name(token.name) && !token.scopes.empty(), "a token that should not parse");
        }
      } catch (const ConfigError& e) {
        check(e.key() == "api_tokens", "api_tokens error names another key");
      }
    }
  }
  check(config.redis.stall_after_ms <= config.redis.dead_after_ms, "a check did not hold");
  if (outcome == Options::Outcome::run) check_secrets_masked(options);
}

template <class Config>
void run(const std::string& text, bool flags, void (*declare)(Options&, Config&)) {
  Config config;
  Options options("fuzz", "fuzz");
  declare(options, config);
  if (!flags) return load(options, config, {"--config", config_path(text)});
  std::vector<std::string> args = split_flags(text);
  for (const auto& a : args) {
    if (a.rfind("--config", 0) == 0) return;
  }
  load(options, config, args);
}

}  // namespace

int config(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  const bool flags = data[0] & 2;
  if (data[0] & 1) {
    run<GatewayConfig>(text, flags, &declare_gateway);
  } else {
    run<BridgeConfig>(text, flags, &declare_bridge);
  }
  return 0;
}

}  // namespace boxgate::fuzz
