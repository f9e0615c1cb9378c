#include "devsim/command_log.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <fmt/format.h>

#include "boxgate/options.hpp"

namespace boxgate::devsim {

namespace {
constexpr auto kFlushEvery = std::chrono::milliseconds(200);
constexpr std::size_t kMaxBuffered = 4u << 20;
}  // namespace

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

CommandLog::CommandLog(EventLoop& loop, const std::string& path)
    : path_(path), flush_timer_(loop, [this] { flush(); }) {
  fd_ = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) throw ConfigError("command_log", "cannot open '" + path + "': " + std::strerror(errno));
  flush_timer_.start(kFlushEvery, /*repeat=*/true);
}

CommandLog::~CommandLog() {
  flush();
  ::close(fd_);
}

void CommandLog::record(const BoxId& box, const RequestId& id, std::int64_t t_ms, std::int64_t online_ms) {
  // Box and request ids match the contract's pattern: nothing to escape.
  fmt::format_to(std::back_inserter(buffer_), R"({{"box":"{}","id":"{}","t_ms":{},"online_ms":{}}})"
                                              "\n",
                 box.str(), id.str(), t_ms, online_ms);
  if (buffer_.size() >= kMaxBuffered) flush();
}

void CommandLog::flush() {
  std::size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      if (warnings_.allow()) {
        log::get("devsim")->warn("command log {}: write failed ({}); {} bytes dropped", path_, std::strerror(errno),
                                 buffer_.size() - done);
      }
      break;
    }
    done += static_cast<std::size_t>(n);
  }
  buffer_.clear();
}

}  // namespace boxgate::devsim
