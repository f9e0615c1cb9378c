#pragma once
// The stored-reply notice: how a reply too large for Redis pub/sub reaches
// the gateway (docs/contract.md, "Large replies").
//
// Redis disconnects a subscriber whose output buffer passes 32 MB (8 MB for
// 60 s), so the bridge PUBLISHes a reply larger than reply_inline_max_bytes as
// this short notice instead; the reply itself is in the result key of the
// same name, written in the same pipeline just before. The gateway that sees
// a notice GETs the key on its command connection, which has no such limit.
//
// The notice starts with a NUL byte, which no JSON text can. A device payload
// that happens to start with the marker is itself sent the stored way, so a
// message on a reply channel is never ambiguous.

#include <cstddef>
#include <string>
#include <string_view>

namespace boxgate {

inline constexpr std::string_view kStoredReplyMarker{"\0boxgate:stored-reply:", 22};

inline bool is_stored_reply_notice(std::string_view message) noexcept {
  return message.substr(0, kStoredReplyMarker.size()) == kStoredReplyMarker;
}

// The notice for a stored reply of `bytes` bytes (the size is for people
// reading the channel; the gateway does not rely on it).
inline std::string stored_reply_notice(std::size_t bytes) {
  std::string notice(kStoredReplyMarker);
  notice += std::to_string(bytes);
  return notice;
}

// Whether a reply of this payload goes the stored way.
inline bool reply_goes_stored(std::string_view payload, std::size_t inline_max_bytes) noexcept {
  return payload.size() > inline_max_bytes || is_stored_reply_notice(payload);
}

}  // namespace boxgate
