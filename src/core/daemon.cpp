#include "boxgate/daemon.hpp"

#include <event2/event.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include <csignal>
#include <cstdio>

#include "boxgate/logging.hpp"
#include "boxgate/version.hpp"

namespace boxgate {

std::optional<int> load_options_or_exit(Options& options, int argc, char** argv) {
  try {
    switch (options.load(argc, argv)) {
      case Options::Outcome::run: return std::nullopt;
      case Options::Outcome::help: std::fputs(options.help_text().c_str(), stdout); return 0;
      case Options::Outcome::version: std::printf("%s\n", kVersion); return 0;
    }
  } catch (const ConfigError& e) {
    std::fprintf(stderr, "%s: configuration error: %s: %s\n", argv[0], e.key().c_str(), e.what());
    return 2;
  }
  return 2;
}

void raise_fd_limit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
}

void warn_about_exposed_secrets(const Options& options) {
  for (const auto& warning : options.secret_file_warnings()) log::get("ops")->warn("{}", warning);
}

void warn_if_writable_by_others(const std::string& path, const std::string& what, const std::string& why) {
  struct stat info {};
  if (::stat(path.c_str(), &info) != 0 || (info.st_mode & (S_IWGRP | S_IWOTH)) == 0) return;
  log::get("ops")->warn("{} '{}' is writable by group or others: {}; chmod go-w it", what, path, why);
}

SignalWatch::SignalWatch(EventLoop& loop, std::initializer_list<int> signals, std::function<void()> on_signal)
    : on_signal_(std::move(on_signal)) {
  for (int signal : signals) {
    event* watch = evsignal_new(loop.base(), signal, &SignalWatch::on_event, this);
    evsignal_add(watch, nullptr);
    events_.push_back(watch);
  }
}

SignalWatch::~SignalWatch() {
  for (event* watch : events_) event_free(watch);
}

void SignalWatch::on_event(int, short, void* self) { static_cast<SignalWatch*>(self)->on_signal_(); }

ShutdownSignals::ShutdownSignals(EventLoop& loop, std::function<void()> on_signal)
    : SignalWatch(loop, {SIGTERM, SIGINT}, std::move(on_signal)) {
  std::signal(SIGPIPE, SIG_IGN);
}

HangupSignal::HangupSignal(EventLoop& loop, std::function<void()> on_signal)
    : SignalWatch(loop, {SIGHUP}, std::move(on_signal)) {}

Drain::Drain(EventLoop& loop, ops::Readiness& readiness, std::chrono::milliseconds timeout, Work work)
    : loop_(loop), readiness_(readiness), timeout_(timeout), work_(std::move(work)), poll_(loop, [this] { check(); }) {}

void Drain::begin() {
  if (readiness_.draining()) return;
  readiness_.start_draining();
  work_.stop_intake();
  log::get("ops")->info("draining: {} {}, up to {} ms", work_.remaining(), work_.what, timeout_.count());
  deadline_ = std::chrono::steady_clock::now() + timeout_;
  check();
}

void Drain::check() {
  std::size_t left = work_.remaining();
  if (left > 0 && std::chrono::steady_clock::now() < deadline_) {
    poll_.start(std::chrono::milliseconds(20));
    return;
  }
  if (left > 0) {
    log::get("ops")->warn("drain timed out with {} {}", left, work_.what);
    work_.give_up(left);
  }
  loop_.stop_after(std::chrono::milliseconds(200));
}

}  // namespace boxgate
