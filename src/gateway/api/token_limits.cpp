#include "api/token_limits.hpp"

#include <utility>

namespace boxgate::gateway {

namespace {

std::size_t& count_of(TokenUsage& usage, TokenSlot::Kind kind) noexcept {
  return kind == TokenSlot::Kind::pending ? usage.pending : usage.streams;
}

}  // namespace

std::optional<TokenSlot> TokenSlot::take(std::shared_ptr<TokenUsage> usage, Kind kind, std::int64_t limit) {
  std::size_t& count = count_of(*usage, kind);
  if (limit >= 0 && count >= static_cast<std::size_t>(limit)) return std::nullopt;
  ++count;
  return TokenSlot(std::move(usage), kind);
}

TokenSlot::TokenSlot(TokenSlot&& other) noexcept : usage_(std::move(other.usage_)), kind_(other.kind_) {}

TokenSlot& TokenSlot::operator=(TokenSlot&& other) noexcept {
  if (this != &other) {
    release();
    usage_ = std::move(other.usage_);
    kind_ = other.kind_;
  }
  return *this;
}

TokenSlot::~TokenSlot() { release(); }

void TokenSlot::release() noexcept {
  if (!usage_) return;
  --count_of(*usage_, kind_);
  usage_.reset();
}

}  // namespace boxgate::gateway
