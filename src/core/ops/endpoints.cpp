#include "boxgate/ops/endpoints.hpp"

namespace boxgate::ops {

namespace {
bool reject_non_get(http::Exchange& ex) {
  if (ex.is_get()) return false;
  http::reply_method_not_allowed(ex, "GET");
  return true;
}
}  // namespace

void serve_endpoints(http::Server& server, const Metrics& metrics, const Readiness& readiness) {
  server.route("/healthz", [](http::Exchange ex) {
    if (!reject_non_get(ex)) ex.reply(200, R"({"status":"ok"})");
  });
  server.route("/readyz", [&readiness](http::Exchange ex) {
    if (reject_non_get(ex)) return;
    auto [status, body] = readiness.report();
    ex.reply(status, body);
  });
  server.route("/metrics", [&metrics](http::Exchange ex) {
    if (!reject_non_get(ex)) ex.reply(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8");
  });
}

}  // namespace boxgate::ops
