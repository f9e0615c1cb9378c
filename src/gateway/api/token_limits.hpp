#pragma once
// Per-token limits (docs/security.md, "Per-token limits"): how much of this
// gateway's pending commands and event streams one API token may hold, and
// how many requests per second it may send to all gateways together.
//
// The shares are counted here, per gateway: the pools they protect
// (max_pending, max_streams) are per gateway, a count in memory costs the
// command path nothing, and it cannot leak when a replica dies (a count in
// Redis would outlive the commands of a crashed replica). The rate is the
// one limit that must be cluster-wide, and is (api/rate_limiter.hpp).
//
// Thread ownership: loop thread only.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>

namespace boxgate::gateway {

// A token's limits. In a token file entry, a member left out is -1 until
// the gateway-wide default fills it (Authorizer).
struct TokenLimits {
  std::int64_t max_pending = -1;  // commands waiting (sync and async) on one gateway
  std::int64_t max_streams = -1;  // event streams open on one gateway
  std::int64_t rate = -1;         // requests per second across all gateways; 0: no rate limit
  std::int64_t burst = -1;        // requests that may come at once (the bucket's size)
};

// What a token holds on this gateway now. Shared by the entries of one
// token name across token reloads (SIGHUP), so a reload resets no count.
struct TokenUsage {
  std::size_t pending = 0;
  std::size_t streams = 0;
};

// One unit of a token's share, held while a command waits or a stream is
// open; given back when destroyed. Move-only; an empty slot holds nothing.
class TokenSlot {
 public:
  enum class Kind { pending, stream };

  TokenSlot() = default;
  // A slot of `kind`, or nullopt when `usage` already holds `limit` of them.
  static std::optional<TokenSlot> take(std::shared_ptr<TokenUsage> usage, Kind kind, std::int64_t limit);

  TokenSlot(TokenSlot&& other) noexcept;
  TokenSlot& operator=(TokenSlot&& other) noexcept;
  TokenSlot(const TokenSlot&) = delete;
  TokenSlot& operator=(const TokenSlot&) = delete;
  ~TokenSlot();

  bool held() const noexcept { return usage_ != nullptr; }

 private:
  TokenSlot(std::shared_ptr<TokenUsage> usage, Kind kind) : usage_(std::move(usage)), kind_(kind) {}
  void release() noexcept;

  std::shared_ptr<TokenUsage> usage_;
  Kind kind_ = Kind::pending;
};

}  // namespace boxgate::gateway
