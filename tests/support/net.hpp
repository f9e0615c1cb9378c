#pragma once
// Loopback helpers for tests: pick free ports and poll with a deadline.
//
// Callers: any test thread. Nothing here starts a process or keeps a socket
// open after it returns. Tests never sleep for a fixed time; they poll a
// condition with eventually() or wait_for_port() and a deadline.

#include <chrono>
#include <string>
#include <thread>

namespace boxgate::test {

using namespace std::chrono_literals;

// A port of 127.0.0.1 that nothing holds now, from 10000-22767 (below the
// kernel's ephemeral ports, so no outgoing connection takes it before the
// caller binds it). Another test may still bind it first; with each test
// process walking the range from its own start, that is rare enough to
// accept. Throws std::runtime_error if none of the range is free.
int free_port();

// True when 127.0.0.1:port can be bound now (the socket is closed again).
bool port_bindable(int port);

// Socket options a test client sets before it connects (a receive buffer
// set later would not shrink the window the handshake advertised).
struct ConnectOptions {
  int receive_buffer = 0;  // SO_RCVBUF in bytes; 0: the kernel's default
  bool no_delay = false;   // TCP_NODELAY
};

// A connected, blocking TCP socket to 127.0.0.1:port (the caller closes it);
// throws std::runtime_error naming `who` when the connection fails.
int connect_loopback(int port, const std::string& who, ConnectOptions options = {});

// True once a TCP connect() to 127.0.0.1:port succeeds, false at the deadline.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

// True when nothing accepts connections on 127.0.0.1:port (one connect attempt).
bool port_closed(int port);

// A listening TCP socket on 127.0.0.1 (a port the kernel picks) that never
// accepts: the kernel completes the handshakes, nobody answers (a frozen
// peer), and a connection attempt shows in its backlog. Throws
// std::runtime_error if it cannot listen.
class SilentListener {
 public:
  SilentListener();
  ~SilentListener();
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  int port() const { return port_; }
  int fd() const { return fd_; }
  // True when a connection waits in the backlog (nothing ever takes it).
  bool pending_connection() const;

 private:
  int fd_ = -1;
  int port_ = 0;
};

// Calls pred() every `every` until it returns true (-> true) or the timeout
// passes (-> false). pred runs on the calling thread; it is called at least
// once, and once more right at the deadline.
template <class F>
bool eventually(F pred, std::chrono::milliseconds timeout, std::chrono::milliseconds every = 20ms) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    if (pred()) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(every);
  }
}

}  // namespace boxgate::test
