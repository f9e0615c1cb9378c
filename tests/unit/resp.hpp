#pragma once
// A reply tree as hiredis builds it from RESP bytes (no fake structures), for
// unit tests of code that reads hiredis replies.

#include <hiredis/hiredis.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

namespace boxgate::test {

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using ReplyPtr = std::unique_ptr<redisReply, ReplyDeleter>;

inline ReplyPtr parse_resp(const std::string& resp) {
  redisReader* reader = redisReaderCreate();
  redisReaderFeed(reader, resp.data(), resp.size());
  void* reply = nullptr;
  int status = redisReaderGetReply(reader, &reply);
  redisReaderFree(reader);
  EXPECT_EQ(status, REDIS_OK);
  EXPECT_NE(reply, nullptr) << "incomplete RESP in the test";
  return ReplyPtr(static_cast<redisReply*>(reply));
}

// "$<len>\r\n<s>\r\n"
inline std::string bulk(const std::string& s) { return "$" + std::to_string(s.size()) + "\r\n" + s + "\r\n"; }

}  // namespace boxgate::test
