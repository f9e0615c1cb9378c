#include "support/records.hpp"

#include "commands/command_record.hpp"

namespace boxgate::test {

std::string record_for(const std::string& box, const std::string& id, const std::string& body,
                       long long timeout_ms) {
  gateway::CommandRecord r;
  r.box_id = box;
  r.request_id = id;
  r.body_sha256 = gateway::body_sha256(body);
  r.accepted_ms = gateway::now_ms();
  r.deadline_ms = r.accepted_ms + timeout_ms;
  r.gateway = "test";
  return r.to_json();
}

void plant_stored_reply(const RedisServer& redis, const std::string& box, const std::string& id,
                        const std::string& body, const std::string& reply, long long px) {
  redis.set("dev/" + box + "/command/" + id, record_for(box, id, body), px);
  redis.set("dev/" + box + "/response/" + id, reply, px);
}

void issue_command(const RedisServer& redis, const std::string& box, const std::string& id, long long px) {
  redis.set("dev/" + box + "/command/" + id, record_for(box, id, "{}"), px);
}

}  // namespace boxgate::test
