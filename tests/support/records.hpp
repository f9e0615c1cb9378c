#pragma once
// Command records as a gateway writes them (src/gateway/command_record.hpp),
// for tests that plant a stored reply: the gateway replays a reply only when
// a record shows a gateway sent that id with that body.

#include <string>

#include "support/redis.hpp"

namespace boxgate::test {

// The record of a command sent with `body`, accepted now, pending.
std::string record_for(const std::string& box, const std::string& id, const std::string& body,
                       long long timeout_ms = 10000);

// The record and the reply, as if a gateway had sent `body` and the bridge
// had stored the device's `reply`.
void plant_stored_reply(const RedisServer& redis, const std::string& box, const std::string& id,
                        const std::string& body, const std::string& reply, long long px = 60000);

// The record alone, as if a gateway had just published a command under `id`:
// the bridge stores a device's reply only when it exists.
void issue_command(const RedisServer& redis, const std::string& box, const std::string& id, long long px = 60000);

}  // namespace boxgate::test
