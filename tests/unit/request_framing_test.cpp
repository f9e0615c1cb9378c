// RequestFraming: what RFC 9112 frames is read the same however the bytes
// arrive; what evhttp 2.1 reads leniently is refused.

#include "boxgate/http/request_framing.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

using boxgate::http::RequestFraming;
using boxgate::http::RequestHead;
using FramingStatus = boxgate::http::RequestFraming::Status;

namespace {

struct Seen : RequestFraming::Observer {
  std::vector<std::string> heads;  // "METHOD target 1.x cl=N chunked auth=..."
  std::vector<std::string> bodies;
  int ended = 0;
  bool admit = true;
  bool on_head(const RequestHead& h) override {
    std::string text = std::string(h.method) + " " + std::string(h.target) + " 1." + std::to_string(h.minor_version);
    if (h.content_length) text += " cl=" + std::to_string(*h.content_length);
    if (h.chunked) text += " chunked";
    if (h.authorization) text += " auth=" + std::string(*h.authorization);
    heads.push_back(text);
    bodies.emplace_back();
    return admit;
  }
  void on_body(std::string_view data) override { bodies.back() += data; }
  void on_message_end() override { ++ended; }
};

FramingStatus read_in_pieces(const std::string& bytes, std::size_t piece, Seen& seen, RequestFraming& framing) {
  for (std::size_t at = 0; at < bytes.size(); at += piece) framing.feed(std::string_view(bytes).substr(at, piece), seen);
  return framing.status();
}

FramingStatus verdict(const std::string& bytes) {
  Seen seen;
  RequestFraming framing(16384);
  return read_in_pieces(bytes, bytes.size() + 1, seen, framing);
}

const std::string kPost = "POST /v1/devices/b/commands HTTP/1.1\r\nHost: x\r\n";

}  // namespace

TEST(RequestFraming, ReadsPipelinedRequestsTheSameInAnyPieces) {
  const std::string bytes = kPost + "Content-Length: 5\r\nAuthorization: Bearer  t \r\n\r\nhello" +
                            kPost + "Transfer-Encoding: Chunked\r\n\r\n5\r\nhello\r\n00A\r\n, world!!!\r\n0\r\n\r\n" +
                            "GET /v1/events?x=1 HTTP/1.0\r\n\r\n";
  for (std::size_t piece : {1u, 2u, 3u, 7u, 64u, 4096u}) {
    Seen seen;
    RequestFraming framing(16384);
    ASSERT_EQ(read_in_pieces(bytes, piece, seen, framing), FramingStatus::ok) << piece << ": " << framing.problem();
    ASSERT_EQ(seen.heads.size(), 3u);
    EXPECT_EQ(seen.heads[0], "POST /v1/devices/b/commands 1.1 cl=5 auth=Bearer  t");
    EXPECT_EQ(seen.heads[1], "POST /v1/devices/b/commands 1.1 chunked");
    EXPECT_EQ(seen.heads[2], "GET /v1/events?x=1 1.0");
    EXPECT_EQ(seen.bodies[0], "hello");
    EXPECT_EQ(seen.bodies[1], "hello, world!!!");
    EXPECT_EQ(seen.ended, 3);
    EXPECT_EQ(framing.messages(), 3u);
  }
}

TEST(RequestFraming, RefusesChunkSizesEvhttpReadsLeniently) {
  for (const char* size : {"0x7", "+7", "-0", "7 junk", "7;ext=1", " 7", "7 ", "", "1234567890123456", "g"}) {
    const std::string bytes = kPost + "Transfer-Encoding: chunked\r\n\r\n" + size + "\r\nabcdefg\r\n0\r\n\r\n";
    EXPECT_EQ(verdict(bytes), FramingStatus::invalid) << "chunk size '" << size << "'";
  }
}

TEST(RequestFraming, RefusesChunkedFramingWithoutItsCrlfs) {
  const std::string head = kPost + "Transfer-Encoding: chunked\r\n\r\n";
  EXPECT_EQ(verdict(head + "3\r\nabc0\r\n\r\n"), FramingStatus::invalid) << "data without CRLF";
  EXPECT_EQ(verdict(head + "3\r\nabc\n0\r\n\r\n"), FramingStatus::invalid) << "data then a bare LF";
  EXPECT_EQ(verdict(head + "\r\n3\r\nabc\r\n0\r\n\r\n"), FramingStatus::invalid) << "a blank line before the size";
  EXPECT_EQ(verdict(head + "3\r\nabc\r\n\r\n0\r\n\r\n"), FramingStatus::invalid) << "a blank line between chunks";
  EXPECT_EQ(verdict(head + "3\nabc\r\n0\r\n\r\n"), FramingStatus::invalid) << "a size line ending in LF";
  EXPECT_EQ(verdict(head + "0\r\nContent-Length: 3\r\n\r\n"), FramingStatus::invalid) << "trailer fields";
  EXPECT_EQ(verdict(head + "3\r\nabc\r\n0\r\n\r\n"), FramingStatus::ok);
}

TEST(RequestFraming, RefusesAmbiguousHeaders) {
  EXPECT_EQ(verdict("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), FramingStatus::invalid)
      << "chunked on HTTP/1.0";
  EXPECT_EQ(verdict(kPost + "Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"), FramingStatus::invalid);
  EXPECT_EQ(verdict(kPost + "Content-Length: 1\r\nContent-Length: 1\r\n\r\nx"), FramingStatus::invalid);
  EXPECT_EQ(verdict(kPost + "Transfer-Encoding: gzip, chunked\r\n\r\n"), FramingStatus::invalid);
  EXPECT_EQ(verdict(kPost + "Content-Length: +1\r\n\r\nx"), FramingStatus::invalid);
  EXPECT_EQ(verdict(kPost + "Content-Length: 1 1\r\n\r\nx"), FramingStatus::invalid);
  EXPECT_EQ(verdict(kPost + "Content Length: 1\r\n\r\nx"), FramingStatus::invalid) << "name not a token";
  EXPECT_EQ(verdict(kPost + "Content-Length : 1\r\n\r\nx"), FramingStatus::invalid) << "space before the colon";
  EXPECT_EQ(verdict(kPost + "X-A: 1\r\n folded\r\n\r\n"), FramingStatus::invalid) << "obs-fold";
  EXPECT_EQ(verdict(kPost + "X-A: a\x1b b\r\n\r\n"), FramingStatus::invalid) << "a control character";
  EXPECT_EQ(verdict(kPost + "X-A: a\rb\r\n\r\n"), FramingStatus::invalid) << "a bare CR";
  EXPECT_EQ(verdict(kPost + "X-A: a\n\r\n"), FramingStatus::invalid) << "a bare LF";
  EXPECT_EQ(verdict(kPost + "Idempotency-Key: a\r\nIdempotency-Key: b\r\n\r\n"), FramingStatus::invalid);
  EXPECT_EQ(verdict("HEAD / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), FramingStatus::invalid) << "a body on HEAD";
  EXPECT_EQ(verdict("\r\nGET / HTTP/1.1\r\n\r\n"), FramingStatus::invalid) << "a blank line before the request";
  EXPECT_EQ(verdict("GET / HTTP/1.2\r\n\r\n"), FramingStatus::invalid);
  EXPECT_EQ(verdict("GET  / HTTP/1.1\r\n\r\n"), FramingStatus::invalid);
  EXPECT_EQ(verdict("GET /\x7f HTTP/1.1\r\n\r\n"), FramingStatus::invalid);
  EXPECT_EQ(verdict(kPost + "X-A: caf\xc3\xa9\r\n\r\n"), FramingStatus::ok) << "obs-text is allowed";
}

TEST(RequestFraming, ANulByteIsItsOwnVerdict) {
  const char header[] = "X-A: a\0b\r\n\r\n";
  const char body[] = "Content-Length: 3\r\n\r\na\0b";
  EXPECT_EQ(verdict(kPost + std::string(header, sizeof header - 1)), FramingStatus::nul);
  EXPECT_EQ(verdict(kPost + std::string(body, sizeof body - 1)), FramingStatus::nul);
}

TEST(RequestFraming, BoundsALineAndTheHeaderSection) {
  Seen seen;
  RequestFraming framing(64);
  EXPECT_EQ(framing.feed(std::string(65, 'G'), seen), FramingStatus::invalid) << "an endless request line";
  RequestFraming headers(64);
  std::string many = "GET / HTTP/1.1\r\n";
  for (int i = 0; i < 10; ++i) many += "X-A: 1\r\n";
  EXPECT_EQ(headers.feed(many, seen), FramingStatus::invalid);
}

TEST(RequestFraming, AnObserverCanStopARequestBeforeItsBody) {
  Seen seen;
  seen.admit = false;
  RequestFraming framing(16384);
  EXPECT_EQ(framing.feed(kPost + "Content-Length: 3\r\n\r\nabc", seen), FramingStatus::stopped);
  EXPECT_TRUE(seen.bodies.back().empty()) << "no body byte after a refusal";
  EXPECT_EQ(framing.feed("more", seen), FramingStatus::stopped);
}
