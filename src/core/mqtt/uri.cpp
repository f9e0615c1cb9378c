#include "boxgate/mqtt/uri.hpp"

#include <string_view>

namespace boxgate::mqtt {

namespace {
std::optional<BrokerAddress> fail(std::string* why, const char* reason) {
  if (why) *why = reason;
  return std::nullopt;
}

// Decimal 1..65535, nothing else.
std::optional<int> parse_port(std::string_view text) {
  if (text.empty() || text.size() > 5) return std::nullopt;
  int port = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    port = port * 10 + (c - '0');
  }
  if (port < 1 || port > 65535) return std::nullopt;
  return port;
}
}  // namespace

std::optional<BrokerAddress> parse_broker_uri(const std::string& uri, std::string* why) {
  BrokerAddress address;
  std::string_view rest(uri);
  if (rest.rfind("tcp://", 0) == 0 || rest.rfind("mqtt://", 0) == 0) {
    rest.remove_prefix(rest.find("://") + 3);
  } else if (rest.rfind("ssl://", 0) == 0 || rest.rfind("mqtts://", 0) == 0) {
    rest.remove_prefix(rest.find("://") + 3);
    address.tls = true;
    address.port = 8883;
  } else {
    return fail(why, "must start with tcp://, mqtt://, ssl:// or mqtts://");
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);

  std::string_view port_text;
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    auto close = rest.find(']');
    if (close == std::string_view::npos) return fail(why, "has an unclosed '['");
    address.host = std::string(rest.substr(1, close - 1));
    rest.remove_prefix(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') return fail(why, "has text after ']' that is not :port");
      port_text = rest.substr(1);
      if (port_text.empty()) return fail(why, "has an empty port");
    }
  } else {
    auto colon = rest.rfind(':');
    address.host = std::string(rest.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = rest.substr(colon + 1);
      if (port_text.empty()) return fail(why, "has an empty port");
    }
  }
  if (address.host.empty()) return fail(why, "has no host");
  if (address.host.find(':') != std::string::npos && uri.find('[') == std::string::npos) {
    return fail(why, "needs brackets around an IPv6 address");
  }
  if (!port_text.empty()) {
    auto port = parse_port(port_text);
    if (!port) return fail(why, "has a port that is not 1..65535");
    address.port = *port;
  }
  return address;
}

}  // namespace boxgate::mqtt
