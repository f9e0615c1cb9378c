// The bridge's device status payload (bridge::parse_status_payload): a state
// comes out exactly when the payload is the word `online` or `offline`, or,
// read independently (json_oracle.hpp), a JSON object at most 16 levels deep
// and kMaxStatusBytes long with exactly one top-level "online", a boolean --
// and then it is that boolean. No state.

#include <string_view>

#include "json_oracle.hpp"
#include "presence_tracker.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

int status_payload(const std::uint8_t* data, std::size_t size) {
  const std::string_view payload(reinterpret_cast<const char*>(data), size);
  const std::optional<bool> got = bridge::parse_status_payload(payload);

  std::optional<bool> expected;
  if (payload == "online") {
    expected = true;
  } else if (payload == "offline") {
    expected = false;
  } else if (payload.size() <= bridge::kMaxStatusBytes) {
    const JsonFacts facts = json_facts(payload);
    if (facts.valid && facts.object && facts.depth <= 16 && facts.online_count == 1) expected = facts.online;
  }
  check(got == expected, "the state differs from the oracle");
  return 0;
}

}  // namespace boxgate::fuzz
