// publish_cost: CPU per QoS 1 publish (publish + PUBACK) of two MQTT client
// designs, to size the MQTT share of boxgate's per-command cost:
//   paho  - paho-mqtt-cpp async_client (what the daemons use): the caller
//           hands each message to paho's send thread, paho's receive thread
//           handles the PUBACK;
//   pahoc - the paho C MQTTAsync API underneath it, without per-publish
//           tokens or callbacks (one client-wide delivery-complete callback);
//   mosq  - libmosquitto driven by a libevent loop on the calling thread
//           (mosquitto_loop_read/write): no thread hand-off at all.
// Usage: publish_cost paho|pahoc|mosq PORT COUNT WINDOW   (broker on 127.0.0.1:PORT)
// Prints CPU microseconds per acknowledged publish for the whole process.

#include <event2/event.h>
#include <mosquitto.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>

#include <MQTTAsync.h>
#include <mqtt/async_client.h>

namespace {

double cpu_us() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e6 + u.ru_utime.tv_usec + u.ru_stime.tv_usec;
}

const std::string kPayload = R"({"id":"0b0e6f1e-7c1a-4d1e-9a53-1f2d3c4b5a69","method":"ping","params":{"n":1}})";

std::string topic(long i) { return "dev/box-" + std::to_string(i % 100) + "/request/r" + std::to_string(i); }

int run_paho(int port, long count, long window) {
  mqtt::async_client client("tcp://127.0.0.1:" + std::to_string(port), "cost-paho",
                            mqtt::create_options(MQTTVERSION_5, 1 << 20));
  std::mutex m;
  std::condition_variable cv;
  std::atomic<long> acked{0};
  struct Callback : mqtt::callback {
    std::atomic<long>& acked;
    std::condition_variable& cv;
    Callback(std::atomic<long>& a, std::condition_variable& c) : acked(a), cv(c) {}
    void delivery_complete(mqtt::delivery_token_ptr) override {
      acked++;
      cv.notify_one();
    }
  } cb(acked, cv);
  client.set_callback(cb);
  client.connect(mqtt::connect_options_builder().mqtt_version(MQTTVERSION_5).clean_start(true).finalize())->wait();
  double start = cpu_us();
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    {
      std::unique_lock lock(m);
      cv.wait(lock, [&] { return i - acked.load() < window; });
    }
    client.publish(mqtt::make_message(topic(i), kPayload, 1, false));
  }
  std::unique_lock lock(m);
  cv.wait_for(lock, std::chrono::seconds(30), [&] { return acked.load() == count; });
  double used = cpu_us() - start;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("paho: %ld publishes acked in %.2f s, %.1f CPU us/publish\n", acked.load(), secs, used / count);
  client.disconnect()->wait();
  return 0;
}

struct PahoCState {
  std::mutex m;
  std::condition_variable cv;
  std::atomic<long> acked{0};
};

int run_pahoc(int port, long count, long window) {
  PahoCState st;
  MQTTAsync client;
  MQTTAsync_createOptions create = MQTTAsync_createOptions_initializer5;
  create.maxBufferedMessages = 1 << 20;
  std::string uri = "tcp://127.0.0.1:" + std::to_string(port);
  MQTTAsync_createWithOptions(&client, uri.c_str(), "cost-pahoc", MQTTCLIENT_PERSISTENCE_NONE, nullptr, &create);
  MQTTAsync_setCallbacks(
      client, &st, nullptr, [](void*, char*, int, MQTTAsync_message*) { return 1; },
      [](void* ctx, MQTTAsync_token) {
        auto* s = static_cast<PahoCState*>(ctx);
        s->acked++;
        s->cv.notify_one();
      });
  std::atomic<bool> connected{false};
  MQTTAsync_connectOptions opts = MQTTAsync_connectOptions_initializer5;
  opts.cleanstart = 1;
  opts.context = &connected;
  opts.onSuccess5 = [](void* ctx, MQTTAsync_successData5*) { static_cast<std::atomic<bool>*>(ctx)->store(true); };
  MQTTAsync_connect(client, &opts);
  for (int i = 0; i < 500 && !connected; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  double start = cpu_us();
  auto t0 = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    {
      std::unique_lock lock(st.m);
      st.cv.wait(lock, [&] { return i - st.acked.load() < window; });
    }
    std::string t = topic(i);
    MQTTAsync_message msg = MQTTAsync_message_initializer;
    msg.payload = const_cast<char*>(kPayload.data());
    msg.payloadlen = static_cast<int>(kPayload.size());
    msg.qos = 1;
    MQTTAsync_sendMessage(client, t.c_str(), &msg, nullptr);
  }
  std::unique_lock lock(st.m);
  st.cv.wait_for(lock, std::chrono::seconds(30), [&] { return st.acked.load() == count; });
  double used = cpu_us() - start;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("pahoc: %ld publishes acked in %.2f s, %.1f CPU us/publish\n", st.acked.load(), secs, used / count);
  MQTTAsync_destroy(&client);
  return 0;
}

struct MosqState {
  mosquitto* mosq;
  event* read_ev;
  event* write_ev;
  long sent = 0, acked = 0, count, window;
  event_base* base;
};

void pump(MosqState& s) {
  while (s.sent < s.count && s.sent - s.acked < s.window) {
    std::string t = topic(s.sent++);
    mosquitto_publish_v5(s.mosq, nullptr, t.c_str(), static_cast<int>(kPayload.size()), kPayload.data(), 1, false,
                         nullptr);
  }
  if (mosquitto_want_write(s.mosq)) event_add(s.write_ev, nullptr);
}

int run_mosq(int port, long count, long window) {
  mosquitto_lib_init();
  MosqState s{};
  s.count = count;
  s.window = window;
  s.mosq = mosquitto_new("cost-mosq", true, &s);
  mosquitto_int_option(s.mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_publish_v5_callback_set(s.mosq, [](mosquitto*, void* arg, int, int, const mosquitto_property*) {
    auto& st = *static_cast<MosqState*>(arg);
    if (++st.acked == st.count) event_base_loopbreak(st.base);
  });
  if (mosquitto_connect(s.mosq, "127.0.0.1", port, 30) != MOSQ_ERR_SUCCESS) return 1;
  s.base = event_base_new();
  int fd = mosquitto_socket(s.mosq);
  s.read_ev = event_new(s.base, fd, EV_READ | EV_PERSIST, [](evutil_socket_t, short, void* arg) {
    auto& st = *static_cast<MosqState*>(arg);
    mosquitto_loop_read(st.mosq, 100);
    pump(st);
  }, &s);
  s.write_ev = event_new(s.base, fd, EV_WRITE, [](evutil_socket_t, short, void* arg) {
    auto& st = *static_cast<MosqState*>(arg);
    mosquitto_loop_write(st.mosq, 100);
    if (mosquitto_want_write(st.mosq)) event_add(st.write_ev, nullptr);
  }, &s);
  event_add(s.read_ev, nullptr);
  // Let CONNACK arrive before measuring.
  while (mosquitto_loop(s.mosq, 100, 1) == MOSQ_ERR_SUCCESS && !mosquitto_want_write(s.mosq)) {
    static int n = 0;
    if (++n > 5) break;
  }
  double start = cpu_us();
  auto t0 = std::chrono::steady_clock::now();
  pump(s);
  event_base_dispatch(s.base);
  double used = cpu_us() - start;
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("mosq: %ld publishes acked in %.2f s, %.1f CPU us/publish\n", s.acked, secs, used / count);
  mosquitto_disconnect(s.mosq);
  mosquitto_destroy(s.mosq);
  mosquitto_lib_cleanup();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s paho|pahoc|mosq PORT COUNT WINDOW\n", argv[0]);
    return 2;
  }
  std::string lib = argv[1];
  int port = std::atoi(argv[2]);
  long count = std::atol(argv[3]), window = std::atol(argv[4]);
  if (lib == "paho") return run_paho(port, count, window);
  if (lib == "pahoc") return run_pahoc(port, count, window);
  return run_mosq(port, count, window);
}
