/* floor_device: the cheapest device side bench/run can put behind the gateway.
 *
 *   floor_device PORT [PREFIX]     (broker on 127.0.0.1:PORT; PREFIX defaults to "dev")
 *
 * One libmosquitto client (MQTT 5, TCP_NODELAY) on libmosquitto's own loop,
 * in this one thread, subscribed at QoS 1 to PREFIX/+/request/+. Every command
 * is answered at once, at QoS 1, on the command's Response Topic with its
 * Correlation Data, with the body {"ok":true}. It simulates nothing else: no
 * presence, no delays, no events. devsim (paho's threads) costs more per
 * command than the gateway and the bridge together, so `bench/run --devices
 * floor throughput` measures the daemons with the device side close to free.
 * Prints "floor_device ready" once the broker granted the subscription.
 * Built by bench/run with: gcc -O2 floor_device.c -lmosquitto
 * Stops on SIGTERM/SIGINT.
 */
#include <mosquitto.h>
#include <mqtt_protocol.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stopping = 0;
static char filter[256];
static long answered = 0;

static void on_signal(int sig) {
  (void)sig;
  stopping = 1;
}

static void on_connect(struct mosquitto *mosq, void *arg, int rc, int flags, const mosquitto_property *props) {
  (void)arg;
  (void)flags;
  (void)props;
  if (rc != 0) {
    fprintf(stderr, "floor_device: connect refused: %s\n", mosquitto_reason_string(rc));
    stopping = 1;
    return;
  }
  mosquitto_subscribe_v5(mosq, NULL, filter, 1, 0, NULL);
}

static void on_subscribe(struct mosquitto *mosq, void *arg, int mid, int count, const int *granted,
                         const mosquitto_property *props) {
  (void)mosq;
  (void)arg;
  (void)mid;
  (void)props;
  if (count != 1 || granted[0] >= 0x80) {
    fprintf(stderr, "floor_device: subscription to %s refused\n", filter);
    stopping = 1;
    return;
  }
  printf("floor_device ready: %s\n", filter);
  fflush(stdout);
}

static void on_message(struct mosquitto *mosq, void *arg, const struct mosquitto_message *msg,
                       const mosquitto_property *props) {
  (void)arg;
  (void)msg;
  char *topic = NULL;
  void *correlation = NULL;
  uint16_t correlation_len = 0;
  if (!mosquitto_property_read_string(props, MQTT_PROP_RESPONSE_TOPIC, &topic, false)) return;
  mosquitto_property *out = NULL;
  if (mosquitto_property_read_binary(props, MQTT_PROP_CORRELATION_DATA, &correlation, &correlation_len, false)) {
    mosquitto_property_add_binary(&out, MQTT_PROP_CORRELATION_DATA, correlation, correlation_len);
  }
  static const char body[] = "{\"ok\":true}";
  mosquitto_publish_v5(mosq, NULL, topic, (int)(sizeof body - 1), body, 1, false, out);
  answered++;
  mosquitto_property_free_all(&out);
  free(correlation);
  free(topic);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: floor_device PORT [PREFIX]\n");
    return 2;
  }
  int port = atoi(argv[1]);
  snprintf(filter, sizeof filter, "%s/+/request/+", argc > 2 ? argv[2] : "dev");
  signal(SIGTERM, on_signal);
  signal(SIGINT, on_signal);

  mosquitto_lib_init();
  struct mosquitto *mosq = mosquitto_new(NULL, true, NULL);
  if (!mosq) {
    perror("floor_device: mosquitto_new");
    return 1;
  }
  mosquitto_int_option(mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
  mosquitto_int_option(mosq, MOSQ_OPT_TCP_NODELAY, 1);
  mosquitto_int_option(mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 65535);
  mosquitto_int_option(mosq, MOSQ_OPT_SEND_MAXIMUM, 65535);
  mosquitto_connect_v5_callback_set(mosq, on_connect);
  mosquitto_subscribe_v5_callback_set(mosq, on_subscribe);
  mosquitto_message_v5_callback_set(mosq, on_message);
  if (mosquitto_connect_bind_v5(mosq, "127.0.0.1", port, 30, NULL, NULL) != MOSQ_ERR_SUCCESS) {
    fprintf(stderr, "floor_device: cannot connect to 127.0.0.1:%d\n", port);
    return 1;
  }
  /* The loop wakes at least every 100 ms, so a signal ends it promptly. */
  while (!stopping) {
    int rc = mosquitto_loop(mosq, 100, 1);
    if (rc != MOSQ_ERR_SUCCESS) {
      fprintf(stderr, "floor_device: connection lost: %s\n", mosquitto_strerror(rc));
      break;
    }
  }
  printf("floor_device: answered %ld commands\n", answered);
  mosquitto_disconnect_v5(mosq, 0, NULL);
  mosquitto_destroy(mosq);
  mosquitto_lib_cleanup();
  return 0;
}
