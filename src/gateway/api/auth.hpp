#pragma once
// Auth: who may command which box (docs/security.md, docs/contract.md).
//
// The gateway never holds an API token in plain text. `api_tokens` lists, per
// token, a name (for logs and metrics, never the secret), the SHA-256 of the
// token and a box scope. A caller's bearer token is hashed and compared with
// every configured hash in constant time; its scope then decides the box.
// A scope entry is an exact box id, a prefix pattern `box-*` (every id that
// starts with `box-`), or `*` (every box).
//
// Thread ownership: the parsing functions are pure (any thread). An
// Authorizer is immutable after construction except for its counters, which
// are atomics; the gateway calls it on the loop thread only.

#include <array>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxgate/digest.hpp"
#include "boxgate/ids.hpp"
#include "boxgate/ops/metrics.hpp"

namespace boxgate::gateway {

// A token is known by its SHA-256 (boxgate/digest.hpp).
using TokenHash = digest::Sha256;
using digest::sha256;
using digest::to_hex;
inline std::optional<TokenHash> parse_hex_hash(std::string_view hex) { return digest::parse_sha256_hex(hex); }

// One entry of a token's box scope.
class Scope {
 public:
  // "*", "<prefix>*" (the prefix is the start of a valid id) or a valid id;
  // nullopt otherwise.
  static std::optional<Scope> parse(std::string_view text);
  bool matches(std::string_view box) const noexcept;
  std::string text() const;
  // The one box an exact scope names (nullopt for a pattern).
  std::optional<std::string_view> exact() const noexcept;
  // True when some box matches both.
  bool overlaps(const Scope& other) const noexcept;

 private:
  Scope(std::string fixed, bool prefix) : fixed_(std::move(fixed)), prefix_(prefix) {}
  std::string fixed_;  // the exact id, or the prefix ("" for "*")
  bool prefix_;
};

struct ApiToken {
  std::string name;
  TokenHash hash;
  std::vector<Scope> scopes;

  bool allows(std::string_view box) const noexcept;
  // True when some box matches both `pattern` and this token's scope.
  bool may_allow(const Scope& pattern) const noexcept;
  std::string scope_text() const;  // "box-*|box-7", for the start-up log
};

// True when `name` can name a token: ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$ (safe
// in a log line and a Prometheus label; no ':' or ',', the list separators).
bool is_valid_token_name(std::string_view name) noexcept;

// The tokens of an api_tokens value: "" (none), a comma list of
// name:sha256hex:scope|scope entries, or -- a value without ':' -- the path of
// a JSON file holding an array of {"name":..., "sha256":..., "scopes":[...]}.
// Throws ConfigError("api_tokens", reason); a reason never repeats a hash.
std::vector<ApiToken> parse_api_tokens(const std::string& value);
std::vector<ApiToken> parse_token_list(std::string_view list);
std::vector<ApiToken> parse_token_json(std::string_view text, const std::string& origin);
// True when an api_tokens value names a file rather than listing tokens.
bool names_token_file(std::string_view value) noexcept;

// The token of an Authorization header value "Bearer <token>" (scheme case
// insensitive, RFC 6750 b64token, at most kMaxTokenBytes); nullopt otherwise.
inline constexpr std::size_t kMaxTokenBytes = 512;
std::optional<std::string_view> bearer_token(std::string_view header) noexcept;
// True when `token` is an RFC 6750 b64token of at most kMaxTokenBytes.
bool is_valid_token(std::string_view token) noexcept;

// `boxgate-gateway hash-token`: the SHA-256 (hex) of the token in `input`
// (stdin, one trailing newline stripped), or the problem with it -- a hash is
// never printed for a token that could not be sent as a bearer token.
struct HashedToken {
  std::optional<std::string> hex;
  std::string problem;
};
HashedToken hash_token_input(std::string_view input);

enum class Verdict {
  allowed,        // a valid token whose scope holds the box, or no tokens configured
  missing_token,  // 401: no Authorization header
  invalid_token,  // 401: not "Bearer <token>", or a token that matches no configured hash
  forbidden,      // 403: a valid token whose scope does not hold the box
};

struct Decision {
  Verdict verdict;
  const ApiToken* token;  // the matching token, when there is one
};

class Authorizer {
 public:
  // No tokens: the API is open (every request allowed, nothing counted).
  Authorizer(std::vector<ApiToken> tokens, ops::Metrics& metrics);
  Authorizer(const Authorizer&) = delete;
  Authorizer& operator=(const Authorizer&) = delete;

  bool open() const noexcept { return tokens_.empty(); }
  const std::vector<ApiToken>& tokens() const noexcept { return tokens_; }

  // The one question the HTTP layer asks: may the caller with this
  // Authorization header (nullptr when absent) command `box`? Counts the answer.
  Decision authorize(const char* authorization, const BoxId& box);
  // For a request about no single box (the fleet event stream): is the
  // token valid? The caller then filters by the token's scope. Counts the answer.
  Decision authenticate(const char* authorization);
  // The token alone, before a request's body is read: missing and invalid
  // tokens are counted; an allowed one is counted by the later authorize().
  Decision identify(const char* authorization);

 private:
  const ApiToken* find(std::string_view token) const;

  std::vector<ApiToken> tokens_;
  ops::Counter* missing_ = nullptr;
  ops::Counter* invalid_ = nullptr;
  std::vector<ops::Counter*> forbidden_;  // per token, same order as tokens_
  std::vector<ops::Counter*> allowed_;
};

}  // namespace boxgate::gateway
