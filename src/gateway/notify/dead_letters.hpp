#pragma once
// The webhook dead-letter stream and its replay (docs/webhooks.md).
//
// A delivery that failed for its whole retry window is an entry of
// {prefix}/_webhooks/dead: endpoint, webhook_id, type, box, body, error,
// attempts, written_ms, dead_ms (XADD MAXLEN ~ webhook_dead_maxlen). An
// operator inspects it with XRANGE and replays it with
// `boxgate-gateway replay-webhooks [--endpoint NAME]`: each entry (of that
// endpoint) moves to {prefix}/_webhooks/replay -- box = the endpoint,
// name = "<webhook-id> <type>", payload = the body, received_ms = written_ms --
// which every replica's feed of that endpoint reads like its other streams,
// so the replayed delivery has the original id and body, a new signature,
// and a new retry window. The move is XADD then XDEL: a crash between the
// two replays an entry twice, which the receiver's deduplication by
// webhook-id absorbs.
//
// Thread ownership: loop thread only.

#include <cstddef>
#include <functional>
#include <optional>
#include <string>

#include "boxgate/redis/commands.hpp"
#include "boxgate/topics.hpp"

namespace boxgate::gateway {

// Moves the dead letters (of `endpoint`, or all) to the replay stream.
// `done` gets ok=false when Redis failed midway (what moved stays moved).
void replay_dead_letters(redis::Commands& redis, const Topics& topics, std::optional<std::string> endpoint,
                         std::int64_t replay_maxlen, std::function<void(bool ok, std::size_t moved)> done);

}  // namespace boxgate::gateway
