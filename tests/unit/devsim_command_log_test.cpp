// devsim's command log: one JSON line per record, appended to what the file
// held, written on flush() and at destruction (the 200 ms timer needs a
// running loop, which these tests do not run).

#include <gtest/gtest.h>

#include <unistd.h>

#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "boxgate/options.hpp"
#include "devsim/command_log.hpp"

namespace boxgate::devsim {
namespace {

std::string read_all(const std::string& path) {
  std::ifstream in(path);
  std::stringstream out;
  out << in.rdbuf();
  return out.str();
}

class DevsimCommandLog : public ::testing::Test {
 protected:
  void SetUp() override { ::unlink(path.c_str()); }
  void TearDown() override { ::unlink(path.c_str()); }
  std::string path = ::testing::TempDir() + "/devsim_command_log." + std::to_string(::getpid()) + ".jsonl";
  EventLoop loop;
};

TEST_F(DevsimCommandLog, WritesOneJsonLinePerCommandOnFlushAndAtTheEnd) {
  {
    std::ofstream(path) << "kept\n";
    CommandLog log(loop, path);
    log.record(*BoxId::parse("box-1"), *RequestId::parse("req-1"), 1700000000123, 1700000000100);
    EXPECT_EQ(read_all(path), "kept\n");  // buffered
    log.flush();
    EXPECT_EQ(read_all(path),
              "kept\n{\"box\":\"box-1\",\"id\":\"req-1\",\"t_ms\":1700000000123,\"online_ms\":1700000000100}\n");
    log.record(*BoxId::parse("box-2"), *RequestId::parse("req-2"), 5, 0);
  }
  std::istringstream lines(read_all(path));
  std::string line;
  std::getline(lines, line);
  std::getline(lines, line);
  std::getline(lines, line);
  auto last = nlohmann::json::parse(line);
  EXPECT_EQ(last, nlohmann::json({{"box", "box-2"}, {"id", "req-2"}, {"t_ms", 5}, {"online_ms", 0}}));
  EXPECT_FALSE(std::getline(lines, line));
}

TEST_F(DevsimCommandLog, AFullBufferIsWrittenAtOnce) {
  CommandLog log(loop, path);
  std::size_t records = 0;
  // About 90 bytes a line: 4 MiB is passed well before 100000 records.
  for (; records < 100000 && read_all(path).empty(); ++records) {
    log.record(*BoxId::parse("box-1"), *RequestId::parse("req-" + std::to_string(records)), 1, 1);
  }
  EXPECT_LT(records, 100000u);
  EXPECT_GE(read_all(path).size(), 4u << 20);
}

TEST_F(DevsimCommandLog, AFileThatCannotBeOpenedNamesTheKey) {
  try {
    CommandLog log(loop, ::testing::TempDir() + "/no-such-dir-" + std::to_string(::getpid()) + "/log");
    FAIL() << "opened";
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "command_log");
  }
}

}  // namespace
}  // namespace boxgate::devsim
