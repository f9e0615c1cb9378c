#pragma once
// Script: a Lua script the daemons run by its SHA-1 (EVALSHA), so each call
// carries 40 bytes instead of the script's text and Redis skips hashing it.
// A Redis whose script cache is empty (restarted, failed over, SCRIPT FLUSH,
// another cluster node) answers NOSCRIPT: the caller then sends the call
// again with EVAL and the text, which also caches it there for the next
// EVALSHA. The caller resends, since only it owns the arguments.
//
// Immutable after construction; any thread.

#include <string>
#include <string_view>

struct redisReply;

namespace boxgate::redis {

class Script {
 public:
  explicit Script(std::string text);

  // The first two words of a call: {"EVALSHA", sha} or, with by_text (or
  // when libcrypto failed to hash it), {"EVAL", text}.
  std::string_view command(bool by_text) const noexcept;
  std::string_view body(bool by_text) const noexcept;
  // True when the call went by SHA-1 and Redis did not know it.
  static bool unknown(const redisReply* reply, bool by_text) noexcept;

 private:
  std::string text_;
  std::string sha_;  // lowercase hex; "" when libcrypto failed (then EVAL only)
};

}  // namespace boxgate::redis
