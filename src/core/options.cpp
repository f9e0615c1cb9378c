#include "boxgate/options.hpp"

#include <sys/stat.h>

#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "boxgate/version.hpp"

namespace boxgate {

namespace {

std::string to_env_name(const std::string& key) {
  std::string env = "BOXGATE_";
  for (char c : key) env.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
  return env;
}

std::string normalise_flag(std::string flag) {
  for (char& c : flag) {
    if (c == '-') c = '_';
  }
  return flag;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream in(text);
  std::string item;
  while (std::getline(in, item, ',')) {
    if (!item.empty()) out.push_back(item);
  }
  return out;
}

std::string join_list(const std::vector<std::string>& items) {
  std::string out;
  for (const auto& item : items) out += (out.empty() ? "" : ",") + item;
  return out;
}

}  // namespace

Options::Options(std::string program, std::string summary)
    : program_(std::move(program)), summary_(std::move(summary)) {}

void Options::add(std::string key, std::string* target, std::string help, bool secret) {
  keys_.push_back({key, std::move(help), *target, secret, [target](const std::string& v) { *target = v; },
                   [target] { return *target; }});
}

void Options::add(std::string key, std::int64_t* target, std::int64_t min, std::int64_t max,
                  std::string help) {
  auto setter = [target, min, max, key](const std::string& v) {
    std::int64_t parsed = 0;
    auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), parsed);
    if (v.empty() || ec != std::errc() || end != v.data() + v.size()) {
      throw ConfigError(key, "'" + v + "' is not an integer");
    }
    if (parsed < min || parsed > max) {
      throw ConfigError(key, std::to_string(parsed) + " is outside " + std::to_string(min) + ".." +
                                 std::to_string(max));
    }
    *target = parsed;
  };
  keys_.push_back({key, std::move(help), std::to_string(*target), false, setter,
                   [target] { return std::to_string(*target); }});
}

void Options::add(std::string key, bool* target, std::string help) {
  auto setter = [target, key](const std::string& v) {
    if (v == "true" || v == "1" || v == "yes") {
      *target = true;
    } else if (v == "false" || v == "0" || v == "no") {
      *target = false;
    } else {
      throw ConfigError(key, "'" + v + "' is not a boolean (true/false)");
    }
  };
  keys_.push_back({key, std::move(help), *target ? "true" : "false", false, setter,
                   [target] { return std::string(*target ? "true" : "false"); }});
}

void Options::add(std::string key, std::vector<std::string>* target, std::string help, bool secret) {
  keys_.push_back({key, std::move(help), join_list(*target), secret,
                   [target](const std::string& v) { *target = split_list(v); },
                   [target] { return join_list(*target); }});
}

void Options::check(std::function<void()> rule) { checks_.push_back(std::move(rule)); }

Options::Key* Options::find(const std::string& name) {
  for (auto& key : keys_) {
    if (key.name == name) return &key;
  }
  return nullptr;
}

void Options::apply_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw ConfigError("config", "cannot read file '" + path + "'");
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError("config", "'" + path + "' is not valid JSON: " + e.what());
  }
  if (!doc.is_object()) throw ConfigError("config", "'" + path + "' must hold a JSON object");
  for (const auto& [name, value] : doc.items()) {
    Key* key = find(name);
    if (!key) throw ConfigError(name, "unknown key in '" + path + "'");
    // An empty secret ("mqtt_password": "" in a shipped file) exposes nothing.
    bool empty = (value.is_string() && value.get<std::string>().empty()) || (value.is_array() && value.empty());
    if (key->secret && !empty) file_secrets_.push_back(name);
    if (value.is_string()) {
      key->set(value.get<std::string>());
    } else if (value.is_array()) {
      std::vector<std::string> items;
      for (const auto& item : value) {
        if (!item.is_string()) throw ConfigError(name, "list items must be strings");
        items.push_back(item.get<std::string>());
      }
      key->set(join_list(items));
    } else if (value.is_number_integer() || value.is_boolean()) {
      key->set(value.dump());
    } else {
      throw ConfigError(name, "unsupported JSON type " + std::string(value.type_name()));
    }
  }
}

void Options::apply_env() {
  for (auto& key : keys_) {
    if (const char* v = std::getenv(to_env_name(key.name).c_str())) key.set(v);
  }
}

Options::Outcome Options::load(int argc, const char* const* argv) {
  std::vector<std::pair<std::string, std::string>> flags;
  std::string config_path;
  if (const char* env = std::getenv("BOXGATE_CONFIG")) config_path = env;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") return Outcome::help;
    if (arg == "--version") return Outcome::version;
    if (arg.rfind("--", 0) != 0) throw ConfigError(arg, "unexpected argument (flags look like --key value)");
    std::string name = normalise_flag(arg.substr(2));
    std::string value;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = arg.substr(2 + eq + 1);
      name.resize(eq);
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      throw ConfigError(name, "flag needs a value");
    }
    if (name == "config") {
      config_path = value;
    } else {
      if (!find(name)) throw ConfigError(name, "unknown flag (see --help)");
      flags.emplace_back(name, value);
    }
  }
  if (!config_path.empty()) {
    config_path_ = config_path;
    apply_file(config_path);
  }
  apply_env();
  for (const auto& [name, value] : flags) find(name)->set(value);
  for (const auto& rule : checks_) rule();
  return Outcome::run;
}

std::string Options::help_text() const {
  std::ostringstream out;
  out << program_ << " " << kVersion << " - " << summary_ << "\n\n"
      << "Usage: " << program_ << " [--config FILE] [--key value ...]\n\n"
      << "Each key is read from the JSON file, then the environment variable\n"
      << "BOXGATE_<KEY>, then the flag --key (dashes or underscores).\n\n";
  for (const auto& key : keys_) {
    std::string flag = key.name;
    for (char& c : flag) {
      if (c == '_') c = '-';
    }
    // A secret's default is never printed: it may have been set in code or
    // by a packager, and --help output ends up in tickets and chat.
    std::string shown = key.secret ? "secret, not shown; prefer the config file or " + to_env_name(key.name) +
                                         " to a flag, which ps shows"
                                   : "default: " + (key.default_text.empty() ? "\"\"" : key.default_text);
    out << "  --" << flag << "  (" << shown << ")\n      " << key.help << "\n";
  }
  out << "  --config FILE\n      JSON file with any of the keys above (or BOXGATE_CONFIG).\n"
      << "  --help, --version\n";
  return out.str();
}

std::vector<std::string> Options::secret_file_warnings() const {
  std::vector<std::string> warnings;
  struct stat info {};
  if (file_secrets_.empty() || ::stat(config_path_.c_str(), &info) != 0) return warnings;
  if ((info.st_mode & (S_IRGRP | S_IROTH)) == 0) return warnings;
  std::string keys;
  for (const auto& name : file_secrets_) keys += (keys.empty() ? "" : ", ") + name;
  char mode[8];
  std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(info.st_mode & 07777));
  warnings.push_back("config file '" + config_path_ + "' holds secrets (" + keys + ") but its mode " + mode +
                     " lets group or others read it; chmod 600 it");
  return warnings;
}

std::string Options::describe() const {
  nlohmann::json out = nlohmann::json::object();
  for (const auto& key : keys_) out[key.name] = key.secret && !key.show().empty() ? "***" : key.show();
  return out.dump();
}

}  // namespace boxgate
