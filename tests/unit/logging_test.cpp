// Log lines never carry a caller's bytes raw: bytes
// outside printable ASCII are escaped in plain and in JSON lines, so no one
// can forge a line, drive a terminal or break a JSON log.

#include "boxgate/logging.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <sstream>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

// What the loggers write to stderr while `body` runs. An unnamed file, so
// tests running in parallel (ctest -j) never share it.
template <class F>
std::string captured_stderr(F body) {
  std::fflush(stderr);
  int saved = ::dup(2);
  FILE* file = std::tmpfile();
  ::dup2(::fileno(file), 2);
  body();
  std::fflush(stderr);
  ::dup2(saved, 2);
  ::close(saved);
  std::string text;
  std::rewind(file);
  char buffer[4096];
  for (std::size_t n; (n = std::fread(buffer, 1, sizeof buffer, file)) > 0;) text.append(buffer, n);
  std::fclose(file);
  return text;
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

// The fields of a scope are JSON members of every line
// logged in it, and only there.
TEST(Logging, FieldsAreMembersOfJsonLinesOnly) {
  std::string json = captured_stderr([] {
    boxgate::log::setup("info", true);
    auto logger = boxgate::log::get("logtest");
    {
      boxgate::log::Fields fields{{"request_id", "r-1"}, {"box_id", "box\"1"}};
      {
        boxgate::log::Fields more;
        more.add("status", 504).add("outcome", "device_timeout");
        logger->info("inner");
      }
      logger->info("outer");
    }
    logger->info("after");
    logger->flush();
    boxgate::log::setup("info", false);
  });
  std::istringstream lines(json);
  std::string line;
  std::vector<nlohmann::json> docs;
  while (std::getline(lines, line)) docs.push_back(nlohmann::json::parse(line));
  ASSERT_EQ(docs.size(), 3u) << json;
  EXPECT_EQ(docs[0]["request_id"], "r-1");
  EXPECT_EQ(docs[0]["box_id"], "box\"1");
  EXPECT_EQ(docs[0]["status"], 504);
  EXPECT_EQ(docs[0]["outcome"], "device_timeout");
  EXPECT_EQ(docs[1]["request_id"], "r-1");
  EXPECT_FALSE(docs[1].contains("status")) << docs[1].dump();
  EXPECT_FALSE(docs[2].contains("request_id")) << docs[2].dump();

  std::string plain = captured_stderr([] {
    boxgate::log::setup("info", false);
    boxgate::log::Fields fields{{"request_id", "r-2"}};
    boxgate::log::get("logtest")->info("plain");
    boxgate::log::get("logtest")->flush();
  });
  EXPECT_EQ(plain.find("r-2"), std::string::npos) << plain;
}

TEST(Logging, LevelPerComponent) {
  std::string out = captured_stderr([] {
    boxgate::log::setup("warn", false, "loud_one=debug,quiet_one=error");
    boxgate::log::get("loud_one")->debug("loud debug");
    boxgate::log::get("quiet_one")->warn("quiet warn");
    boxgate::log::get("other_one")->info("other info");
    boxgate::log::get("other_one")->warn("other warn");
    spdlog::apply_all([](const std::shared_ptr<spdlog::logger>& l) { l->flush(); });
    boxgate::log::setup("info", false);
  });
  EXPECT_NE(out.find("loud debug"), std::string::npos) << out;
  EXPECT_EQ(out.find("quiet warn"), std::string::npos) << out;
  EXPECT_EQ(out.find("other info"), std::string::npos) << out;
  EXPECT_NE(out.find("other warn"), std::string::npos) << out;
}

TEST(Logging, ParseLevels) {
  std::string problem;
  auto ok = boxgate::log::parse_levels("http=warn,mqtt=debug,,access=off", &problem);
  ASSERT_TRUE(ok) << problem;
  EXPECT_EQ(ok->size(), 3u);
  EXPECT_EQ(ok->at("http"), spdlog::level::warn);
  EXPECT_EQ(ok->at("access"), spdlog::level::off);
  EXPECT_TRUE(boxgate::log::parse_levels("", &problem)->empty());
  for (const char* bad : {"http", "http=loud", "HTTP=warn", "=warn", "http:warn"}) {
    EXPECT_FALSE(boxgate::log::parse_levels(bad, &problem)) << bad;
    EXPECT_FALSE(problem.empty()) << bad;
  }
}

TEST(Logging, ProblemLogSaysOncePerChange) {
  boxgate::log::ProblemLog problems;
  EXPECT_FALSE(problems.resolve());
  EXPECT_TRUE(problems.report("WRONGPASS"));
  EXPECT_FALSE(problems.report("WRONGPASS"));
  EXPECT_FALSE(problems.report("WRONGPASS"));
  EXPECT_TRUE(problems.report("connection refused"));
  EXPECT_FALSE(problems.report("connection refused"));
  auto was = problems.resolve();
  ASSERT_TRUE(was);
  EXPECT_EQ(was->first, "connection refused");
  EXPECT_EQ(was->second, 1);
  EXPECT_FALSE(problems.resolve());
  EXPECT_TRUE(problems.report("connection refused"));  // after a success, the same problem is news again
}

TEST(Logging, RateLimitLetsTheFirstLineOfABurstThrough) {
  boxgate::log::RateLimit limit;
  EXPECT_TRUE(limit.allow());
  for (int i = 0; i < 1000; ++i) EXPECT_FALSE(limit.allow()) << i;  // the rest of this second: silent
  boxgate::log::RateLimit other;  // each stream of warnings has its own
  EXPECT_TRUE(other.allow());
}
