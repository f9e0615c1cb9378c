// jittered_backoff: the one reconnect delay of every connection.

#include "boxgate/backoff.hpp"

#include <gtest/gtest.h>

namespace boxgate {
namespace {

TEST(Backoff, DoublesFrom100msWithinTheUpperHalf) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    const long long full = 100LL << attempt;
    for (int i = 0; i < 200; ++i) {
      auto delay = jittered_backoff(attempt, 600000).count();
      EXPECT_GE(delay, full / 2) << "attempt " << attempt;
      EXPECT_LE(delay, full) << "attempt " << attempt;
    }
  }
}

TEST(Backoff, NeverExceedsTheCapEvenAfterManyAttempts) {
  for (int attempt : {10, 16, 17, 1000, 1 << 30}) {
    auto delay = jittered_backoff(attempt, 5000).count();
    EXPECT_GE(delay, 2500) << "attempt " << attempt;
    EXPECT_LE(delay, 5000) << "attempt " << attempt;
  }
}

}  // namespace
}  // namespace boxgate
