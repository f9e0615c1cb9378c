#include "support/secure_mosquitto.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "support/net.hpp"

namespace boxgate::test {

namespace {

std::string shipped(const std::string& name) { return BOXGATE_SOURCE_DIR "/config/" + name; }

}  // namespace

std::string secure_mosquitto_config(int tls_port, int cert_port, int plain_port, const std::string& password_file,
                                    const std::string& acl_file, const TestPki& pki,
                                    const std::vector<std::string>& extra_config) {
  const std::string path = shipped("mosquitto-secure.conf");
  std::istringstream in(read_file(path));
  // Every key the test replaces, one value per occurrence in the shipped
  // file, in order: the devices' listener, then the daemons' (client
  // certificates signed by the test CA). Each must be there exactly so often.
  const std::string tls = std::to_string(tls_port) + " 127.0.0.1", cert = std::to_string(cert_port) + " 127.0.0.1";
  std::map<std::string, std::vector<std::string>> replace = {
      {"password_file", {password_file}},
      {"acl_file", {acl_file}},
      {"listener", {tls, cert}},
      {"cafile", {pki.ca_cert, pki.ca_cert}},
      {"certfile", {pki.server_cert, pki.server_cert}},
      {"keyfile", {pki.server_key, pki.server_key}},
      {"log_dest", {"stderr"}},
  };
  std::map<std::string, std::size_t> seen;
  std::string conf;
  for (std::string line; std::getline(in, line);) {
    std::string key = line.substr(0, line.find(' '));
    if (!line.empty() && line[0] != '#' && replace.count(key)) {
      std::size_t at = seen[key]++;
      if (at >= replace[key].size()) throw std::runtime_error(path + ": more '" + key + "' lines than the fixture expects");
      line = key + " " + replace[key][at];
    }
    conf += line + "\n";
  }
  for (const auto& [key, values] : replace) {
    if (seen[key] != values.size()) {
      throw std::runtime_error(path + " has " + std::to_string(seen[key]) + " '" + key + "' lines, not " +
                               std::to_string(values.size()));
    }
  }
  conf += "\n# ---- test only\n";
  // Started as root, mosquitto 2.0 drops to the user `mosquitto`, who cannot
  // read the test directory.
  if (::geteuid() == 0) conf += "user root\n";
  conf += "log_type error\nlog_type warning\nlog_type notice\nlog_type information\n";
  // Clear text, same users and ACL: credentials tests without a TLS client.
  conf += "listener " + std::to_string(plain_port) + " 127.0.0.1\n";
  for (const auto& line : extra_config) conf += line + "\n";
  return conf;
}

SecureMosquitto::SecureMosquitto(const TempDir& dir, std::map<std::string, std::string> users,
                                 std::vector<std::string> extra_config)
    : users_(std::move(users)),
      pki_(make_test_pki(dir)),
      tls_port_(free_port()),
      plain_port_(free_port()),
      cert_port_(free_port()) {
  // The password file, as docs/security.md says to make it (-b: the test has
  // no terminal; outside tests prefer the prompt, -b shows the password in ps).
  const std::string password_file = dir.file("mosquitto.passwd");
  bool first = true;
  for (const auto& [user, password] : users_) {
    std::vector<std::string> argv{"mosquitto_passwd"};
    if (first) argv.push_back("-c");
    for (const auto& a : {std::string("-b"), password_file, user, password}) argv.push_back(a);
    run_tool(dir, "mosquitto_passwd", std::move(argv));
    first = false;
  }
  ::chmod(password_file.c_str(), 0600);
  const std::string acl = read_file(shipped("mosquitto.acl"));
  if (acl.empty()) throw std::runtime_error("cannot read " + shipped("mosquitto.acl"));
  const std::string acl_file = dir.write("mosquitto.acl", acl);
  const std::string name = "mosquitto-secure-" + std::to_string(tls_port_);
  config_path_ = dir.write(name + ".conf",
                           secure_mosquitto_config(tls_port_, cert_port_, plain_port_, password_file, acl_file, pki_,
                                                   extra_config));
  process_ = Process(name, {"mosquitto", "-c", config_path_}, dir.path());
  bool ok = eventually(
      [this] {
        return !process_.running() ||
               (wait_for_port(tls_port_, 0ms) && wait_for_port(plain_port_, 0ms) && wait_for_port(cert_port_, 0ms));
      },
      10s, 10ms);
  if (!ok || !process_.running()) {
    throw std::runtime_error("secure mosquitto did not start; log:\n" + process_.log_tail());
  }
}

}  // namespace boxgate::test
