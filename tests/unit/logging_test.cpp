// Log lines never carry a caller's bytes raw (issue 10, point 4): bytes
// outside printable ASCII are escaped in plain and in JSON lines, so no one
// can forge a line, drive a terminal or break a JSON log.

#include "boxgate/logging.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

namespace {

// What the loggers write to stderr while `body` runs.
template <class F>
std::string captured_stderr(F body) {
  std::string path = ::testing::TempDir() + "/logging_test.txt";
  std::fflush(stderr);
  int saved = ::dup(2);
  FILE* file = std::fopen(path.c_str(), "w");
  ::dup2(::fileno(file), 2);
  body();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::fclose(file);
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

const std::string kHostile = std::string("uri /v1/devices/a\x1b[2J\r\nFAKE line\xff\x7f") + '\0' + "end";

}  // namespace

TEST(Logging, PlainLinesEscapeEveryByteOutsidePrintableAscii) {
  std::string out = captured_stderr([] {
    boxgate::log::setup("info", false);
    auto logger = boxgate::log::get("logtest");
    logger->info("{}", kHostile);
    logger->flush();
  });
  EXPECT_NE(out.find(R"(uri /v1/devices/a\x1b[2J\x0d\x0aFAKE line\xff\x7f\x00end)"), std::string::npos) << out;
  EXPECT_EQ(out.find('\x1b'), std::string::npos);
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}

TEST(Logging, JsonLinesStayValidJson) {
  std::string out = captured_stderr([] {
    boxgate::log::setup("info", true);
    auto logger = boxgate::log::get("logtest");
    logger->info("{}", kHostile);
    logger->flush();
    boxgate::log::setup("info", false);
  });
  EXPECT_NE(out.find(R"(\u001b[2J\u000d\nFAKE line\u00ff\u007f\u0000end)"), std::string::npos) << out;
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 1) << out;
}
