#include "api/openapi.hpp"

#include <string>

namespace boxgate::gateway {

void openapi_document(http::Exchange ex) { ex.reply(200, std::string(openapi_yaml()), "application/yaml"); }

}  // namespace boxgate::gateway
