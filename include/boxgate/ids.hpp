#pragma once
// Validated identifiers: the security boundary of every topic, channel and key.
//
// A BoxId or RequestId can only be made by parse() (or RequestId::generate()),
// so holding one proves the text matches ^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$ and
// cannot smuggle MQTT wildcards, separators, spaces or control bytes into a
// topic or channel. Values are immutable and cheap to copy; any thread may use them.

#include <optional>
#include <string>
#include <string_view>

namespace boxgate {

// True when `text` matches the id pattern of the wire contract.
bool is_valid_id(std::string_view text) noexcept;

namespace detail {
template <class Tag>
class Id {
 public:
  static std::optional<Id> parse(std::string_view text) {
    if (!is_valid_id(text)) return std::nullopt;
    return Id(std::string(text));
  }
  const std::string& str() const noexcept { return value_; }
  std::string_view view() const noexcept { return value_; }
  friend bool operator==(const Id&, const Id&) = default;

 private:
  explicit Id(std::string value) : value_(std::move(value)) {}
  std::string value_;
};
struct BoxTag {};
struct RequestTag {};
struct EventNameTag {};
}  // namespace detail

using BoxId = detail::Id<detail::BoxTag>;
using RequestId = detail::Id<detail::RequestTag>;
// The {name} of an event topic {prefix}/{box}/event/{name}: the same pattern,
// since it becomes part of a Redis channel name.
using EventName = detail::Id<detail::EventNameTag>;

// A fresh request id: UUIDv4 (lowercase, dashed) from the kernel's CSPRNG. Thread-safe.
RequestId new_request_id();

}  // namespace boxgate
