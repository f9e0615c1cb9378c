#include "support/process.hpp"

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <vector>
#include <stdexcept>
#include <thread>

#include "support/net.hpp"
#include "support/tempdir.hpp"

extern char** environ;

namespace boxgate::test {

namespace {

int decode_status(int status) {
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

// The environment of the child: ours, with `extra` KEY=VALUE entries replacing
// or adding keys.
std::vector<std::string> merged_env(const std::vector<std::string>& extra) {
  std::vector<std::string> out;
  for (char** e = environ; e && *e; ++e) {
    std::string entry(*e);
    std::string key = entry.substr(0, entry.find('='));
    bool overridden = std::any_of(extra.begin(), extra.end(), [&key](const std::string& x) {
      return x.compare(0, key.size() + 1, key + "=") == 0;
    });
    if (!overridden) out.push_back(std::move(entry));
  }
  out.insert(out.end(), extra.begin(), extra.end());
  return out;
}

std::vector<char*> c_strings(std::vector<std::string>& items) {
  std::vector<char*> out;
  for (auto& s : items) out.push_back(s.data());
  out.push_back(nullptr);
  return out;
}

// Between fork and exec only async-signal-safe calls are allowed: the test
// binary has threads (paho, subscribers) whose locks may be held.
[[noreturn]] void exec_child(int log_fd, char** argv, char** envp) {
  int null_fd = ::open("/dev/null", O_RDONLY);
  if (null_fd >= 0) ::dup2(null_fd, STDIN_FILENO);
  ::dup2(log_fd, STDOUT_FILENO);
  ::dup2(log_fd, STDERR_FILENO);
  // Do not leak the test's sockets and files into the child.
  if (::syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
    for (int fd = 3; fd < 65536; ++fd) ::close(fd);
  }
  // Signals ignored by the test (e.g. SIGPIPE) would stay ignored across exec.
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) ::sigaction(sig, &dfl, nullptr);
  }
  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  if (envp) {
    ::execvpe(argv[0], argv, envp);
  } else {
    ::execvp(argv[0], argv);
  }
  const char* what = "boxgate::test::Process: exec failed: ";
  const char* why = std::strerror(errno);  // not strictly async-signal-safe; only reached on failure
  [[maybe_unused]] auto a = ::write(STDERR_FILENO, what, std::strlen(what));
  [[maybe_unused]] auto b = ::write(STDERR_FILENO, argv[0], std::strlen(argv[0]));
  [[maybe_unused]] auto c = ::write(STDERR_FILENO, ": ", 2);
  [[maybe_unused]] auto d = ::write(STDERR_FILENO, why, std::strlen(why));
  [[maybe_unused]] auto e = ::write(STDERR_FILENO, "\n", 1);
  ::_exit(127);
}

}  // namespace

Process::Process(std::string name, std::vector<std::string> argv, std::string dir,
                 std::vector<std::string> env)
    : name_(std::move(name)), argv_(std::move(argv)), env_(std::move(env)),
      log_path_(dir + "/" + name_ + ".log") {
  if (argv_.empty()) throw std::invalid_argument("Process " + name_ + ": empty argv");
  start();
}

Process::~Process() {
  if (pid_ > 0) stop();
}

Process::Process(Process&& other) noexcept
    : name_(std::move(other.name_)), argv_(std::move(other.argv_)), env_(std::move(other.env_)),
      log_path_(std::move(other.log_path_)), pid_(other.pid_), status_(other.status_) {
  other.pid_ = -1;
}

Process& Process::operator=(Process&& other) noexcept {
  if (this != &other) {
    if (pid_ > 0) stop();
    name_ = std::move(other.name_);
    argv_ = std::move(other.argv_);
    env_ = std::move(other.env_);
    log_path_ = std::move(other.log_path_);
    pid_ = other.pid_;
    status_ = other.status_;
    other.pid_ = -1;
  }
  return *this;
}

void Process::start() {
  if (running()) throw std::logic_error("Process " + name_ + " is already running");
  if (argv_.empty()) throw std::logic_error("Process: start() on an empty Process");
  int log_fd = ::open(log_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log_fd < 0) {
    throw std::runtime_error("Process " + name_ + ": open " + log_path_ + ": " + std::strerror(errno));
  }
  // Everything the child needs is built before fork().
  std::vector<std::string> argv_copy = argv_;
  std::vector<char*> c_argv = c_strings(argv_copy);
  std::vector<std::string> env_copy;
  std::vector<char*> c_env;
  if (!env_.empty()) {
    env_copy = merged_env(env_);
    c_env = c_strings(env_copy);
  }
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(log_fd);
    throw std::runtime_error("Process " + name_ + ": fork: " + std::strerror(err));
  }
  if (pid == 0) exec_child(log_fd, c_argv.data(), c_env.empty() ? nullptr : c_env.data());
  ::close(log_fd);
  pid_ = pid;
  status_.reset();
}

bool Process::reap_nonblocking() {
  if (pid_ <= 0) return true;
  int status = 0;
  pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = decode_status(status);
    pid_ = -1;
    return true;
  }
  if (r < 0 && errno == ECHILD) {  // reaped elsewhere; nothing left to wait for
    status_ = -1;
    pid_ = -1;
    return true;
  }
  return false;
}

void Process::reap_blocking() {
  if (pid_ <= 0) return;
  int status = 0;
  pid_t r;
  do {
    r = ::waitpid(pid_, &status, 0);
  } while (r < 0 && errno == EINTR);
  status_ = r == pid_ ? decode_status(status) : -1;
  pid_ = -1;
}

bool Process::running() { return !reap_nonblocking(); }

int Process::stop(int sig, std::chrono::milliseconds grace) {
  if (!running()) return status_.value_or(-1);
  ::kill(pid_, sig);
  if (auto status = wait_exit(grace)) return *status;
  ::kill(pid_, SIGKILL);
  reap_blocking();
  return status_.value_or(-1);
}

int Process::kill9() {
  if (!running()) return status_.value_or(-1);
  ::kill(pid_, SIGKILL);
  reap_blocking();
  return status_.value_or(-1);
}

void Process::signal(int sig) {
  if (running()) ::kill(pid_, sig);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  if (eventually([this] { return reap_nonblocking(); }, timeout, 5ms)) return status_;
  return std::nullopt;
}

std::string Process::log() const { return read_file(log_path_); }

std::size_t Process::log_size() const {
  struct stat st {};
  return ::stat(log_path_.c_str(), &st) == 0 ? static_cast<std::size_t>(st.st_size) : 0;
}

bool Process::wait_for_log(const std::string& needle, std::chrono::milliseconds timeout,
                           std::size_t from) const {
  return eventually(
      [&] {
        std::string text = log();
        return text.size() > from && text.find(needle, from) != std::string::npos;
      },
      timeout, 20ms);
}

// The last `lines` lines, without the gateway's access log ("[access]", one
// line per call): under load those would push out every line that explains
// a failure.
std::string Process::log_tail(std::size_t lines) const {
  std::string text = log();
  std::vector<std::string_view> kept;
  std::string_view rest(text);
  while (!rest.empty() && kept.size() < lines) {
    if (rest.back() == '\n') rest.remove_suffix(1);
    std::size_t nl = rest.rfind('\n');
    std::string_view line = nl == std::string_view::npos ? rest : rest.substr(nl + 1);
    if (line.find("[access] ") == std::string_view::npos) kept.push_back(line);
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(0, nl + 1);
  }
  std::string out;
  for (auto it = kept.rbegin(); it != kept.rend(); ++it) (out += *it) += '\n';
  return out;
}

std::string Process::sanitizer_report() const {
  static const char* const markers[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "WARNING: ThreadSanitizer", "runtime error: "};
  std::string text = log();
  for (const char* marker : markers) {
    std::size_t at = text.find(marker);
    if (at == std::string::npos) continue;
    std::size_t begin = text.rfind('\n', at);
    begin = begin == std::string::npos ? 0 : begin + 1;
    return text.substr(begin, 4000);
  }
  return {};
}

void run_tool(const TempDir& dir, const std::string& name, std::vector<std::string> argv) {
  Process tool(name, std::move(argv), dir.path());
  std::optional<int> status = tool.wait_exit(10s);
  if (status != 0) {
    throw std::runtime_error(name + " failed (status " + std::to_string(status.value_or(-1)) + "):\n" + tool.log());
  }
}

}  // namespace boxgate::test
