#pragma once
// The broker address in mqtt_uri: scheme://host[:port].
//
//   tcp://host:port, mqtt://host:port   plain TCP, default port 1883
//   ssl://host:port, mqtts://host:port  TLS, default port 8883 (the two names paho also takes)
//   host may be an IPv6 literal in brackets: tcp://[::1]:1883
//
// Pure function, any thread.

#include <optional>
#include <string>

namespace boxgate::mqtt {

struct BrokerAddress {
  std::string host;
  int port = 1883;
  bool tls = false;
};

// nullopt and `why` set when the URI is not one of the forms above.
std::optional<BrokerAddress> parse_broker_uri(const std::string& uri, std::string* why = nullptr);

}  // namespace boxgate::mqtt
