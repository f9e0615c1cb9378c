// A minimal boxgate device on libboxgate-device (docs/devices.md).
//   example-device --uri tcp://127.0.0.1:1883 --box box-1 [--username U --ca-file F]
//   (the password from BOXGATE_MQTT_PASSWORD, or --password)
// It answers `ping` and `echo`, prints one-way messages and reports its
// uptime as state every 10 s. One thread: the event loop.

#include <cstdlib>
#include <iostream>
#include <string>

#include "boxgate/device/device.hpp"

using boxgate::device::Command;
using boxgate::device::Reply;

int main(int argc, char** argv) {
  boxgate::device::Settings settings;
  if (const char* password = std::getenv("BOXGATE_MQTT_PASSWORD")) settings.password = password;  // not in `ps`
  std::string box = "box-1";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--uri") settings.uri = value;
    else if (flag == "--box") box = value;
    else if (flag == "--prefix") settings.prefix = value;
    else if (flag == "--username") settings.username = value;
    else if (flag == "--password") settings.password = value;
    else if (flag == "--ca-file") settings.ca_file = value;
    else if (flag == "--mqtt-version") settings.version = std::atoi(value.c_str());
    else { std::cerr << "unknown flag " << flag << "\n"; return 2; }
  }
  auto id = boxgate::BoxId::parse(box);
  if (!id) { std::cerr << "invalid box id " << box << "\n"; return 2; }
  settings.boxes = {*id};

  boxgate::EventLoop loop;
  boxgate::device::Device device(loop, settings);

  device.on_command([](const Command& command, Reply reply) {
    if (command.method == "ping") {
      reply.result({{"pong", true}});
    } else if (command.method == "echo") {
      reply.result(command.params);
    } else {
      reply.error("unknown_method", "no method '" + command.method + "'");
    }
  });
  device.on_message([](const boxgate::device::Message& message) {
    std::cout << "message " << message.id.str() << ": " << message.payload << std::endl;
  });

  int uptime_s = 0;
  boxgate::Timer state(loop, [&] {
    uptime_s += 10;
    device.publish_state(*id, "{\"uptime_s\":" + std::to_string(uptime_s) + "}");
  });
  state.start(std::chrono::seconds(10), /*repeat=*/true);

  device.start();
  boxgate::device::run_until_signal(loop, device);  // SIGTERM/SIGINT: offline, then DISCONNECT
  return 0;
}
