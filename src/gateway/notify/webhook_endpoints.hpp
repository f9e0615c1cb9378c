#pragma once
// The webhook endpoints an operator configured (docs/webhooks.md): the
// `webhooks` config key names a JSON file
//
//   {"endpoints": [{"name": "billing",
//                   "url": "https://hooks.example.com/boxgate",
//                   "secret": "whsec_<base64>" | "secret_file": "/run/secrets/billing",
//                   "kinds": ["command.succeeded", "device.*", "event.alarm"],
//                   "boxes": "site7-*",            (optional; default "*")
//                   "max_in_flight": 8,            (optional)
//                   "allow_http": false}]}         (optional; http:// URLs only with true)
//
// Only this file says where the gateway connects: no request, header or
// payload can name a URL (no SSRF through the API). Read at start and on
// SIGHUP; a file that does not parse changes nothing (the error is logged).
//
// Pure values and functions; any thread.

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "api/auth.hpp"

namespace boxgate::gateway {

// Which source stream a kind is read from.
enum class WebhookSource { commands, presence, events, replay };
inline constexpr WebhookSource kWebhookSources[] = {WebhookSource::commands, WebhookSource::presence,
                                                    WebhookSource::events, WebhookSource::replay};
const char* source_name(WebhookSource source);

struct WebhookEndpoint {
  std::string name;
  std::string url;
  std::string secret;  // the key bytes (the base64 after whsec_, decoded)
  std::vector<std::string> kinds;  // "command.succeeded", "command.*", "device.online", "event.*", ...
  Scope boxes = *Scope::parse("*");
  std::size_t max_in_flight = 0;  // 0: the gateway's webhook_max_in_flight

  // Whether this endpoint wants an entry of `kind` about `box`.
  bool wants(std::string_view kind, std::string_view box) const;
  // Whether any of its kinds is read from `source` (replay: always).
  bool reads(WebhookSource source) const;
  bool operator==(const WebhookEndpoint&) const;
};

struct WebhookConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Parses the file's text; throws WebhookConfigError naming the endpoint and
// field at fault. `base_dir`: where relative secret_file paths start.
std::vector<WebhookEndpoint> parse_webhook_endpoints(std::string_view json, const std::string& base_dir = ".");
// Reads and parses the file (empty path: no endpoints).
std::vector<WebhookEndpoint> load_webhook_endpoints(const std::string& path);

}  // namespace boxgate::gateway
