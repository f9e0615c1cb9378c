#include "targets.hpp"

namespace boxgate::fuzz {

void check(bool ok, const char* what) {
  if (!ok) throw PropertyViolation(what);
}

const std::vector<Target>& all_targets() {
  static const std::vector<Target> targets = {
      {"ids", &ids},           {"reply_topic", &reply_topic},   {"reply_payload", &reply_payload},
      {"config", &config},     {"command_body", &command_body}, {"token_scope", &token_scope},
      {"json_scan", &json_scan},     {"status_payload", &status_payload},
      {"redis_address", &redis_address},
      {"request_framing", &request_framing},
  };
  return targets;
}

}  // namespace boxgate::fuzz
