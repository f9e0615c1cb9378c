#include "notify/webhook_endpoints.hpp"

#include <algorithm>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "boxgate/digest.hpp"
#include "boxgate/ids.hpp"
#include "boxgate/json_scan.hpp"
#include "commands/command_record.hpp"

namespace boxgate::gateway {

namespace {

constexpr std::size_t kMaxFileBytes = 1 << 20;
constexpr std::size_t kMaxEndpoints = 64;
constexpr std::string_view kSecretPrefix = "whsec_";

[[noreturn]] void fail(const std::string& where, const std::string& what) {
  throw WebhookConfigError(where + ": " + what);
}

std::string read_text(const std::string& path, const std::string& where) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(where, "cannot read " + path);
  std::ostringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  if (s.size() > kMaxFileBytes) fail(where, path + " is larger than 1 MiB");
  return s;
}

bool valid_kind(const std::string& kind) {
  if (kind == "command.*" || kind == "device.*" || kind == "event.*" || kind == "device.online" ||
      kind == "device.offline") {
    return true;
  }
  if (kind.starts_with("command.")) return state_of(std::string_view(kind).substr(8)).has_value();
  if (kind.starts_with("event.")) return EventName::parse(std::string_view(kind).substr(6)).has_value();
  return false;
}

// "whsec_<base64>" (Standard Webhooks) to the key bytes.
std::string decode_secret(std::string text, const std::string& where) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' || text.back() == ' ')) text.pop_back();
  if (!text.starts_with(kSecretPrefix)) fail(where, "the secret must start with whsec_ (Standard Webhooks)");
  auto key = digest::from_base64(std::string_view(text).substr(kSecretPrefix.size()));
  if (!key || key->size() < 24 || key->size() > 64) {
    fail(where, "the secret must be whsec_ and base64 of 24 to 64 random bytes");
  }
  return *key;
}

WebhookEndpoint parse_endpoint(const nlohmann::json& j, std::size_t index, const std::string& base_dir) {
  std::string where = "endpoint " + std::to_string(index);
  if (!j.is_object()) fail(where, "must be an object");
  WebhookEndpoint e;
  if (!j.contains("name") || !j["name"].is_string() || !is_valid_id(j["name"].get<std::string>())) {
    fail(where, "needs a name matching the id pattern");
  }
  e.name = j["name"].get<std::string>();
  where = "endpoint '" + e.name + "'";
  for (const auto& [key, value] : j.items()) {
    static const char* known[] = {"name", "url", "secret", "secret_file", "kinds", "boxes", "max_in_flight",
                                  "allow_http"};
    if (std::find(std::begin(known), std::end(known), key) == std::end(known)) fail(where, "unknown field " + key);
    (void)value;
  }
  if (!j.contains("url") || !j["url"].is_string()) fail(where, "needs a url");
  e.url = j["url"].get<std::string>();
  // Checked before use: json::value() throws its own type_error for a
  // non-boolean, which the callers (start, SIGHUP) do not expect.
  if (j.contains("allow_http") && !j["allow_http"].is_boolean()) fail(where, "allow_http must be true or false");
  bool allow_http = j.contains("allow_http") && j["allow_http"].get<bool>();
  bool https = e.url.starts_with("https://");
  bool http = e.url.starts_with("http://");
  if (!https && !(http && allow_http)) {
    fail(where, http ? "an http:// url needs \"allow_http\": true" : "the url must start with https://");
  }
  if (e.url.size() > 2048 || e.url.find_first_of(" \r\n\t") != std::string::npos) fail(where, "the url is malformed");
  bool inline_secret = j.contains("secret");
  bool file_secret = j.contains("secret_file");
  if (inline_secret == file_secret) fail(where, "needs exactly one of secret and secret_file");
  if (inline_secret) {
    if (!j["secret"].is_string()) fail(where, "secret must be a string");
    e.secret = decode_secret(j["secret"].get<std::string>(), where);
  } else {
    if (!j["secret_file"].is_string()) fail(where, "secret_file must be a string");
    std::string path = j["secret_file"].get<std::string>();
    if (!path.starts_with("/")) path = base_dir + "/" + path;
    e.secret = decode_secret(read_text(path, where), where);
  }
  if (!j.contains("kinds") || !j["kinds"].is_array() || j["kinds"].empty()) fail(where, "needs a list of kinds");
  for (const auto& k : j["kinds"]) {
    if (!k.is_string() || !valid_kind(k.get<std::string>())) {
      fail(where, "kind " + k.dump() + " is not command.<state>, command.*, device.online, device.offline, "
                  "device.*, event.<name> or event.*");
    }
    e.kinds.push_back(k.get<std::string>());
  }
  if (j.contains("boxes")) {
    auto scope = j["boxes"].is_string() ? Scope::parse(j["boxes"].get<std::string>()) : std::nullopt;
    if (!scope) fail(where, "boxes must be a box id, a prefix pattern such as site7-* or *");
    e.boxes = *scope;
  }
  if (j.contains("max_in_flight")) {
    if (!j["max_in_flight"].is_number_unsigned() || j["max_in_flight"].get<std::uint64_t>() < 1 ||
        j["max_in_flight"].get<std::uint64_t>() > 1024) {
      fail(where, "max_in_flight must be 1..1024");
    }
    e.max_in_flight = j["max_in_flight"].get<std::size_t>();
  }
  return e;
}

}  // namespace

const char* source_name(WebhookSource source) {
  switch (source) {
    case WebhookSource::commands: return "commands";
    case WebhookSource::presence: return "presence";
    case WebhookSource::events: return "events";
    case WebhookSource::replay: return "replay";
  }
  return "?";
}

bool WebhookEndpoint::wants(std::string_view kind, std::string_view box) const {
  if (!boxes.matches(box)) return false;
  for (const std::string& k : kinds) {
    if (k == kind) return true;
    if (k.ends_with(".*") && kind.starts_with(std::string_view(k).substr(0, k.size() - 1))) return true;
  }
  return false;
}

bool WebhookEndpoint::reads(WebhookSource source) const {
  const char* prefix = source == WebhookSource::commands   ? "command."
                       : source == WebhookSource::presence ? "device."
                       : source == WebhookSource::events   ? "event."
                                                           : nullptr;
  if (!prefix) return true;
  for (const std::string& k : kinds) {
    if (k.starts_with(prefix)) return true;
  }
  return false;
}

bool WebhookEndpoint::operator==(const WebhookEndpoint& o) const {
  return name == o.name && url == o.url && secret == o.secret && kinds == o.kinds && boxes.text() == o.boxes.text() &&
         max_in_flight == o.max_in_flight;
}

std::vector<WebhookEndpoint> parse_webhook_endpoints(std::string_view text, const std::string& base_dir) {
  // nlohmann's parser recurses: the iterative scan refuses deep nesting first.
  if (!json::scan(text, 16).ok()) fail("file", "not valid JSON (or nested deeper than 16)");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  if (!j.is_object() || !j.contains("endpoints") || !j["endpoints"].is_array()) {
    fail("file", "must be an object with an \"endpoints\" list");
  }
  if (j["endpoints"].size() > kMaxEndpoints) fail("file", "at most 64 endpoints");
  std::vector<WebhookEndpoint> out;
  for (std::size_t i = 0; i < j["endpoints"].size(); ++i) {
    WebhookEndpoint e = parse_endpoint(j["endpoints"][i], i, base_dir);
    for (const auto& other : out) {
      if (other.name == e.name) fail("endpoint '" + e.name + "'", "the name is used twice");
    }
    out.push_back(std::move(e));
  }
  return out;
}

std::vector<WebhookEndpoint> load_webhook_endpoints(const std::string& path) {
  if (path.empty()) return {};
  std::string dir = path.find('/') == std::string::npos ? "." : path.substr(0, path.rfind('/'));
  if (dir.empty()) dir = "/";
  return parse_webhook_endpoints(read_text(path, "file"), dir);
}

}  // namespace boxgate::gateway
