/* bench_http.h: the evhttp server setup bench/floor_http.c and
 * bench/webhook_receiver.c share (header only: bench/run builds each with one
 * gcc call).
 *
 * bench_http_start: one evhttp on a new event base, listening on
 * 127.0.0.1:PORT with a backlog of 4096 (evhttp_bind_socket's is 128: bound
 * here, like the daemons), answering through CB the methods in METHODS, and
 * stopping its loop on SIGTERM/SIGINT. 0 on success; -1 after a message on
 * stderr naming NAME. bench_http_free releases it after the loop ended.
 */
#ifndef BENCH_HTTP_H
#define BENCH_HTTP_H

#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

struct bench_http {
  struct event_base *base;
  struct evhttp *http;
  struct event *term, *intr;
};

/* An event callback that ends the loop of the event_base in ARG. */
static void bench_http_stop(evutil_socket_t sig, short events, void *arg) {
  (void)sig;
  (void)events;
  event_base_loopbreak((struct event_base *)arg);
}

static int bench_http_start(struct bench_http *b, int port, const char *name,
                            void (*cb)(struct evhttp_request *, void *), int methods) {
  signal(SIGPIPE, SIG_IGN);
  b->base = event_base_new();
  b->http = evhttp_new(b->base);
  evhttp_set_gencb(b->http, cb, NULL);
  evhttp_set_allowed_methods(b->http, methods);
  struct sockaddr_in sin;
  memset(&sin, 0, sizeof sin);
  sin.sin_family = AF_INET;
  sin.sin_port = htons((unsigned short)port);
  inet_pton(AF_INET, "127.0.0.1", &sin.sin_addr);
  struct evconnlistener *listener =
      evconnlistener_new_bind(b->base, NULL, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 4096,
                              (struct sockaddr *)&sin, sizeof sin);
  if (!listener || !evhttp_bind_listener(b->http, listener)) {
    fprintf(stderr, "%s: cannot listen on 127.0.0.1:%d\n", name, port);
    return -1;
  }
  b->term = evsignal_new(b->base, SIGTERM, bench_http_stop, b->base);
  b->intr = evsignal_new(b->base, SIGINT, bench_http_stop, b->base);
  event_add(b->term, NULL);
  event_add(b->intr, NULL);
  fprintf(stderr, "%s listening on 127.0.0.1:%d\n", name, port);
  return 0;
}

static void bench_http_free(struct bench_http *b) {
  event_free(b->term);
  event_free(b->intr);
  evhttp_free(b->http);
  event_base_free(b->base);
}

#endif
