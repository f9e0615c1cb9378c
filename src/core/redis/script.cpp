#include "boxgate/redis/script.hpp"

#include <hiredis/hiredis.h>

#include <exception>

#include "boxgate/digest.hpp"

namespace boxgate::redis {

namespace {
std::string sha1_hex(std::string_view text) {
  try {
    return digest::to_hex(digest::sha1(text));
  } catch (const std::exception&) {
    return {};
  }
}
}  // namespace

Script::Script(std::string text) : text_(std::move(text)), sha_(sha1_hex(text_)) {}

std::string_view Script::command(bool by_text) const noexcept {
  return by_text || sha_.empty() ? "EVAL" : "EVALSHA";
}

std::string_view Script::body(bool by_text) const noexcept {
  return by_text || sha_.empty() ? std::string_view(text_) : std::string_view(sha_);
}

bool Script::unknown(const redisReply* reply, bool by_text) noexcept {
  return !by_text && reply && reply->type == REDIS_REPLY_ERROR &&
         std::string_view(reply->str, reply->len).substr(0, 8) == "NOSCRIPT";
}

}  // namespace boxgate::redis
