/* floor_http: the cheapest HTTP server bench/run can compare the gateway with.
 *
 *   floor_http PORT          (binds 127.0.0.1:PORT)
 *
 * One libevent evhttp loop thread, like the gateway, answering every request
 * at once with 200 and the body "{}" (Content-Type: application/json). It reads
 * the request body (evhttp always does) and does nothing else, so wrk against
 * it measures what the HTTP part of one command costs this machine: the
 * gateway's req/s and CPU per command read as ratios to this floor.
 * Built by bench/run with: gcc -O2 floor_http.c $(pkg-config --cflags --libs libevent)
 * Stops on SIGTERM/SIGINT.
 */
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>

#include <stdlib.h>

#include "bench_http.h"

static void on_request(struct evhttp_request *req, void *arg) {
  (void)arg;
  struct evbuffer *out = evhttp_request_get_output_buffer(req);
  evbuffer_add(out, "{}", 2);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, 200, "OK", NULL);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  struct bench_http server;
  if (bench_http_start(&server, atoi(argv[1]), "floor_http", on_request, EVHTTP_REQ_GET | EVHTTP_REQ_POST) != 0) return 1;
  event_base_dispatch(server.base);
  bench_http_free(&server);
  return 0;
}
