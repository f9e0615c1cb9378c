#pragma once
// Private to src/core/mqtt: ConnectJob, one mosquitto_connect_async run on a
// short-lived thread of its own, for a broker named by host name. libmosquitto
// 2.0 resolves the name with a blocking getaddrinfo() inside that call, and a
// slow or dead DNS server must not freeze the loop (HTTP, Redis, timers).
//
// The hand-over, read in libmosquitto 2.0.11's sources: during
// mosquitto_connect_async the library calls back only its log callback
// (send__connect's debug line, TLS set-up errors) and, through OpenSSL, the
// key's passphrase callback. So before the thread starts, the loop thread
// points the handle's userdata at the job and its log callback at the job's
// collector; the lines are replayed on the loop once the handle is back.
//
// Thread ownership: the job is shared (std::shared_ptr) by the Client, on
// the loop thread, and the worker thread; each member below says who may
// touch it. Whoever drops the last reference runs ~ConnectJob, which destroys
// a handle nobody took back and closes the pipe: the worker when the loop gave
// the job up (deadline, stop, ~Client) before it finished, else the loop.

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

struct mosquitto;

namespace boxgate::mqtt {

// The passphrase OpenSSL asked for, copied into its buffer: its length, or 0
// when it does not fit (OpenSSL then fails the key).
int copy_key_password(const std::string& password, char* buf, int size);

class ConnectJob : public std::enable_shared_from_this<ConnectJob> {
 public:
  struct Target {
    std::string host;  // the name, as given: TLS verifies the broker against it
    int port = 0;
    int keepalive_s = 0;
    std::string key_password;  // for key_password(), on the worker thread
  };
  // The worker's answer, once the handle is back on the loop thread.
  struct Outcome {
    mosquitto* handle = nullptr;
    int rc = 0;           // mosquitto_connect_async's result
    int saved_errno = 0;  // errno right after it (MOSQ_ERR_ERRNO, MOSQ_ERR_EAI)
    std::vector<std::pair<int, std::string>> log_lines;  // level, line
  };

  // Loop thread. Takes `handle` (created and configured on the loop, with
  // key_password() as its TLS passphrase callback) and starts the worker.
  // nullptr and `why` when no pipe or thread could be had (the handle is
  // destroyed then).
  static std::shared_ptr<ConnectJob> start(mosquitto* handle, Target target, std::string* why);
  ~ConnectJob();
  ConnectJob(const ConnectJob&) = delete;
  ConnectJob& operator=(const ConnectJob&) = delete;

  // The pipe's read end: readable once the worker is done. Loop thread.
  int wake_fd() const noexcept { return wake_read_; }
  // Loop thread, when wake_fd() is readable: reads the worker's (rc, errno)
  // from the pipe and takes the handle back; nullopt when nothing was written
  // yet. The handle's userdata and log callback still point at this job.
  std::optional<Outcome> finish();
  // Loop thread: the attempt is given up; the handle is never taken back.
  void abandon();

  // OpenSSL's PEM passphrase callback while the worker connects: `handle`'s
  // userdata is the job. OpenSSL calls it only while libmosquitto loads the
  // key, inside the connect call (net__init_ssl_ctx), so never once the
  // handle is back with the Client as its userdata: a handle is connected
  // once.
  static int key_password(char* buf, int size, int rwflag, void* handle);
  // Workers still running in this process (they outlive their Client).
  static int running() noexcept;

 private:
  ConnectJob(mosquitto* handle, Target target);
  static void collect_log(mosquitto*, void* job, int level, const char* line);
  void run();  // the worker thread's body

  const Target target_;  // read by both threads; never changed

  std::mutex mutex_;
  // Under mutex_.
  bool finished_ = false;   // set by the worker: handle_ and log_lines_ are the loop's now
  bool abandoned_ = false;  // set by the loop: the worker must not wake it
  // The worker's from start() until finished_, then the loop's (finish()).
  // nullptr once taken back; ~ConnectJob destroys it otherwise.
  mosquitto* handle_;
  std::vector<std::pair<int, std::string>> log_lines_;  // as handle_
  // The pipe, created before the thread and closed by ~ConnectJob. The worker
  // writes (rc, errno) to wake_write_ under mutex_ unless abandoned_; the loop
  // reads wake_read_.
  int wake_read_ = -1;
  int wake_write_ = -1;

  // Counted up on the loop thread before a worker starts, down by the worker
  // once its reference is gone (after ~ConnectJob, when it was the last).
  static std::atomic<int> running_;
};

}  // namespace boxgate::mqtt
