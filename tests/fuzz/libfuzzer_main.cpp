// The libFuzzer entry point of one target; compiled once per target with
// BOXGATE_FUZZ_TARGET set to its function's name (tests/fuzz/CMakeLists.txt).

#include "targets.hpp"

#ifndef BOXGATE_FUZZ_TARGET
#error "BOXGATE_FUZZ_TARGET must name a function of targets.hpp"
#endif

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  return boxgate::fuzz::BOXGATE_FUZZ_TARGET(data, size);
}
