#pragma once
// The fuzz targets: one function per parser that meets
// bytes nobody vouches for. Each takes one input, runs the code under test
// and checks properties an independent oracle gives; a violated property
// throws PropertyViolation (libFuzzer reports the uncaught exception as a
// crash and saves the input).
//
// The same functions serve two drivers: libfuzzer_main.cpp (clang,
// scripts/fuzz) and the unit test tests/unit/fuzz_corpus_test.cpp, which
// replays every file of tests/fuzz/corpus/<target>/ -- the seeds and each
// crash ever found -- in the ordinary builds, so a crash stays fixed.
//
// Thread ownership: a target may keep state between calls (function-local
// statics, e.g. the bridge's event loop); call them from one thread.

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace boxgate::fuzz {

class PropertyViolation : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

// Throws PropertyViolation("<what>") unless `ok`.
void check(bool ok, const char* what);

// is_valid_id, BoxId/RequestId parsing, http::percent_decode, http::split_query.
int ids(const std::uint8_t* data, std::size_t size);
// Topics::parse_reply_topic and parse_request_topic.
int reply_topic(const std::uint8_t* data, std::size_t size);
// The bridge's id-from-payload, through ReplyForwarder::accept.
int reply_payload(const std::uint8_t* data, std::size_t size);
// Options: a JSON config file or flags, for the gateway and the bridge.
int config(const std::uint8_t* data, std::size_t size);
// gateway::command_payload: the id spliced into a command body.
int command_body(const std::uint8_t* data, std::size_t size);
// API tokens: scopes, the api_tokens formats, the Bearer header, authorize().
int token_scope(const std::uint8_t* data, std::size_t size);
// json::scan against nlohmann (and the splice), the first target.
int json_scan(const std::uint8_t* data, std::size_t size);
// The bridge's device status payload (bridge::parse_status_payload).
int status_payload(const std::uint8_t* data, std::size_t size);
// Redis addresses (config and slot_map), MOVED/ASK errors, key_slot.
int redis_address(const std::uint8_t* data, std::size_t size);
// http::RequestFraming against a whole-buffer model of the same grammar.
int request_framing(const std::uint8_t* data, std::size_t size);

struct Target {
  const char* name;  // also the corpus directory and the executable <name>_fuzz
  int (*run)(const std::uint8_t*, std::size_t);
};
const std::vector<Target>& all_targets();

}  // namespace boxgate::fuzz
