#pragma once
// Metrics: counters, gauges and histograms rendered in Prometheus text format
// 0.0.4. Series are created at start-up (main, constructors) and live as long
// as the Metrics; updating a series is lock-free (atomics), so any thread may
// update. render() may run on any thread.

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

namespace boxgate::ops {

class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::uint64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

class Gauge {
 public:
  void set(std::int64_t v) noexcept { value_.store(v, std::memory_order_relaxed); }
  void add(std::int64_t n) noexcept { value_.fetch_add(n, std::memory_order_relaxed); }
  std::int64_t value() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::int64_t> value_{0};
};

// Buckets are upper bounds in seconds; observations in microseconds.
class Histogram {
 public:
  explicit Histogram(std::vector<double> bounds_s);
  void observe_us(std::uint64_t us) noexcept;
  const std::vector<double>& bounds() const noexcept { return bounds_; }
  std::uint64_t bucket(std::size_t i) const noexcept { return counts_[i].load(std::memory_order_relaxed); }
  std::uint64_t count() const noexcept { return count_.load(std::memory_order_relaxed); }
  std::uint64_t sum_us() const noexcept { return sum_us_.load(std::memory_order_relaxed); }

 private:
  std::vector<double> bounds_;
  std::vector<std::uint64_t> bounds_us_;
  std::deque<std::atomic<std::uint64_t>> counts_;  // one per bound, not cumulative
  std::atomic<std::uint64_t> count_{0};
  std::atomic<std::uint64_t> sum_us_{0};
};

class Metrics {
 public:
  // labels: Prometheus label text without braces, e.g. outcome="ok"; may be empty.
  Counter& counter(const std::string& name, const std::string& help, const std::string& labels = "");
  Gauge& gauge(const std::string& name, const std::string& help, const std::string& labels = "");
  Histogram& histogram(const std::string& name, const std::string& help, std::vector<double> bounds_s);

  std::string render() const;

 private:
  enum class Kind { counter, gauge, histogram };
  struct Series {
    std::string name, help, labels;
    Kind kind;
    void* metric;
  };
  mutable std::mutex mutex_;  // guards the lists (registration vs render)
  std::deque<Counter> counters_;
  std::deque<Gauge> gauges_;
  std::deque<Histogram> histograms_;
  std::vector<Series> series_;
};

// Latency buckets used for command durations (seconds).
std::vector<double> latency_buckets();

}  // namespace boxgate::ops
