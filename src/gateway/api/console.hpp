#pragma once
// The console: GET /console serves one static page (HTML + JS, no external
// assets, no build step) compiled into the gateway. It uses the public API
// from the browser with relative URLs, so it works wherever the API is
// mounted (behind the shipped nginx too): pick a box, see its presence
// (GET /v1/devices/{id}; "unknown" on 404; its queued count) and state, send
// a command and see the reply or the error (with a ttl: queued, Prefer:
// respond-async), see its queue of commands and cancel one (refreshed on
// Load, after a send or cancel, and every 5 s while the page is visible),
// watch its live events (EventSource). An optional
// token field adds Authorization to its fetch() calls; an EventSource cannot
// send one, so with tokens the event view needs a proxy that adds it.
// Loop thread only; routes.cpp serves it at GET /console.

#include "boxgate/http/server.hpp"

namespace boxgate::gateway {

// Answers a GET of the page.
void console_page(http::Exchange ex);

}  // namespace boxgate::gateway
