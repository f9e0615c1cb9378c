// Fault tests, limits: idle and slow clients must not starve
// a normal caller; max_pending and max_pending_per_device refuse with 429 and
// Retry-After while other boxes keep working.

#include <gtest/gtest.h>

#include <filesystem>

#include "faults_support.hpp"

namespace boxgate::itest::faults {
namespace {


class LimitFaults : public StackTest {
 protected:
  LimitFaults() : StackTest("faults-limits") {}
};

// 64 connections that never send a byte, and 200 that trickle a request's
// headers one byte at a time: a normal command still answers 200 within 1 s.
TEST_F(LimitFaults, IdleAndSlowClientsDoNotStarveANormalCommand) {
  int gw = stack->add_gateway();
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());

  std::vector<std::unique_ptr<RawConnection>> idle;
  for (int i = 0; i < 64; ++i) idle.push_back(std::make_unique<RawConnection>(gw));
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 200; ++i) slow.push_back(std::make_unique<RawConnection>(gw));
  const std::string request = "POST /v1/devices/box-1/commands HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                              "Content-Type: application/json\r\nX-Padding: " + std::string(200, 'a') + "\r\n";
  std::atomic<bool> stop{false};
  std::atomic<int> bytes_sent{0};
  std::atomic<int> refused{0};
  // One byte per slow connection every 50 ms; the request never completes.
  std::thread trickler([&] {
    for (std::size_t at = 0; !stop && at < request.size(); ++at) {
      for (auto& s : slow) {
        if (s->send(std::string_view(request).substr(at, 1))) {
          ++bytes_sent;
        } else {
          ++refused;
        }
      }
      std::this_thread::sleep_for(50ms);  // the trickle's pace: the point of a slow client
    }
  });

  // The trickle is going: every slow connection has sent a few bytes.
  ASSERT_TRUE(test::eventually([&] { return bytes_sent + refused >= 5 * static_cast<int>(slow.size()); }, 5s));
  long long slowest = 0;
  for (int i = 0; i < 10; ++i) {
    auto c = client(gw);  // a new connection each time: accept must not be starved either
    HttpResult r = post(*c, command_path("box-2"), kPing);
    EXPECT_EQ(r.status, 200) << r.body << r.error;
    EXPECT_LE(r.elapsed.count(), 1000);
    slowest = std::max<long long>(slowest, r.elapsed.count());
    std::this_thread::sleep_for(100ms);  // the point: the calls spread over a second of trickle
  }
  HttpResult health = get(gw, "/healthz");
  EXPECT_EQ(health.status, 200);
  stop = true;
  trickler.join();
  report("slowest_of_10_commands_ms", slowest);
  report("trickled_bytes", bytes_sent.load());
  report("trickle_sends_refused", refused.load());
  int idle_open = 0;
  for (auto& c : idle) idle_open += c->closed_by_peer() ? 0 : 1;
  report("idle_connections_still_open", idle_open);
  // The normal commands were served while every idle and slow client was
  // still held (all within the 30 s idle timeout), not by dropping them.
  EXPECT_EQ(idle_open, 64) << "idle connections were closed before http_idle_timeout_ms";
  EXPECT_EQ(refused.load(), 0) << "slow connections were cut off before http_idle_timeout_ms";
  EXPECT_GT(bytes_sent.load(), 200 * 10) << "the slow clients barely trickled: the test proved little";
}

// The header/idle timeout: a connection that never completes its request
// (slowloris: one byte every 200 ms, each within the idle timeout) must be
// closed once http_idle_timeout_ms has passed since it began, or a few
// thousand such clients hold every connection slot (http_max_connections)
// and normal callers wait in the backlog.
TEST_F(LimitFaults, SlowHeadersAreCutOffByTheHeaderTimeout) {
  int gw = stack->add_gateway({"--http-idle-timeout-ms", "1000"});
  RawConnection idle(gw);
  RawConnection slow(gw);
  const std::string request = "POST /v1/devices/box-1/commands HTTP/1.1\r\nX-Padding: " + std::string(100, 'a');
  const auto started = Clock::now();
  long long idle_closed_ms = -1, slow_closed_ms = -1;
  for (std::size_t at = 0; ms_since(started) < 4000; ++at) {
    if (slow_closed_ms < 0) {
      if (!slow.send(std::string_view(request).substr(at % request.size(), 1)) || slow.closed_by_peer()) {
        slow_closed_ms = ms_since(started);
      }
    }
    if (idle_closed_ms < 0 && idle.closed_by_peer()) idle_closed_ms = ms_since(started);
    if (idle_closed_ms >= 0 && slow_closed_ms >= 0) break;
    std::this_thread::sleep_for(200ms);  // the trickle's pace: one byte per 200 ms
  }
  report("idle_connection_closed_after_ms", idle_closed_ms);
  report("slow_header_connection_closed_after_ms", slow_closed_ms);
  EXPECT_GE(idle_closed_ms, 0) << "an idle connection outlived http_idle_timeout_ms=1000 by 3 s";
  EXPECT_GE(slow_closed_ms, 0) << "a client trickling header bytes was never cut off (4 s, timeout 1 s)";
}

// The impact of the above at the connection cap (http_max_connections=16,
// idle timeout 1 s): 40 clients trickling header bytes. Normal callers must
// still be served within 1 s, and the gateway must not hold more client
// sockets than the cap allows once the timeout has long passed (else slow
// clients exhaust its fds).
TEST_F(LimitFaults, SlowClientsCannotHoldMoreConnectionsThanTheCap) {
  int gw = stack->add_gateway({"--http-idle-timeout-ms", "1000", "--http-max-connections", "16"});
  stack->add_bridge();
  ProbeDevice device(stack->mqtt_port(), "dev/+/request/+", ProbeDevice::echo());
  auto open_fds = [&] {
    int n = 0;
    for (const auto& e : std::filesystem::directory_iterator("/proc/" + std::to_string(stack->gateway().pid()) + "/fd")) {
      (void)e;
      ++n;
    }
    return n;
  };
  const int fds_before = open_fds();
  const std::string request = "POST /v1/devices/box-1/commands HTTP/1.1\r\nX-Padding: " + std::string(200, 'a');
  std::vector<std::unique_ptr<RawConnection>> slow;
  for (int i = 0; i < 40; ++i) slow.push_back(std::make_unique<RawConnection>(gw));
  std::atomic<bool> stop{false};
  std::atomic<int> cut_off{0};
  std::thread trickler([&] {
    std::vector<bool> open(slow.size(), true);
    for (std::size_t at = 0; !stop; ++at) {
      for (std::size_t i = 0; i < slow.size(); ++i) {
        if (open[i] && !slow[i]->send(std::string_view(request).substr(at % request.size(), 1))) {
          open[i] = false;
          ++cut_off;
        }
      }
      std::this_thread::sleep_for(200ms);  // the trickle's pace: one byte per 200 ms
    }
  });
  // The point of this pause: the 1 s idle timeout has long passed (2.5 x)
  // while the clients keep trickling.
  std::this_thread::sleep_for(2500ms);
  const int fds_held = open_fds() - fds_before;
  auto c = client(gw);
  c->set_read_timeout(std::chrono::seconds(3));
  HttpResult r = post(*c, command_path("box-2", "timeout_ms=1000"), kPing);
  stop = true;
  trickler.join();
  report("normal_command_with_40_slow_clients", std::to_string(r.status) + (r.error.empty() ? "" : " " + r.error) +
                                                    " after " + std::to_string(r.elapsed.count()) + " ms");
  report("slow_clients_cut_off", cut_off.load());
  report("gateway_fds_held_by_40_slow_clients_after_2500ms", fds_held);
  EXPECT_EQ(r.status, 200) << r.body << r.error;
  EXPECT_LE(r.elapsed.count(), 1000);
  EXPECT_LE(fds_held, 16) << "slow clients hold sockets beyond http_max_connections and past the 1 s timeout";
}

// max_pending 3 and max_pending_per_device 2, with a device that answers only
// when told: the 3rd command to one box gets 429 device_busy while another
// box still works; the 4th command overall gets 429 too_many_pending; both
// carry Retry-After and nothing refused reaches the device.
TEST_F(LimitFaults, PendingLimitsAnswer429WithRetryAfter) {
  int gw = stack->add_gateway({"--max-pending", "3", "--max-pending-per-device", "2"});
  stack->add_bridge();
  MqttProbe device(stack->mqtt_port());
  device.subscribe("dev/+/request/+", 1);
  auto answer = [&](const std::string& id) {
    for (const auto& m : device.messages()) {
      if (last_level(m.topic) == id) {
        device.publish(response_topic_for(m.topic), R"({"id":")" + id + R"(","result":"ok"})");
        return;
      }
    }
    ADD_FAILURE() << "no command " << id << " reached the device";
  };
  const std::string q = "timeout_ms=10000";

  auto a1 = post_async(gw, command_path("box-a", q), kPing, {{"X-Request-Id", "a1"}});
  auto a2 = post_async(gw, command_path("box-a", q), kPing, {{"X-Request-Id", "a2"}});
  ASSERT_TRUE(device.wait_for(2, 5s)) << stack->logs();

  auto c = client(gw);
  HttpResult busy = post(*c, command_path("box-a", q), kPing, {{"X-Request-Id", "a3"}});
  EXPECT_EQ(busy.status, 429) << busy.body;
  EXPECT_EQ(busy.error_code(), "device_busy") << busy.body;
  EXPECT_FALSE(busy.header("Retry-After").empty());
  EXPECT_EQ(busy.json().value("box_id", ""), "box-a");
  report("device_busy", std::to_string(busy.status) + " " + busy.error_code() + " Retry-After=" +
                            busy.header("Retry-After") + " in " + std::to_string(busy.elapsed.count()) + " ms");

  // Another box still works while box-a is full (and brings the total to 3).
  auto b1 = post_async(gw, command_path("box-b", q), kPing, {{"X-Request-Id", "b1"}});
  ASSERT_TRUE(device.wait_for(3, 5s)) << stack->logs();
  ASSERT_TRUE(test::eventually([&] { return metric(gw, "boxgate_commands_pending") == 3.0; }, 2s));

  HttpResult full = post(*c, command_path("box-c", q), kPing, {{"X-Request-Id", "c1"}});
  EXPECT_EQ(full.status, 429) << full.body;
  EXPECT_EQ(full.error_code(), "too_many_pending") << full.body;
  EXPECT_FALSE(full.header("Retry-After").empty());
  report("too_many_pending", std::to_string(full.status) + " " + full.error_code() + " Retry-After=" +
                                 full.header("Retry-After") + " in " + std::to_string(full.elapsed.count()) + " ms");

  answer("b1");
  HttpResult rb = b1.get();
  EXPECT_EQ(rb.status, 200) << rb.body;
  report("other_box_while_box_a_busy", std::to_string(rb.status) + " in " + std::to_string(rb.elapsed.count()) + " ms");
  answer("a1");
  answer("a2");
  EXPECT_EQ(a1.get().status, 200);
  EXPECT_EQ(a2.get().status, 200);

  // The refused ones never reached the device; with room again, box-a works.
  for (const auto& m : device.messages()) {
    EXPECT_NE(last_level(m.topic), "a3");
    EXPECT_NE(last_level(m.topic), "c1");
  }
  EXPECT_EQ(device.count(), 3u);
  EXPECT_EQ(metric(gw, R"(boxgate_commands_total{outcome="device_busy"})"), 1.0);
  EXPECT_EQ(metric(gw, R"(boxgate_commands_total{outcome="too_many_pending"})"), 1.0);
  auto again = post_async(gw, command_path("box-a", q), kPing, {{"X-Request-Id", "a4"}});
  ASSERT_TRUE(device.wait_for(4, 5s));
  answer("a4");
  EXPECT_EQ(again.get().status, 200);
}

}  // namespace
}  // namespace boxgate::itest::faults
