#pragma once
// What keeps a browser from being used against the API (docs/contract.md,
// "Browsers"): a page on another site that makes the user's browser send a
// command (in open mode, or through a proxy that adds the token), and a page
// whose own DNS name was re-pointed at this gateway (DNS rebinding). Three
// checks, each one call in the route table before the token is looked at;
// each answers the exchange and returns false when it refuses the request.
// Loop thread only.

#include <string>
#include <string_view>
#include <vector>

#include "boxgate/http/server.hpp"

namespace boxgate::gateway {

class BrowserGuard {
 public:
  // `allowed_origins`: origins served besides the gateway's own, as a
  // browser writes them ("https://app.example.com"). `allowed_hosts`: the
  // Host header values served, "name" (any port) or "name:port"; empty: any.
  BrowserGuard(std::vector<std::string> allowed_origins, std::vector<std::string> allowed_hosts);

  // 421 host_not_allowed unless allowed_hosts is empty or lists the Host
  // header. 421 (Misdirected Request): this server does not answer for that
  // name, which is what a rebound name is; a 400 would call a valid request
  // malformed.
  bool host_allowed(http::Exchange& ex) const;

  // 403 origin_not_allowed for a cross-site Origin that allowed_origins does
  // not list. No Origin: not a browser's cross-site call, served. Same origin:
  // the Origin's host[:port] equals the Host header (default ports 80/443
  // dropped from both), so it holds behind a proxy that keeps Host.
  bool origin_allowed(http::Exchange& ex) const;

 private:
  std::vector<std::string> allowed_origins_;
  std::vector<std::string> allowed_hosts_;
};

// 415 unsupported_media_type unless the request says Content-Type:
// application/json (parameters such as charset allowed). A browser can send
// text/plain, form or multipart bodies to any site without asking it first;
// application/json needs a CORS preflight, which this API never grants.
bool json_declared(http::Exchange& ex);

}  // namespace boxgate::gateway
