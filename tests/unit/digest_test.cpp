#include "boxgate/digest.hpp"

#include <gtest/gtest.h>

#include <string>

using namespace boxgate;

namespace {

// FIPS 180-2 / RFC 6234 test vectors.
struct Vector {
  std::string input;
  const char* sha256;
  const char* sha1;
};

const Vector kVectors[] = {
    {"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
     "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
    {"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad",
     "a9993e364706816aba3e25717850c26c9cd0d89d"},
    {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
     "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
     "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
    {std::string(1000000, 'a'), "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0",
     "34aa973cd4c4daa4f61eeb2bdbad27316534016f"},
};

TEST(Digest, KnownSha256Vectors) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(digest::to_hex(digest::sha256(v.input)), v.sha256) << v.input.substr(0, 60);
  }
}

TEST(Digest, KnownSha1Vectors) {
  for (const Vector& v : kVectors) {
    EXPECT_EQ(digest::to_hex(digest::sha1(v.input)), v.sha1) << v.input.substr(0, 60);
  }
}

TEST(Digest, RepeatedCallsOnOneThreadAgree) {
  // The context is reused per thread: a second digest must not carry state over.
  auto first = digest::sha256("abc");
  digest::sha256(std::string(4096, 'x'));
  EXPECT_EQ(digest::sha256("abc"), first);
}

TEST(Digest, HexIsLowercaseTwoDigitsPerByte) {
  const unsigned char bytes[] = {0x00, 0x0f, 0xa0, 0xff};
  EXPECT_EQ(digest::to_hex(bytes), "000fa0ff");
  EXPECT_EQ(digest::to_hex({}), "");
}

TEST(Digest, ParsesSha256HexOfEitherCase) {
  auto parsed = digest::parse_sha256_hex("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, digest::sha256("abc"));
  EXPECT_FALSE(digest::parse_sha256_hex("ba7816bf")) << "too short";
  EXPECT_FALSE(digest::parse_sha256_hex(std::string(63, 'a') + "g")) << "not hex";
  EXPECT_FALSE(digest::parse_sha256_hex(std::string(66, 'a'))) << "too long";
}

TEST(Digest, EqualComparesWholeDigests) {
  auto a = digest::sha256("a");
  auto b = a;
  EXPECT_TRUE(digest::equal(a, b));
  b[31] ^= 1;
  EXPECT_FALSE(digest::equal(a, b));
}

}  // namespace
