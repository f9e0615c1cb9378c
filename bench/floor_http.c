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
#include <event2/event.h>
#include <event2/http.h>
#include <event2/buffer.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static void on_request(struct evhttp_request *req, void *arg) {
  (void)arg;
  struct evbuffer *out = evhttp_request_get_output_buffer(req);
  evbuffer_add(out, "{}", 2);
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
  evhttp_send_reply(req, 200, "OK", NULL);
}

static void on_signal(evutil_socket_t sig, short events, void *arg) {
  (void)sig;
  (void)events;
  event_base_loopbreak((struct event_base *)arg);
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s PORT\n", argv[0]);
    return 2;
  }
  int port = atoi(argv[1]);
  signal(SIGPIPE, SIG_IGN);
  struct event_base *base = event_base_new();
  struct evhttp *http = evhttp_new(base);
  evhttp_set_gencb(http, on_request, NULL);
  evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);

  /* evhttp_bind_socket listens with a backlog of 128: bind ourselves, like the daemons. */
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((unsigned short)port);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  struct evconnlistener *listener =
      evconnlistener_new_bind(base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
                              (struct sockaddr *)&sin, sizeof sin);
  if (!listener || !evhttp_bind_listener(http, listener)) {
    fprintf(stderr, "floor_http: cannot listen on 127.0.0.1:%d\n", port);
    return 1;
  }
  struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
  struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
  event_add(term, NULL);
  event_add(intr, NULL);
  fprintf(stderr, "floor_http listening on 127.0.0.1:%d\n", port);
  event_base_dispatch(base);
  event_free(term);
  event_free(intr);
  evhttp_free(http);
  event_base_free(base);
  return 0;
}
