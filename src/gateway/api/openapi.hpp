#pragma once
// GET /openapi.yaml: docs/openapi.yaml, compiled in (openapi_yaml.cpp.in), so
// the document a gateway serves is the one of its own version. routes.cpp
// serves it with the ops endpoints (no token). Loop thread only.

#include <string_view>

#include "boxgate/http/server.hpp"

namespace boxgate::gateway {

// The text of docs/openapi.yaml this binary was built with.
std::string_view openapi_yaml();

// Answers a GET of the document.
void openapi_document(http::Exchange ex);

}  // namespace boxgate::gateway
