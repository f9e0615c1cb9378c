// Every file of tests/fuzz/corpus/<target>/ -- the seeds, and each input a
// fuzzer ever crashed on (kept there with a name that says what it broke) --
// run through its fuzz target in the ordinary builds (plain and ASan+UBSan),
// so a fixed crash stays fixed without clang. scripts/fuzz explores further.

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "targets.hpp"

namespace boxgate::fuzz {
// gtest names a parameter by this, not by its bytes.
void PrintTo(const Target& target, std::ostream* out) { *out << target.name; }
}  // namespace boxgate::fuzz

namespace {

namespace fs = std::filesystem;

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

class FuzzCorpus : public ::testing::TestWithParam<boxgate::fuzz::Target> {};

TEST_P(FuzzCorpus, EveryInputHoldsItsProperties) {
  const auto& target = GetParam();
  const fs::path dir = fs::path(BOXGATE_SOURCE_DIR) / "tests/fuzz/corpus" / target.name;
  ASSERT_TRUE(fs::is_directory(dir)) << dir << ": every target has a seed corpus";
  std::size_t inputs = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    const std::string bytes = read_bytes(entry.path());
    SCOPED_TRACE(entry.path().filename().string());
    EXPECT_NO_THROW(target.run(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()));
    ++inputs;
  }
  EXPECT_GT(inputs, 0u);
}

INSTANTIATE_TEST_SUITE_P(Targets, FuzzCorpus, ::testing::ValuesIn(boxgate::fuzz::all_targets()),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
