#pragma once
// A real mosquitto started with the shipped hardened setup
// (config/mosquitto-secure.conf and config/mosquitto.acl): no anonymous
// clients, a password file made with mosquitto_passwd, and a TLS listener
// whose certificates are made at test time with openssl.
//
// Callers: the test thread that owns it (not thread-safe). Construction runs
// openssl and mosquitto_passwd as child processes (a few hundred ms), then
// starts the broker and waits for both its ports (10 s), else throws with the
// log tail. The broker is stopped in the destructor (see Process).
//
// The shipped config has two TLS listeners: the devices' (tls_port: the
// client id is replaced by the user name) and the daemons' (cert_port:
// require_certificate, the client's certificate signed by the test CA). The
// test copy adds a clear-text listener on 127.0.0.1 with the same users and
// ACL (per_listener_settings false; client ids as sent), so tests of
// credentials and ACLs need no TLS client. For
// tests of TLS failures it also makes a second, unrelated CA ("wrong CA") and
// a client certificate signed by the right one, its key also encrypted.

#include <map>
#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/tempdir.hpp"
#include "support/test_pki.hpp"

namespace boxgate::test {

class SecureMosquitto {
 public:
  // The gateway's and the bridge's broker users (config/mosquitto.acl).
  static constexpr const char* kGatewayUser = "gateway@boxgate";
  static constexpr const char* kBridgeUser = "bridge@boxgate";

  // `users`: user name -> password, written to the password file; box users
  // are named by their box id. `extra_config` lines are appended.
  SecureMosquitto(const TempDir& dir, std::map<std::string, std::string> users,
                  std::vector<std::string> extra_config = {});
  SecureMosquitto(const SecureMosquitto&) = delete;
  SecureMosquitto& operator=(const SecureMosquitto&) = delete;

  int tls_port() const { return tls_port_; }      // the devices' listener
  int plain_port() const { return plain_port_; }
  int cert_port() const { return cert_port_; }    // the daemons' listener (require_certificate)
  std::string tls_uri() const { return "ssl://127.0.0.1:" + std::to_string(tls_port_); }
  std::string plain_uri() const { return "tcp://127.0.0.1:" + std::to_string(plain_port_); }
  std::string cert_uri() const { return "ssl://127.0.0.1:" + std::to_string(cert_port_); }
  const TestPki& pki() const { return pki_; }
  const std::string& password_of(const std::string& user) const { return users_.at(user); }
  const std::string& config_path() const { return config_path_; }
  Process& process() { return process_; }
  bool running() { return process_.running(); }

 private:
  std::map<std::string, std::string> users_;
  TestPki pki_;
  int tls_port_;
  int plain_port_;
  int cert_port_;
  std::string config_path_;
  Process process_;
};

// The shipped config/mosquitto-secure.conf with its paths and ports replaced
// (each key must be present in the shipped file as often as the fixture
// expects, so the two never drift apart), plus the test-only lines. Used by
// SecureMosquitto.
std::string secure_mosquitto_config(int tls_port, int cert_port, int plain_port, const std::string& password_file,
                                    const std::string& acl_file, const TestPki& pki,
                                    const std::vector<std::string>& extra_config = {});

}  // namespace boxgate::test
