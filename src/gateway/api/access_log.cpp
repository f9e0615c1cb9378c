#include "api/access_log.hpp"

#include <chrono>
#include <string>

#include "boxgate/ids.hpp"
#include "boxgate/logging.hpp"

namespace boxgate::gateway {

namespace {
const char* default_outcome(int status) {
  if (status == 0) return "client_gone";
  if (status < 400) return "ok";
  return "error";
}
}  // namespace

void attach_access_log(http::Exchange& ex, const char* method, const char* endpoint, std::string_view box_segment) {
  auto logger = log::get("access");
  if (!logger->should_log(spdlog::level::info)) return;
  auto box = BoxId::parse(http::percent_decode(box_segment));
  ex.on_end([started = std::chrono::steady_clock::now(), method, endpoint,
             box_id = box ? box->str() : std::string("-")](int status, const std::string& note,
                                                           const std::string& request_id) {
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started);
    std::string outcome = note.empty() ? default_outcome(status) : note;
    const std::string& rid = request_id.empty() ? std::string("-") : request_id;
    log::Fields fields{{"request_id", rid}, {"box_id", box_id}, {"method", method}, {"endpoint", endpoint}};
    fields.add("status", status).add("outcome", outcome).add("duration_ms", static_cast<std::int64_t>(ms.count()));
    log::get("access")->info("{} {} box {} request {}: {} {} in {} ms", method, endpoint, box_id, rid, status,
                             outcome, ms.count());
  });
}

}  // namespace boxgate::gateway
