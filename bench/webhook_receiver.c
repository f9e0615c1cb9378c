/* webhook_receiver: the webhook endpoint of `bench/run webhooks`.
 *
 *   webhook_receiver PORT OUTFILE SECONDS     (binds 127.0.0.1:PORT)
 *
 * One libevent evhttp loop thread (like bench/floor_http.c) answering every
 * request at once with 200 and an empty body. Per request it appends one
 * line to OUTFILE:
 *
 *   <webhook-id> <type> <receive time, unix us> <data.at_ms> <stream id ms>
 *
 * with the receive time taken from the machine's real-time clock when the
 * whole request has been read (the gateway and bridge stamp at_ms and the
 * stream id from the same clock), and "-" or 0 for what a body lacks. It
 * does not check signatures: the gateway's tests do; this measures timing.
 * Lines are buffered and written on exit: SIGTERM/SIGINT, or SECONDS after
 * the start (a bound, so a receiver whose run went wrong ends by itself).
 * Built by bench/run with: gcc -O2 webhook_receiver.c $(pkg-config --cflags --libs libevent)
 */
#define _GNU_SOURCE /* memmem */
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include <stdlib.h>
#include <time.h>

#include "bench_http.h"

static FILE *out;
static unsigned long requests;

/* The integer after `"key":` at or after `from` in body[0..len), or 0. */
static long long json_int_after(const char *body, size_t len, const char *from, const char *key) {
  char pat[64];
  snprintf(pat, sizeof pat, "\"%s\":", key);
  size_t plen = strlen(pat);
  const char *end = body + len;
  for (const char *p = from; p && p + plen <= end; p++) {
    p = memchr(p, '"', (size_t)(end - p));
    if (!p || p + plen > end) break;
    if (memcmp(p, pat, plen) == 0) {
      p += plen;
      while (p < end && (*p == ' ' || *p == '"')) p++;
      long long v = 0;
      while (p < end && *p >= '0' && *p <= '9') v = v * 10 + (*p++ - '0');
      return v;
    }
  }
  return 0;
}

static void on_request(struct evhttp_request *req, void *arg) {
  (void)arg;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long recv_us = (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;

  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  const char *body = len ? (const char *)evbuffer_pullup(in, -1) : "";
  struct evkeyvalq *headers = evhttp_request_get_input_headers(req);
  const char *id = evhttp_find_header(headers, "webhook-id");

  char type[64] = "-";
  const char *t = len ? memmem(body, len, "\"type\":\"", 8) : NULL;
  if (t) {
    t += 8;
    size_t n = 0;
    while (t + n < body + len && t[n] != '"' && n + 1 < sizeof type) n++;
    memcpy(type, t, n);
    type[n] = '\0';
  }
  const char *data = len ? memmem(body, len, "\"data\":", 7) : NULL;
  long long at_ms = data ? json_int_after(body, len, data, "at_ms") : 0;
  long long stream_ms = len ? json_int_after(body, len, body, "stream_id") : 0;
  fprintf(out, "%s %s %lld %lld %lld\n", id && *id ? id : "-", type, recv_us, at_ms, stream_ms);
  requests++;

  evhttp_send_reply(req, 200, "OK", NULL);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s PORT OUTFILE SECONDS\n", argv[0]);
    return 2;
  }
  out = fopen(argv[2], "w");
  if (!out) {
    perror(argv[2]);
    return 1;
  }
  static char buffer[8 << 20];
  setvbuf(out, buffer, _IOFBF, sizeof buffer);
  struct bench_http server;
  if (bench_http_start(&server, atoi(argv[1]), "webhook_receiver", on_request, EVHTTP_REQ_POST) != 0) return 1;
  struct event *bound = evtimer_new(server.base, bench_http_stop, server.base);
  struct timeval lifetime = {atoi(argv[3]), 0};
  event_add(bound, &lifetime);
  event_base_dispatch(server.base);
  fclose(out);
  fprintf(stderr, "webhook_receiver: %lu requests\n", requests);
  event_free(bound);
  bench_http_free(&server);
  return 0;
}
