#pragma once
// A private temporary directory per test (logs, configs, redis --dir).
//
// Callers: the test thread that owns it. Created with mkdtemp under $TMPDIR
// (or /tmp); removed recursively by the destructor unless the environment
// variable BOXGATE_KEEP_TEST_DIRS is set, so a failed run can be inspected.
// Destroy it after the processes that write into it: declare the TempDir
// before the Process/RedisServer/Mosquitto objects in a fixture.

#include <string>

namespace boxgate::test {

class TempDir {
 public:
  // `tag` becomes part of the directory name: boxgate-<tag>-XXXXXX.
  explicit TempDir(const std::string& tag = "test");
  // An existing directory the caller made and keeps (e.g. a benchmark's run
  // directory, printed for later reading): used the same way, never removed.
  struct Keep {};
  TempDir(Keep, std::string existing_dir);
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const std::string& path() const { return path_; }
  // path() + "/" + name.
  std::string file(const std::string& name) const;
  // Writes `content` to file(name), replacing it; returns the full path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
  bool remove_ = true;
};

// The whole content of a file ("" when it cannot be read).
std::string read_file(const std::string& path);

}  // namespace boxgate::test
