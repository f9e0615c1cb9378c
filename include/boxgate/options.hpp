#pragma once
// Command-line / environment / JSON-file option loading shared by every binary.
//
// Each key is declared once with its target, default (the target's value at
// declaration), range and help. load() applies, in order: the JSON file named
// by --config, then BOXGATE_<KEY> environment variables, then --key flags
// (dashes or underscores). A bad value throws ConfigError naming the key.
// A secret key (a password) never shows its value: --help gives no default
// and describe() masks it.
// Single-threaded: used by main() before any thread starts.

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace boxgate {

class ConfigError : public std::runtime_error {
 public:
  ConfigError(std::string key, const std::string& reason)
      : std::runtime_error(reason), key_(std::move(key)) {}
  const std::string& key() const noexcept { return key_; }

 private:
  std::string key_;
};

class Options {
 public:
  enum class Outcome { run, help, version };

  explicit Options(std::string program, std::string summary);

  void add(std::string key, std::string* target, std::string help, bool secret = false);
  void add(std::string key, std::int64_t* target, std::int64_t min, std::int64_t max, std::string help);
  void add(std::string key, bool* target, std::string help);
  // A list: JSON array of strings, or comma-separated in env and flags.
  void add(std::string key, std::vector<std::string>* target, std::string help, bool secret = false);
  // A check run after every source was applied; throw ConfigError to reject.
  void check(std::function<void()> rule);

  Outcome load(int argc, const char* const* argv);
  std::string help_text() const;
  // The effective values as one JSON line, secrets masked (for the start-up log).
  std::string describe() const;
  // After load(): one sentence per exposed secret, for a start-up warning --
  // the config file sets a secret key and group or others may read it.
  std::vector<std::string> secret_file_warnings() const;

 private:
  struct Key {
    std::string name;
    std::string help;
    std::string default_text;
    bool secret = false;
    std::function<void(const std::string&)> set;   // parses text, throws on a bad value
    std::function<std::string()> show;
  };
  Key* find(const std::string& name);
  void apply_file(const std::string& path);
  void apply_env();

  std::string program_;
  std::string summary_;
  std::vector<Key> keys_;
  std::vector<std::function<void()>> checks_;
  std::string config_path_;               // the --config file applied, if any
  std::vector<std::string> file_secrets_;  // secret keys that file set
};

}  // namespace boxgate
