// boxgate-chaos: a whole stack held under faults (bench/chaos builds and runs it).
//
//   boxgate-chaos --run-dir DIR [--seconds 60] [--clients 16] [--rate 800] [--timeout-ms 2000]
//
// Starts the stack of stack.hpp from the daemons in BOXGATE_BIN_DIR, holds
// steady load for --seconds while a nemesis injects the next fault of the
// cycle every 2.5 s (none in the last tenth of the run, at least 5 s, so the
// recovery after the last one is measured), then checks the invariants and
// prints a summary; the same figures go to DIR/results.json, one line per
// call to DIR/calls.tsv, the daemons' logs to DIR. It never fails on a throughput or availability figure. Exit status:
// 0 every invariant held, 1 one broke, 2 bad arguments or the stack could not
// start or come back after a fault.
//
// Threads: main builds the stack, then reads every result after joining the
// load threads (each owns its Call vector), the nemesis thread (owns the
// stack and the NemesisLog while it runs) and the observer's drain thread.

#include <cmath>
#include <csignal>
#include <cstdlib>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>
#include <sstream>

#include <nlohmann/json.hpp>

#include "stack.hpp"
#include "traffic.hpp"

namespace boxgate::chaos {
namespace {

using json = nlohmann::ordered_json;

constexpr auto kFaultEvery = 2500ms;
constexpr auto kDowntime = 500ms;  // a killed process is started again this long after
constexpr int kSlackMs = 1500;     // an answer may come this long after its timeout
// After the last restart a 200 must come within kRecoveredLimitMs (the stack
// recovers at all: an invariant) and should within kRecoveryTargetMs (issue
// 14's target: reported, not failed on, since after a broker kill it is
// bounded by the devices' paho reconnect, not by boxgate; see bench/README.md).
constexpr int kRecoveredLimitMs = 5000;
constexpr int kRecoveryTargetMs = 1000;

volatile std::sig_atomic_t g_signal = 0;  // set by SIGINT/SIGTERM; main turns it into `stop`
void on_signal(int sig) { g_signal = sig; }

double ms_of(Clock::time_point t, Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

std::chrono::seconds quiet_period(const Settings& s) { return std::chrono::seconds(std::max(5, s.seconds / 10)); }

// What the nemesis thread leaves behind; read by main after joining it.
struct NemesisLog {
  std::vector<Fault> faults;
  std::vector<std::string> problems;  // daemons that died unasked or exited non-zero on SIGTERM
  std::vector<Call> probes;
  std::string fatal;  // the stack did not come back: the run is void
};

void run_nemesis(ChaosStack& stack, const Settings& s, Clock::time_point t0, std::atomic<bool>& stop,
                 NemesisLog& out) {
  const auto faults_end = t0 + std::chrono::seconds(s.seconds) - quiet_period(s);
  auto next = t0 + kFaultEvery;
  try {
    for (std::size_t n = 0; next < faults_end && !stop; ++n) {
      while (!stop && Clock::now() < next) {
        std::this_thread::sleep_for(std::min<Clock::duration>(10ms, next - Clock::now()));
      }
      if (stop) break;
      for (auto& line : stack.revive()) out.problems.push_back(line);
      Fault f = stack.inject(n, kDowntime);
      std::cerr << std::fixed << std::setprecision(2) << "[chaos] " << ms_of(f.start, t0) / 1000 << " s "
                << fault_name(f.kind) << " " << f.target << ", back after " << ms_of(f.restored, f.start) / 1000
                << " s\n";
      if (!f.problem.empty()) out.problems.push_back(f.problem);
      out.faults.push_back(std::move(f));
      next = std::max(next + kFaultEvery, Clock::now());
    }
    if (!out.faults.empty() && !stop) out.probes = probe_recovery(s, stack.gateway_ports(), t0, stop);
  } catch (const std::exception& e) {
    out.fatal = e.what();
    stop = true;
  }
}

// One 200 per box through each gateway: every device, bridge and gateway is
// on the path before the clock starts. Each attempt has its own id.
bool warm_up(const std::vector<int>& ports, const Settings& s) {
  int attempt = 0;
  for (int port : ports) {
    auto client = make_client(port, s);
    for (int box = 1; box <= ChaosStack::kDevices; ++box) {
      auto ok = [&] {
        return call_once(*client, "chaos-warm-" + std::to_string(attempt++), box, s, Clock::now()).status == 200;
      };
      if (!test::eventually(ok, 15s, 50ms)) return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------- the report

json invariant(bool pass, const std::string& detail) { return json{{"pass", pass}, {"detail", detail}}; }

std::optional<double> recovery_ms(const std::vector<Call>& calls, const std::vector<Call>& probes, double restored_ms) {
  std::optional<double> best;
  for (const auto* list : {&calls, &probes}) {
    for (const Call& c : *list) {
      const double start = static_cast<double>(c.start_us) / 1000;
      if (c.status != 200 || c.foreign || start < restored_ms) continue;
      const double at = start + c.elapsed_ms - restored_ms;
      if (!best || at < *best) best = at;
    }
  }
  return best;
}

// Non-200 answers of the load by the fault most recent when each call started.
json by_fault(const std::vector<Call>& calls, const std::vector<Fault>& faults, Clock::time_point t0) {
  std::map<std::string, std::map<std::string, long>> answers;
  std::map<std::string, long> injected;
  for (const Fault& f : faults) ++injected[fault_name(f.kind)];
  for (const Call& c : calls) {
    if (c.status == 200 && !c.foreign) continue;
    const double start = static_cast<double>(c.start_us) / 1000;
    std::string kind = "before_faults";
    for (const Fault& f : faults) {
      if (ms_of(f.start, t0) <= start) kind = fault_name(f.kind);
    }
    ++answers[kind][c.foreign ? "200 foreign_reply" : c.answer];
  }
  json out = json::object();
  for (const auto& [kind, count] : injected) answers[kind];  // kinds with no non-200 show too
  for (const auto& [kind, by_answer] : answers) {
    long total = 0;
    for (const auto& [answer, n] : by_answer) total += n;
    const long faults_of_kind = injected.count(kind) ? injected[kind] : 0;
    out[kind] = {{"faults", faults_of_kind},
                 {"non200", total},
                 {"per_fault", faults_of_kind ? static_cast<double>(total) / faults_of_kind : 0.0},
                 {"answers", by_answer}};
  }
  return out;
}

// What the calls (load and probes) add up to; probes are checked, not counted in the figures.
struct Tally {
  long ok = 0, foreign = 0, late = 0;
  std::int32_t slowest = 0;
  std::map<std::string, long> non200;  // load calls by answer
};

Tally tally(const Settings& s, const std::vector<Call>& calls, const std::vector<Call>& probes) {
  Tally t;
  for (const auto* list : {&calls, &probes}) {
    for (const Call& c : *list) {
      t.foreign += c.foreign;
      t.late += c.elapsed_ms > s.timeout_ms + kSlackMs;
      t.slowest = std::max(t.slowest, c.elapsed_ms);
      if (list != &calls) continue;
      if (c.status == 200 && !c.foreign) ++t.ok;
      if (c.status != 200) ++t.non200[c.answer];
    }
  }
  return t;
}

json check(const Settings& s, const Tally& t, std::optional<double> recovery, std::size_t duplicate_ids,
           std::size_t ids, const std::vector<std::string>& problems) {
  const std::string late_after = std::to_string(s.timeout_ms + kSlackMs) + " ms";
  const std::string recovered = (recovery ? "first 200 " + std::to_string(std::lround(*recovery)) + " ms" : "no 200") +
                                " after the last restart (limit " + std::to_string(kRecoveredLimitMs) +
                                " ms; target " + std::to_string(kRecoveryTargetMs) + " ms " +
                                (recovery && *recovery <= kRecoveryTargetMs ? "met" : "missed") + ")";
  json inv;
  inv["own_reply"] = invariant(t.foreign == 0, std::to_string(t.foreign) + " answers 200 carried another call's id");
  inv["bounded_time"] = invariant(t.late == 0, std::to_string(t.late) + " answers later than " + late_after +
                                                   " (slowest " + std::to_string(t.slowest) + " ms)");
  inv["published_once"] = invariant(duplicate_ids == 0, std::to_string(duplicate_ids) + " of " + std::to_string(ids) +
                                                            " request ids observed on MQTT were published twice");
  inv["recovery"] = invariant(recovery && *recovery <= kRecoveredLimitMs, recovered);
  inv["daemons"] = invariant(problems.empty(), problems.empty() ? "none died unasked; each exited 0 on SIGTERM"
                                                                : std::to_string(problems.size()) + " problems");
  return inv;
}

json summarize(const Settings& s, const std::vector<Call>& calls, const NemesisLog& nem, const Observer& observer,
               const std::vector<std::string>& stop_problems, Clock::time_point t0) {
  const Tally t = tally(s, calls, nem.probes);
  json faults = json::array();
  for (const Fault& f : nem.faults) {
    faults.push_back({{"kind", fault_name(f.kind)}, {"target", f.target},
                      {"start_s", ms_of(f.start, t0) / 1000}, {"restored_s", ms_of(f.restored, t0) / 1000}});
  }
  std::optional<double> recovery;
  if (!nem.faults.empty()) recovery = recovery_ms(calls, nem.probes, ms_of(nem.faults.back().restored, t0));
  std::vector<std::string> problems = nem.problems;
  problems.insert(problems.end(), stop_problems.begin(), stop_problems.end());
  std::size_t duplicate_ids = 0;
  const auto duplicates = observer.duplicates(&duplicate_ids);
  json inv = check(s, t, recovery, duplicate_ids, observer.ids(), problems);
  bool passed = true;
  for (const auto& [name, v] : inv.items()) passed = passed && v["pass"].get<bool>();
  const auto total = static_cast<double>(calls.size());
  const char* bin_dir = std::getenv("BOXGATE_BIN_DIR");
  return json{{"seconds", s.seconds}, {"clients", s.clients}, {"rate", s.rate}, {"timeout_ms", s.timeout_ms},
              {"slack_ms", kSlackMs}, {"bin_dir", bin_dir ? bin_dir : ""},
              {"calls", calls.size()}, {"calls_per_s", total / s.seconds}, {"ok", t.ok},
              {"availability_pct", total > 0 ? 100.0 * static_cast<double>(t.ok) / total : 0.0},
              {"non200", t.non200}, {"non200_by_fault", by_fault(calls, nem.faults, t0)},
              {"recovery_ms", recovery ? json(*recovery) : json(nullptr)},
              {"recovery_after", nem.faults.empty() ? "" : fault_name(nem.faults.back().kind)},
              {"slowest_ms", t.slowest}, {"probes", nem.probes.size()}, {"mqtt_ids_observed", observer.ids()},
              {"mqtt_duplicates", duplicates}, {"problems", problems}, {"faults", faults},
              {"invariants", inv}, {"passed", passed}};
}

void print(const json& r, const std::string& results_path) {
  std::ostringstream o;
  o << std::fixed << std::setprecision(2);
  o << "== chaos: " << r["seconds"] << " s, " << r["clients"] << " clients, " << r["rate"]
    << " calls/s offered, timeout_ms " << r["timeout_ms"] << ", " << r["faults"].size() << " faults\n"
    << "calls          " << r["calls"] << "  (" << r["calls_per_s"].get<double>() << " /s)\n"
    << "answered 200   " << r["ok"] << "  (" << r["availability_pct"].get<double>() << " %)\n"
    << "non-200        " << (r["calls"].get<long>() - r["ok"].get<long>()) << "\n";
  for (const auto& [answer, n] : r["non200"].items()) {
    o << "  " << std::left << std::setw(34) << answer << " " << n.get<long>() << "\n";
  }
  o << "non-200 by the fault most recent when the call started (faults / non-200 / per fault: answers)\n";
  for (const auto& [kind, v] : r["non200_by_fault"].items()) {
    // Values through get<>(): a json value printed to a stream takes its width as indentation.
    o << "  " << std::left << std::setw(16) << kind << std::right << std::setw(4) << v["faults"].get<long>()
      << std::setw(7) << v["non200"].get<long>() << std::setw(9) << v["per_fault"].get<double>() << ":";
    for (const auto& [answer, n] : v["answers"].items()) o << " " << answer << " " << n.get<long>() << ";";
    o << "\n";
  }
  o << "recovery       "
    << (r["recovery_ms"].is_null() ? std::string("none")
                                   : std::to_string(std::lround(r["recovery_ms"].get<double>())) + " ms")
    << " after the last fault (" << r["recovery_after"].get<std::string>() << ")\n"
    << "invariants\n";
  for (const auto& [name, v] : r["invariants"].items()) {
    o << "  " << (v["pass"].get<bool>() ? "PASS " : "FAIL ") << std::left << std::setw(15) << name
      << v["detail"].get<std::string>() << "\n";
  }
  for (const auto& p : r["problems"]) o << "  problem: " << p.get<std::string>() << "\n";
  for (const auto& d : r["mqtt_duplicates"]) o << "  published twice: " << d.get<std::string>() << "\n";
  o << "result         " << (r["passed"].get<bool>() ? "PASS" : "FAIL") << "\nresults file   " << results_path << "\n";
  std::cout << o.str() << std::flush;
}

// ---------------------------------------------------------------- the run

// One line per call (load, then the recovery probes), for a closer look at a run.
void write_calls(const std::string& path, const std::vector<Call>& calls, const std::vector<Call>& probes) {
  std::ofstream out(path);
  out << "kind\tstart_ms\telapsed_ms\tstatus\tanswer\n";
  for (const auto* list : {&calls, &probes}) {
    for (const Call& c : *list) {
      out << (list == &calls ? "load" : "probe") << '\t' << c.start_us / 1000 << '\t' << c.elapsed_ms << '\t'
          << c.status << '\t' << (c.foreign ? "200 foreign_reply" : c.answer) << '\n';
    }
  }
}

int run(const Settings& s, const std::string& run_dir) {
  test::TempDir dir(test::TempDir::Keep{}, run_dir);
  std::unique_ptr<ChaosStack> stack;
  std::unique_ptr<Observer> observer;
  try {
    stack = std::make_unique<ChaosStack>(dir);
    observer = std::make_unique<Observer>(stack->mqtt_port());
  } catch (const std::exception& e) {
    std::cerr << "boxgate-chaos: the stack did not start: " << e.what() << "\n";
    return 2;
  }
  if (!warm_up(stack->gateway_ports(), s)) {
    std::cerr << "boxgate-chaos: no 200 from every box through every gateway within 15 s\n";
    return 2;
  }
  const std::vector<int> ports = stack->gateway_ports();
  const auto t0 = Clock::now();
  const auto end = t0 + std::chrono::seconds(s.seconds);
  std::atomic<bool> stop{false}, nemesis_done{false};
  NemesisLog nem;
  std::thread nemesis([&] {
    run_nemesis(*stack, s, t0, stop, nem);
    nemesis_done = true;
  });
  std::vector<std::vector<Call>> per_thread(static_cast<std::size_t>(s.clients));
  std::vector<std::thread> clients;
  for (int t = 0; t < s.clients; ++t) {
    clients.emplace_back([&, t] { run_client(t, s, ports, t0, end, stop, per_thread[static_cast<std::size_t>(t)]); });
  }
  // Until the load's end and the nemesis are both done, or a signal, or a broken stack.
  while (!nemesis_done || (Clock::now() < end && !stop)) {
    if (g_signal) stop = true;
    std::this_thread::sleep_for(50ms);
  }
  for (auto& c : clients) c.join();
  nemesis.join();
  observer->finish();
  const std::vector<std::string> stop_problems = stack->stop_daemons();
  if (!nem.fatal.empty() || g_signal) {
    std::cerr << "boxgate-chaos: " << (g_signal ? "interrupted" : "the stack broke: " + nem.fatal) << "\n";
    return 2;
  }
  std::vector<Call> calls;
  for (auto& v : per_thread) calls.insert(calls.end(), v.begin(), v.end());
  const json results = summarize(s, calls, nem, *observer, stop_problems, t0);
  const std::string path = run_dir + "/results.json";
  std::ofstream(path) << results.dump(2) << "\n";
  write_calls(run_dir + "/calls.tsv", calls, nem.probes);
  print(results, path);
  return results["passed"].get<bool>() ? 0 : 1;
}

int usage(const char* why) {
  std::cerr << "boxgate-chaos: " << why << "\nusage: boxgate-chaos --run-dir DIR [--seconds N>=10] [--clients N]"
               " [--rate CALLS_PER_S] [--timeout-ms N]\n";
  return 2;
}

}  // namespace
}  // namespace boxgate::chaos

int main(int argc, char** argv) {
  using namespace boxgate::chaos;
  Settings s;
  std::string run_dir;
  for (int i = 1; i < argc; i += 2) {
    const std::string flag = argv[i];
    if (i + 1 >= argc) return usage("a flag without its value");
    const std::string value = argv[i + 1];
    try {
      if (flag == "--run-dir") run_dir = value;
      else if (flag == "--seconds") s.seconds = std::stoi(value);
      else if (flag == "--clients") s.clients = std::stoi(value);
      else if (flag == "--rate") s.rate = std::stoi(value);
      else if (flag == "--timeout-ms") s.timeout_ms = std::stoi(value);
      else return usage(("unknown flag " + flag).c_str());
    } catch (const std::exception&) {
      return usage(("not a number: " + value).c_str());
    }
  }
  if (run_dir.empty()) return usage("--run-dir is required");
  if (s.seconds < 10 || s.clients < 1 || s.rate < 1 || s.timeout_ms < 1) {
    return usage("--seconds must be >= 10, the others >= 1");
  }
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
  std::signal(SIGPIPE, SIG_IGN);  // a write to a killed gateway's socket is an error, not a death
  try {
    return run(s, run_dir);
  } catch (const std::exception& e) {
    std::cerr << "boxgate-chaos: " << e.what() << "\n";
    return 2;
  }
}
