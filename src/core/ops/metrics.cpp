#include "boxgate/ops/metrics.hpp"

#include <fmt/format.h>

namespace boxgate::ops {

Histogram::Histogram(std::vector<double> bounds_s) : bounds_(std::move(bounds_s)), counts_(bounds_.size()) {
  for (double b : bounds_) bounds_us_.push_back(static_cast<std::uint64_t>(b * 1e6));
}

void Histogram::observe_us(std::uint64_t us) noexcept {
  for (std::size_t i = 0; i < bounds_us_.size(); ++i) {
    if (us <= bounds_us_[i]) {
      counts_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  sum_us_.fetch_add(us, std::memory_order_relaxed);
}

Counter& Metrics::counter(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mutex_);
  auto& c = counters_.emplace_back();
  series_.push_back({name, help, labels, Kind::counter, &c});
  return c;
}

Gauge& Metrics::gauge(const std::string& name, const std::string& help, const std::string& labels) {
  std::lock_guard lock(mutex_);
  auto& g = gauges_.emplace_back();
  series_.push_back({name, help, labels, Kind::gauge, &g});
  return g;
}

Histogram& Metrics::histogram(const std::string& name, const std::string& help, std::vector<double> bounds_s) {
  std::lock_guard lock(mutex_);
  auto& h = histograms_.emplace_back(std::move(bounds_s));
  series_.push_back({name, help, "", Kind::histogram, &h});
  return h;
}

namespace {
std::string with_labels(const std::string& name, const std::string& labels) {
  return labels.empty() ? name : name + "{" + labels + "}";
}

void render_histogram(std::string& out, const std::string& name, const Histogram& h) {
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i < h.bounds().size(); ++i) {
    cumulative += h.bucket(i);
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, h.bounds()[i], cumulative);
  }
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n", name, h.count());
  out += fmt::format("{}_sum {}\n{}_count {}\n", name, static_cast<double>(h.sum_us()) / 1e6, name, h.count());
}
}  // namespace

std::string Metrics::render() const {
  std::lock_guard lock(mutex_);
  // Families in first-registered order; a family's series together under one
  // HELP/TYPE header, as the text format requires.
  std::vector<const std::string*> families;
  for (const auto& s : series_) {
    bool seen = false;
    for (const auto* f : families) seen = seen || *f == s.name;
    if (!seen) families.push_back(&s.name);
  }
  std::string out;
  for (const auto* family : families) {
    bool header = false;
    for (const auto& s : series_) {
      if (s.name != *family) continue;
      if (!header) {
        const char* type = s.kind == Kind::counter ? "counter" : s.kind == Kind::gauge ? "gauge" : "histogram";
        out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", s.name, s.help, s.name, type);
        header = true;
      }
      switch (s.kind) {
        case Kind::counter:
          out += fmt::format("{} {}\n", with_labels(s.name, s.labels), static_cast<Counter*>(s.metric)->value());
          break;
        case Kind::gauge:
          out += fmt::format("{} {}\n", with_labels(s.name, s.labels), static_cast<Gauge*>(s.metric)->value());
          break;
        case Kind::histogram:
          render_histogram(out, s.name, *static_cast<Histogram*>(s.metric));
          break;
      }
    }
  }
  return out;
}

std::vector<double> latency_buckets() {
  return {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60};
}

}  // namespace boxgate::ops
