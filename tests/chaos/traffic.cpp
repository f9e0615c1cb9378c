#include "traffic.hpp"

#include <algorithm>
#include <future>
#include <memory>

namespace boxgate::chaos {

namespace {

// How long a thread leaves a gateway alone after a transport error with it.
constexpr auto kSkipAfterError = 250ms;

Call make_call(const test::HttpResult& r, const std::string& id, Clock::time_point started, Clock::time_point t0) {
  Call c;
  c.start_us = std::chrono::duration_cast<std::chrono::microseconds>(started - t0).count();
  c.elapsed_ms = static_cast<std::int32_t>(r.elapsed.count());
  c.status = r.status;
  if (r.status == 200) {
    const auto doc = r.json();
    c.foreign = !(doc.is_object() && doc.contains("id") && doc["id"].is_string() && doc["id"].get<std::string>() == id);
  } else if (r.status == -1) {
    c.answer = "transport " + r.error;
  } else {
    const std::string code = r.error_code();
    c.answer = std::to_string(r.status) + (code.empty() ? "" : " " + code);
  }
  return c;
}

}  // namespace

std::unique_ptr<httplib::Client> make_client(int port, const Settings& s) {
  auto c = test::client(port);
  // Far above timeout + slack: an answer that late is measured, not cut off.
  c->set_read_timeout(std::chrono::milliseconds(s.timeout_ms + 10000));
  return c;
}

Call call_once(httplib::Client& client, const std::string& id, int box, const Settings& s, Clock::time_point t0) {
  const std::string query = "timeout_ms=" + std::to_string(s.timeout_ms);
  const std::string path = test::command_path("box-" + std::to_string(box), query);
  const std::string body = R"({"method":"chaos","params":{"id":")" + id + R"("}})";
  const auto started = Clock::now();
  return make_call(test::post(client, path, body, {{"X-Request-Id", id}}), id, started, t0);
}

void run_client(int thread, const Settings& settings, const std::vector<int>& gateway_ports, Clock::time_point t0,
                Clock::time_point end, const std::atomic<bool>& stop, std::vector<Call>& out) {
  const std::size_t gateways = gateway_ports.size();
  std::vector<std::unique_ptr<httplib::Client>> clients;
  for (int port : gateway_ports) clients.push_back(make_client(port, settings));
  std::vector<Clock::time_point> skip_until(gateways, Clock::time_point::min());
  const auto period = std::chrono::microseconds(1000000LL * settings.clients / settings.rate);
  auto next_send = t0 + period * thread / settings.clients;  // the threads spread over one period
  for (std::uint64_t n = 0; !stop && Clock::now() < end; ++n) {
    std::this_thread::sleep_until(next_send);  // a schedule, not a condition to poll
    next_send = std::max(next_send + period, Clock::now());
    std::size_t g = (thread + n) % gateways;
    if (Clock::now() < skip_until[g]) g = (g + 1) % gateways;  // the other one, as a load balancer would
    if (Clock::now() < skip_until[g]) {
      std::this_thread::sleep_until(*std::min_element(skip_until.begin(), skip_until.end()));
      continue;
    }
    const std::string id = "chaos-" + std::to_string(thread) + "-" + std::to_string(n);
    // Every box through each gateway in turn (the box advances every `gateways` calls).
    const int box = static_cast<int>((thread + n / gateways) % ChaosStack::kDevices) + 1;
    out.push_back(call_once(*clients[g], id, box, settings, t0));
    if (out.back().status == -1) {  // the connection is gone: a new one, later
      clients[g] = make_client(gateway_ports[g], settings);
      skip_until[g] = Clock::now() + kSkipAfterError;
    }
  }
}

std::vector<Call> probe_recovery(const Settings& settings, const std::vector<int>& gateway_ports, Clock::time_point t0,
                                 const std::atomic<bool>& stop) {
  static std::atomic<int> rounds{0};  // probe_recovery runs once per fault, on the main thread
  const int round = rounds++;
  std::vector<std::future<Call>> probes;
  std::atomic<bool> answered{false};  // set by a probe's thread; every probe is joined below
  const auto give_up = Clock::now() + 10s;
  for (int n = 0; !stop && Clock::now() < give_up; ++n) {
    const int port = gateway_ports[static_cast<std::size_t>(n) % gateway_ports.size()];
    probes.push_back(std::async(std::launch::async, [&settings, &answered, t0, port, n, round] {
      auto client = make_client(port, settings);
      // Unique across rounds: an id names one command cluster-wide, so a
      // probe reusing an earlier round's id would be answered from its record.
      const std::string id = "chaos-probe-" + std::to_string(round) + "-" + std::to_string(n);
      Call c = call_once(*client, id, n % ChaosStack::kDevices + 1, settings, t0);
      if (c.status == 200 && !c.foreign) answered = true;
      return c;
    }));
    if (test::eventually([&] { return answered.load(); }, 50ms, 10ms)) break;
  }
  std::vector<Call> out;
  for (auto& f : probes) out.push_back(f.get());
  return out;
}

Observer::Observer(int mqtt_port) : probe_(mqtt_port) {
  probe_.subscribe("dev/+/request/+", 1);
  thread_ = std::thread([this] {
    while (!stop_) {
      if (probe_.wait_for(1, 50ms)) drain_once();
    }
  });
}

Observer::~Observer() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
}

void Observer::drain_once() {
  for (const auto& m : probe_.take()) {
    const auto slash = m.topic.rfind('/');
    ++seen_[m.topic.substr(slash == std::string::npos ? 0 : slash + 1)];
  }
}

void Observer::finish() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  const auto deadline = Clock::now() + 5s;
  while (Clock::now() < deadline && probe_.wait_for(1, 300ms)) drain_once();
}

std::vector<std::string> Observer::duplicates(std::size_t* total) const {
  std::vector<std::string> out;
  std::size_t n = 0;
  for (const auto& [id, count] : seen_) {
    if (count > 1 && ++n <= kShownDuplicates) out.push_back(id + " x" + std::to_string(count));
  }
  std::sort(out.begin(), out.end());
  if (total) *total = n;
  return out;
}

}  // namespace boxgate::chaos
