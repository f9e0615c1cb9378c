// run_until_signal (include/boxgate/device/device.hpp): the main loop of a
// device program. Loop thread only.

#include "boxgate/daemon.hpp"
#include "boxgate/device/device.hpp"

namespace boxgate::device {

void run_until_signal(EventLoop& loop, Device& device, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now();
  // Polled rather than called back: the stop ends inside libmosquitto's
  // write call, where the loop must not be left.
  Timer until_stopped(loop, [&] {
    if (device.stopped() || std::chrono::steady_clock::now() >= deadline) loop.stop();
  });
  ShutdownSignals signals(loop, [&] {
    deadline = std::chrono::steady_clock::now() + timeout;
    device.stop(timeout);
    until_stopped.start(std::chrono::milliseconds(5), /*repeat=*/true);
  });
  loop.run();
}

}  // namespace boxgate::device
