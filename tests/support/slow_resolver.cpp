// A getaddrinfo() for the tests to preload (LD_PRELOAD) into a daemon: a DNS
// server that is slow or dead, without DNS traffic and without /etc edits.
// It sits outside the code under test, so the daemon's getaddrinfo() call
// (libmosquitto's, inside mosquitto_connect_async) really waits.
//
//   slow-<ms>.boxgate.test  answers 127.0.0.1 after <ms> milliseconds
//   dead-<ms>.boxgate.test  fails with EAI_AGAIN (what a resolver whose
//                           servers do not answer says) after <ms>
//
// Every other name goes to the next getaddrinfo() (libc's, or a sanitizer's
// interceptor in front of it). ".test" is reserved (RFC 6761): these names
// never reach a resolver. Thread-safe: it keeps no state.

#include <dlfcn.h>
#include <netdb.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <ctime>

namespace {

constexpr const char kDomain[] = ".boxgate.test";

// The delay in ms of "<prefix><ms>.boxgate.test", or -1 for any other name.
long delay_of(const char* node, const char* prefix) {
  std::size_t prefix_size = std::strlen(prefix);
  if (!node || std::strncmp(node, prefix, prefix_size) != 0) return -1;
  char* end = nullptr;
  long ms = std::strtol(node + prefix_size, &end, 10);
  if (end == node + prefix_size || ms < 0 || std::strcmp(end, kDomain) != 0) return -1;
  return ms;
}

void sleep_ms(long ms) {
  timespec left{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&left, &left) != 0 && errno == EINTR) {
  }
}

using GetAddrInfo = int (*)(const char*, const char*, const addrinfo*, addrinfo**);

int next_getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) {
  static auto next = reinterpret_cast<GetAddrInfo>(dlsym(RTLD_NEXT, "getaddrinfo"));
  return next ? next(node, service, hints, res) : EAI_SYSTEM;
}

}  // namespace

extern "C" int getaddrinfo(const char* node, const char* service, const addrinfo* hints, addrinfo** res) noexcept {
  if (long ms = delay_of(node, "slow-"); ms >= 0) {
    sleep_ms(ms);
    return next_getaddrinfo("127.0.0.1", service, hints, res);  // numeric: no lookup
  }
  if (long ms = delay_of(node, "dead-"); ms >= 0) {
    sleep_ms(ms);
    return EAI_AGAIN;
  }
  return next_getaddrinfo(node, service, hints, res);
}
