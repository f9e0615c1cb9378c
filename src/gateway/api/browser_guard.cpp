#include "api/browser_guard.hpp"

#include <algorithm>
#include <utility>

#include "api/errors.hpp"

namespace boxgate::gateway {

namespace {

bool iequals(std::string_view a, std::string_view b) {
  return std::equal(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
    auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; };
    return lower(x) == lower(y);
  });
}

// "name:port" -> "name", "[v6]:port" -> "[v6]"; a value without a port as is.
std::string_view host_name(std::string_view host) {
  if (host.starts_with('[')) return host.substr(0, host.find(']') + 1);
  auto colon = host.find(':');
  return colon != std::string_view::npos && host.rfind(':') == colon ? host.substr(0, colon) : host;
}

// host[:port] without the scheme's default port: "a:80" under http is "a".
std::string_view without_default_port(std::string_view authority, std::string_view scheme) {
  std::string_view port = iequals(scheme, "https") ? ":443" : iequals(scheme, "http") ? ":80" : "";
  if (!port.empty() && authority.size() > port.size() && authority.ends_with(port) &&
      host_name(authority).size() == authority.size() - port.size()) {
    authority.remove_suffix(port.size());
  }
  return authority;
}

// Whether `origin` (scheme://host[:port], as browsers send it) names the
// server the request was sent to (its Host header).
bool same_origin(std::string_view origin, std::string_view host) {
  auto sep = origin.find("://");
  if (sep == std::string_view::npos || host.empty()) return false;
  std::string_view scheme = origin.substr(0, sep);
  std::string_view authority = origin.substr(sep + 3);
  if (authority.empty() || authority.find('/') != std::string_view::npos) return false;
  return iequals(without_default_port(authority, scheme), without_default_port(host, scheme));
}

}  // namespace

BrowserGuard::BrowserGuard(std::vector<std::string> allowed_origins, std::vector<std::string> allowed_hosts)
    : allowed_origins_(std::move(allowed_origins)), allowed_hosts_(std::move(allowed_hosts)) {}

bool BrowserGuard::host_allowed(http::Exchange& ex) const {
  if (allowed_hosts_.empty()) return true;
  const char* given = ex.header("Host");
  std::string_view host = given ? given : "";
  for (const std::string& allowed : allowed_hosts_) {
    bool any_port = host_name(allowed).size() == allowed.size();
    if (!host.empty() && (iequals(host, allowed) || (any_port && iequals(host_name(host), allowed)))) return true;
  }
  reply_error(ex, Error::host_not_allowed,
              "This gateway does not serve the host '" + quoted_name(host) + "' (allowed_hosts).", nullptr, nullptr);
  return false;
}

bool BrowserGuard::origin_allowed(http::Exchange& ex) const {
  const char* origin = ex.header("Origin");
  if (!origin) return true;
  const char* host = ex.header("Host");
  if (same_origin(origin, host ? host : "")) return true;
  for (const std::string& allowed : allowed_origins_) {
    if (iequals(origin, allowed)) return true;
  }
  reply_error(ex, Error::origin_not_allowed,
              "Requests from the origin '" + quoted_name(origin) + "' are not allowed (allowed_origins).", nullptr,
              nullptr);
  return false;
}

bool json_declared(http::Exchange& ex) {
  const char* given = ex.header("Content-Type");
  std::string_view type = given ? given : "";
  type = type.substr(0, type.find(';'));
  while (!type.empty() && (type.back() == ' ' || type.back() == '\t')) type.remove_suffix(1);
  while (!type.empty() && (type.front() == ' ' || type.front() == '\t')) type.remove_prefix(1);
  if (iequals(type, "application/json")) return true;
  reply_error(ex, Error::unsupported_media_type,
              given ? "The body must be sent as Content-Type: application/json, not '" + quoted_name(given) + "'."
                    : "The body must be sent as Content-Type: application/json.",
              nullptr, nullptr);
  return false;
}

}  // namespace boxgate::gateway
