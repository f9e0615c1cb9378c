// The off-loop connect (see connect_worker.hpp): the worker thread's job, and
// the Client's side of it, which runs on the loop thread.

#include "connect_worker.hpp"

#include <event2/event.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <pthread.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>
#include <system_error>
#include <thread>

#include "boxgate/mqtt/client.hpp"
#include "client_callbacks.hpp"

namespace boxgate::mqtt {

namespace {
// What the worker writes to the pipe: one write of less than PIPE_BUF bytes,
// so the loop reads all of it or nothing.
struct WakeMessage {
  int rc;
  int saved_errno;
};

// The new thread inherits the mask: every signal stays with the loop thread,
// whose libevent signal events expect them there.
class SignalsBlocked {
 public:
  SignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &saved_);
  }
  ~SignalsBlocked() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
  SignalsBlocked(const SignalsBlocked&) = delete;
  SignalsBlocked& operator=(const SignalsBlocked&) = delete;

 private:
  sigset_t saved_;
};
}  // namespace

std::atomic<int> ConnectJob::running_{0};

int copy_key_password(const std::string& password, char* buf, int size) {
  if (!buf || size <= 0 || password.size() > static_cast<std::size_t>(size)) return 0;
  std::memcpy(buf, password.data(), password.size());
  return static_cast<int>(password.size());
}

ConnectJob::ConnectJob(mosquitto* handle, Target target) : target_(std::move(target)), handle_(handle) {}

ConnectJob::~ConnectJob() {
  if (handle_) mosquitto_destroy(handle_);  // closes its socket; calls nothing back
  if (wake_read_ >= 0) ::close(wake_read_);
  if (wake_write_ >= 0) ::close(wake_write_);
}

std::shared_ptr<ConnectJob> ConnectJob::start(mosquitto* handle, Target target, std::string* why) {
  std::shared_ptr<ConnectJob> job(new ConnectJob(handle, std::move(target)));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    *why = std::string("cannot connect off the loop: pipe: ") + std::strerror(errno);
    return nullptr;
  }
  job->wake_read_ = fds[0];
  job->wake_write_ = fds[1];
  // Until finish(), libmosquitto's calls back reach the job, never the Client.
  mosquitto_user_data_set(handle, job.get());
  mosquitto_log_callback_set(handle, &ConnectJob::collect_log);
  ++running_;
  try {
    SignalsBlocked blocked;
    std::thread([worker = job]() mutable {
      worker->run();
      worker.reset();  // may be the last reference: ~ConnectJob runs before the count drops
      --running_;
    }).detach();
  } catch (const std::system_error& e) {
    --running_;
    *why = std::string("cannot connect off the loop: thread: ") + e.what();
    return nullptr;
  }
  return job;
}

void ConnectJob::run() {
  // The slow part: getaddrinfo(), then a non-blocking TCP connect (and, for
  // TLS, the context and the first handshake step).
  int rc = mosquitto_connect_async(handle_, target_.host.c_str(), target_.port, target_.keepalive_s);
  WakeMessage message{rc, errno};
  {
    std::lock_guard lock(mutex_);
    finished_ = true;
    if (!abandoned_) {
      ssize_t written = ::write(wake_write_, &message, sizeof message);
      (void)written;  // an empty pipe takes it whole
    }
  }
  // The loop's reference may be gone already (abandoned): then the thread's
  // is the last, and ~ConnectJob destroys the handle on the worker thread.
}

std::optional<ConnectJob::Outcome> ConnectJob::finish() {
  WakeMessage message{};
  if (::read(wake_read_, &message, sizeof message) != static_cast<ssize_t>(sizeof message)) return std::nullopt;
  std::lock_guard lock(mutex_);
  if (!finished_) return std::nullopt;
  Outcome outcome{std::exchange(handle_, nullptr), message.rc, message.saved_errno, std::move(log_lines_)};
  return outcome;
}

void ConnectJob::abandon() {
  std::lock_guard lock(mutex_);
  abandoned_ = true;
}

int ConnectJob::key_password(char* buf, int size, int, void* handle) {
  auto* job = static_cast<ConnectJob*>(mosquitto_userdata(static_cast<mosquitto*>(handle)));
  return job ? copy_key_password(job->target_.key_password, buf, size) : 0;
}

int ConnectJob::running() noexcept { return running_.load(); }

void ConnectJob::collect_log(mosquitto*, void* job, int level, const char* line) {
  // On the worker thread, which owns log_lines_ until finished_.
  static_cast<ConnectJob*>(job)->log_lines_.emplace_back(level, line ? line : "");
}

// The Client's side, on the loop thread.

void Client::connect_off_loop() {
  ConnectJob::Target target{host_, port_, static_cast<int>(settings_.keepalive_s), settings_.key_password};
  std::string why;
  connecting_ = ConnectJob::start(std::exchange(handle_, nullptr), std::move(target), &why);
  if (!connecting_) return drop(why);
  event_assign(connected_event_, loop_.base(), connecting_->wake_fd(), EV_READ, &Callbacks::connect_done, this);
  event_add(connected_event_, nullptr);
  // The CONNACK deadline covers the lookup too: a hung one is given up.
  connect_deadline_.start(kConnectTimeout);
}

void Client::on_connect_done() {
  std::optional<ConnectJob::Outcome> outcome = connecting_->finish();
  if (!outcome) {
    event_add(connected_event_, nullptr);  // woken for nothing: wait on
    return;
  }
  connecting_.reset();
  handle_ = outcome->handle;
  mosquitto_user_data_set(handle_, this);
  mosquitto_log_callback_set(handle_, &Callbacks::library_log);
  for (const auto& [level, line] : outcome->log_lines) Callbacks::library_log(handle_, this, level, line.c_str());
  connect_started(outcome->rc, outcome->saved_errno);
}

void Client::abandon_connect() {
  if (!connecting_) return;
  event_del(connected_event_);  // before the worker may close the pipe
  connecting_->abandon();
  // Held weakly: the worker, finishing last, frees the job and its handle.
  abandoned_ = std::exchange(connecting_, nullptr);
}

}  // namespace boxgate::mqtt
