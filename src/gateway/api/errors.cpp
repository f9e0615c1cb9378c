#include "api/errors.hpp"

#include <nlohmann/json.hpp>

namespace boxgate::gateway {

void reply_error(http::Exchange& ex, int status, const char* code, const std::string& message,
                 const std::string* request_id, const std::string* box_id, std::optional<bool> delivered) {
  ex.set_note(code);  // the access log's outcome
  nlohmann::ordered_json body = {{"error", code}, {"message", message}};
  if (request_id) {
    body["request_id"] = *request_id;
    ex.set_header("X-Request-Id", *request_id);
  }
  if (box_id) body["box_id"] = *box_id;
  if (delivered) body["delivered"] = *delivered;
  if (status == 429 || status == 503) ex.set_header("Retry-After", "1");
  ex.reply(status, body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace));
}

void reply_unauthorized(http::Exchange& ex, bool token_missing, const std::string* request_id,
                        const std::string* box_id) {
  ex.set_header("WWW-Authenticate", token_missing ? "Bearer" : R"(Bearer error="invalid_token")");
  reply_error(ex, 401, "unauthorized",
              token_missing ? "This API needs an Authorization: Bearer <token> header."
                            : "The bearer token is not valid.",
              request_id, box_id);
}

std::string quoted_name(std::string_view raw) {
  std::string out(raw.substr(0, 64));
  for (char& c : out) {
    if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) >= 0x7f) c = '?';
  }
  return out;
}

}  // namespace boxgate::gateway
