#pragma once
// A child process for integration tests (redis-server, mosquitto, the boxgate
// daemons, mosquitto_sub, ...).
//
// Callers: the test thread that owns the object; it is not thread-safe.
// The child is started with fork/execvp (execvpe when extra environment is
// given); stdin is /dev/null and stdout+stderr go to <dir>/<name>.log
// (appended, so a restart keeps the earlier output). The child stays in the
// test's process group and inherits ASAN_OPTIONS/UBSAN_OPTIONS.
//
// Every child is stopped in the destructor (SIGTERM, SIGKILL after 5 s) and
// reaped, so a failing test never leaves a process or a zombie behind. Exits
// are collected with waitpid(WNOHANG) polling; nothing installs a SIGCHLD
// handler.

#include <chrono>
#include <csignal>
#include <optional>
#include <string>
#include <sys/types.h>
#include <vector>

namespace boxgate::test {

using namespace std::chrono_literals;

class Process {
 public:
  Process() = default;
  // Starts the child at once. `argv[0]` is looked up in PATH unless it holds a
  // '/'. `env` entries are "KEY=VALUE" and override the inherited environment.
  // Throws std::runtime_error if the log cannot be opened or fork fails; an
  // exec failure shows as exit status 127 with the reason in the log.
  Process(std::string name, std::vector<std::string> argv, std::string dir,
          std::vector<std::string> env = {});
  ~Process();
  Process(Process&& other) noexcept;
  Process& operator=(Process&& other) noexcept;
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts the same command again (after stop/kill9/an exit). Throws if running.
  void start();

  pid_t pid() const { return pid_; }
  const std::string& name() const { return name_; }
  const std::string& log_path() const { return log_path_; }
  // Reaps the child if it has exited; true while it is alive.
  bool running();
  // Sends `sig`, waits up to `grace`, then SIGKILLs. Returns the exit status:
  // the exit code, or 128+signal number. If the child had already exited,
  // returns that status; -1 if it was never started.
  int stop(int sig = SIGTERM, std::chrono::milliseconds grace = 5s);
  // SIGKILL and reap; returns 128+9 (or the earlier exit status).
  int kill9();
  // Sends a signal without waiting (SIGSTOP/SIGCONT/SIGHUP/...). No-op when not running.
  void signal(int sig);
  // Waits for the child to exit by itself: its status, or nullopt at the timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout);
  // The status of the last exit, if the child has exited.
  std::optional<int> exit_status() const { return status_; }

  // Everything the child wrote so far (all runs).
  std::string log() const;
  std::size_t log_size() const;
  // True once `needle` appears in the log at or after byte `from` (use
  // log_size() before an action to wait for a new line only).
  bool wait_for_log(const std::string& needle, std::chrono::milliseconds timeout,
                    std::size_t from = 0) const;
  // The last `lines` lines of the log (for failure messages).
  std::string log_tail(std::size_t lines = 40) const;
  // A sanitizer report (ASan/LSan/UBSan/TSan) found in the log, or "".
  std::string sanitizer_report() const;

 private:
  void reap_blocking();
  bool reap_nonblocking();

  std::string name_;
  std::vector<std::string> argv_;
  std::vector<std::string> env_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::optional<int> status_;
};

// Runs a tool (openssl, mosquitto_passwd, ...) in `dir` to completion (10 s);
// throws std::runtime_error with its output if it fails or does not finish.
class TempDir;
void run_tool(const TempDir& dir, const std::string& name, std::vector<std::string> argv);

}  // namespace boxgate::test
