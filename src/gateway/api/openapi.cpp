#include "api/openapi.hpp"

#include <string>

namespace boxgate::gateway {

void serve_openapi(http::Server& server) {
  server.route("/openapi.yaml", [](http::Exchange ex) {
    if (!ex.is_get()) {
      ex.set_header("Allow", "GET");
      return ex.reply(405, R"({"error":"method_not_allowed","message":"use GET"})");
    }
    ex.reply(200, std::string(openapi_yaml()), "application/yaml");
  });
}

}  // namespace boxgate::gateway
