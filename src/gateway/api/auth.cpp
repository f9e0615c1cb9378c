#include "api/auth.hpp"

#include <algorithm>
#include <fstream>
#include <iterator>
#include <memory>
#include <set>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "boxgate/options.hpp"

namespace boxgate::gateway {

namespace {

constexpr const char* kKey = "api_tokens";

bool is_alnum(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// A token's scopes from "a|b*|*"; `where` names the entry in errors.
std::vector<Scope> parse_scopes(std::string_view text, const std::string& where) {
  std::vector<Scope> scopes;
  while (true) {
    auto bar = text.find('|');
    std::string_view piece = trim(text.substr(0, bar));
    auto scope = Scope::parse(piece);
    if (!scope) {
      throw ConfigError(kKey, where + ": scope '" + std::string(piece.substr(0, 130)) +
                                  "' is not a box id, a prefix pattern such as box-* or *");
    }
    scopes.push_back(std::move(*scope));
    if (bar == std::string_view::npos) return scopes;
    text.remove_prefix(bar + 1);
  }
}

ApiToken make_token(std::string_view name, std::string_view hex, std::vector<Scope> scopes, const std::string& where) {
  if (!is_valid_token_name(name)) {
    throw ConfigError(kKey, where + ": the name must match ^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$");
  }
  auto hash = parse_hex_hash(hex);
  // The value is not repeated: it may be a token pasted by mistake.
  if (!hash) throw ConfigError(kKey, where + " (" + std::string(name) + "): the hash must be 64 hex digits (SHA-256)");
  return {std::string(name), *hash, std::move(scopes)};
}

// Names and hashes must each be unique: a name is what logs and metrics
// show, and two entries with one hash would make the scope ambiguous.
void check_unique(const std::vector<ApiToken>& tokens) {
  std::set<std::string> names;
  std::set<TokenHash> hashes;
  for (const auto& token : tokens) {
    if (!names.insert(token.name).second) throw ConfigError(kKey, "token name '" + token.name + "' is used twice");
    if (!hashes.insert(token.hash).second) {
      throw ConfigError(kKey, "token '" + token.name + "' has the same hash as another token");
    }
  }
}

std::string read_whole_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(kKey, "cannot read token file '" + path + "'");
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// A token entry's own limits: its optional members besides name, sha256 and
// scopes. Any other member is refused (a typo must not silently mean "the
// default").
TokenLimits parse_limits(const nlohmann::json& item, const std::string& where) {
  constexpr std::int64_t kMaxLimit = 10000000;
  TokenLimits limits;
  const std::pair<const char*, std::int64_t*> members[] = {{"max_pending", &limits.max_pending},
                                                           {"max_streams", &limits.max_streams},
                                                           {"rate", &limits.rate},
                                                           {"burst", &limits.burst}};
  for (const auto& entry : item.items()) {
    // Not a structured binding: clang 14 cannot capture one in a lambda.
    const std::string& key = entry.key();
    const nlohmann::json& value = entry.value();
    if (key == "name" || key == "sha256" || key == "scopes") continue;
    auto member = std::find_if(std::begin(members), std::end(members),
                               [&key](const auto& m) { return key == m.first; });
    if (member == std::end(members)) {
      throw ConfigError(kKey, where + ": unknown member '" + key.substr(0, 64) +
                                  "' (known: name, sha256, scopes, max_pending, max_streams, rate, burst)");
    }
    if (!value.is_number_integer() || value.get<std::int64_t>() < 0 || value.get<std::int64_t>() > kMaxLimit) {
      throw ConfigError(kKey, where + ": " + key + " must be an integer from 0 to " + std::to_string(kMaxLimit));
    }
    *member->second = value.get<std::int64_t>();
  }
  if (limits.max_pending == 0 || limits.burst == 0) {
    throw ConfigError(kKey, where + ": max_pending and burst must be at least 1");
  }
  return limits;
}

// b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool is_b64token(std::string_view token) noexcept {
  std::size_t i = 0;
  while (i < token.size() && (is_alnum(token[i]) || token[i] == '-' || token[i] == '.' || token[i] == '_' ||
                              token[i] == '~' || token[i] == '+' || token[i] == '/')) {
    ++i;
  }
  if (i == 0) return false;
  while (i < token.size() && token[i] == '=') ++i;
  return i == token.size();
}

}  // namespace

std::optional<Scope> Scope::parse(std::string_view text) {
  if (text == "*") return Scope("", true);
  if (!text.empty() && text.back() == '*') {
    std::string_view prefix = text.substr(0, text.size() - 1);
    // The prefix of a valid id is itself a valid id (shorter, same alphabet).
    if (!is_valid_id(prefix)) return std::nullopt;
    return Scope(std::string(prefix), true);
  }
  if (!is_valid_id(text)) return std::nullopt;
  return Scope(std::string(text), false);
}

bool Scope::matches(std::string_view box) const noexcept {
  if (prefix_) return box.substr(0, fixed_.size()) == fixed_;
  return box == fixed_;
}

std::string Scope::text() const { return prefix_ ? fixed_ + "*" : fixed_; }

std::optional<std::string_view> Scope::exact() const noexcept {
  if (prefix_) return std::nullopt;
  return fixed_;
}

bool Scope::overlaps(const Scope& other) const noexcept {
  if (!prefix_) return other.matches(fixed_);
  if (!other.prefix_) return matches(other.fixed_);
  return fixed_.starts_with(other.fixed_) || other.fixed_.starts_with(fixed_);
}

bool ApiToken::allows(std::string_view box) const noexcept {
  for (const auto& scope : scopes) {
    if (scope.matches(box)) return true;
  }
  return false;
}

bool ApiToken::may_allow(const Scope& pattern) const noexcept {
  return std::any_of(scopes.begin(), scopes.end(), [&](const Scope& scope) { return scope.overlaps(pattern); });
}

std::string ApiToken::scope_text() const {
  std::string out;
  for (const auto& scope : scopes) {
    if (!out.empty()) out += '|';
    out += scope.text();
  }
  return out;
}

bool is_valid_token_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > 64 || !is_alnum(name[0])) return false;
  for (char c : name) {
    if (!is_alnum(c) && c != '_' && c != '.' && c != '-') return false;
  }
  return true;
}

bool names_token_file(std::string_view value) noexcept {
  return !value.empty() && value.find(':') == std::string_view::npos;
}

std::vector<ApiToken> parse_token_list(std::string_view list) {
  std::vector<ApiToken> tokens;
  std::size_t index = 0;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string_view entry = trim(list.substr(0, comma));
    list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
    if (entry.empty()) continue;  // "a,b," is fine
    ++index;
    const std::string where = "entry " + std::to_string(index);
    auto first = entry.find(':');
    auto second = first == std::string_view::npos ? first : entry.find(':', first + 1);
    if (second == std::string_view::npos) {
      throw ConfigError(kKey, where + ": expected name:sha256hex:scope|scope");
    }
    tokens.push_back(make_token(entry.substr(0, first), entry.substr(first + 1, second - first - 1),
                                parse_scopes(entry.substr(second + 1), where), where));
  }
  check_unique(tokens);
  return tokens;
}

std::vector<ApiToken> parse_token_json(std::string_view text, const std::string& origin) {
  nlohmann::json doc = nlohmann::json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_array()) {
    throw ConfigError(kKey, "'" + origin + "' must hold a JSON array of {\"name\", \"sha256\", \"scopes\"} objects");
  }
  std::vector<ApiToken> tokens;
  for (std::size_t i = 0; i < doc.size(); ++i) {
    const auto& item = doc[i];
    const std::string where = origin + " item " + std::to_string(i + 1);
    if (!item.is_object() || !item.contains("name") || !item["name"].is_string() || !item.contains("sha256") ||
        !item["sha256"].is_string() || !item.contains("scopes") || !item["scopes"].is_array() ||
        item["scopes"].empty()) {
      throw ConfigError(kKey, where + ": expected {\"name\": string, \"sha256\": string, \"scopes\": [string, ...]}");
    }
    std::vector<Scope> scopes;
    for (const auto& scope : item["scopes"]) {
      if (!scope.is_string()) throw ConfigError(kKey, where + ": scopes must be strings");
      auto parsed = Scope::parse(scope.get<std::string>());
      if (!parsed) throw ConfigError(kKey, where + ": a scope is not a box id, a prefix pattern such as box-* or *");
      scopes.push_back(std::move(*parsed));
    }
    ApiToken token = make_token(item["name"].get<std::string>(), item["sha256"].get<std::string>(),
                                std::move(scopes), where);
    token.limits = parse_limits(item, where);
    tokens.push_back(std::move(token));
  }
  check_unique(tokens);
  return tokens;
}

std::vector<ApiToken> parse_api_tokens(const std::string& value) {
  std::string_view spec = trim(value);
  if (spec.empty()) return {};
  if (names_token_file(spec)) {
    const std::string path(spec);
    return parse_token_json(read_whole_file(path), path);
  }
  return parse_token_list(spec);
}

bool is_valid_token(std::string_view token) noexcept { return token.size() <= kMaxTokenBytes && is_b64token(token); }

std::optional<std::string_view> bearer_token(std::string_view header) noexcept {
  constexpr std::string_view scheme = "bearer";
  if (header.size() <= scheme.size() || header[scheme.size()] != ' ') return std::nullopt;
  for (std::size_t i = 0; i < scheme.size(); ++i) {
    char c = header[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != scheme[i]) return std::nullopt;
  }
  std::string_view token = header.substr(scheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  if (!is_valid_token(token)) return std::nullopt;
  return token;
}

HashedToken hash_token_input(std::string_view input) {
  if (!input.empty() && input.back() == '\n') input.remove_suffix(1);
  if (!input.empty() && input.back() == '\r') input.remove_suffix(1);
  if (input.empty()) return {std::nullopt, "no token on stdin"};
  if (!is_valid_token(input)) {
    return {std::nullopt, "a token is 1 to " + std::to_string(kMaxTokenBytes) +
                              " characters of A-Z a-z 0-9 - . _ ~ + / (then optional '=' padding), "
                              "e.g. from `openssl rand -hex 32`"};
  }
  return {to_hex(sha256(input)), {}};
}

Authorizer::Authorizer(std::vector<ApiToken> tokens, ops::Metrics& metrics, TokenLimits defaults)
    : metrics_(metrics), defaults_(defaults) {
  set_ = make_set(std::move(tokens));
}

std::shared_ptr<const Authorizer::TokenSet> Authorizer::make_set(std::vector<ApiToken> tokens) {
  auto set = std::make_shared<TokenSet>();
  set->tokens = std::move(tokens);
  if (set->tokens.empty()) return set;
  const std::string family = "boxgate_auth_failures_total";
  const std::string help = "commands refused by authentication (401) or scope (403)";
  if (!missing_) {
    missing_ = &metrics_.counter(family, help, R"(status="401",reason="missing_token")");
    invalid_ = &metrics_.counter(family, help, R"(status="401",reason="invalid_token")");
  }
  for (auto& token : set->tokens) {
    TokenLimits& l = token.limits;
    if (l.max_pending < 0) l.max_pending = defaults_.max_pending;
    if (l.max_streams < 0) l.max_streams = defaults_.max_streams;
    if (l.rate < 0) l.rate = defaults_.rate;
    if (l.burst < 0) l.burst = defaults_.burst;
    // Names are validated to be label-safe (is_valid_token_name); a name
    // kept across a reload finds its counters again.
    set->forbidden.push_back(
        &metrics_.counter(family, help, R"(status="403",reason="forbidden",token=")" + token.name + "\""));
    set->allowed.push_back(&metrics_.counter("boxgate_auth_allowed_total", "commands let through, by token",
                                             "token=\"" + token.name + "\""));
  }
  return set;
}

void Authorizer::replace(std::vector<ApiToken> tokens) {
  for (auto& token : tokens) {
    for (const auto& old : set_->tokens) {
      if (old.name == token.name) token.usage = old.usage;
    }
  }
  set_ = make_set(std::move(tokens));
}

std::shared_ptr<const ApiToken> Authorizer::token_at(std::size_t index) const {
  // Aliases the set: the token keeps every token of its set alive.
  return std::shared_ptr<const ApiToken>(set_, &set_->tokens[index]);
}

// Every configured hash is compared, whatever matched before: the time taken
// says nothing about which hash (or how much of one) matched. The hash itself
// already hides the token's bytes from timing; this keeps the comparison
// honest too.
std::optional<std::size_t> Authorizer::find(std::string_view token) const {
  const TokenHash presented = sha256(token);
  std::optional<std::size_t> match;
  for (std::size_t i = 0; i < set_->tokens.size(); ++i) {
    bool equal = digest::equal(presented, set_->tokens[i].hash);
    if (equal) match = i;
  }
  return match;
}

// The token alone: missing and invalid ones are counted here; which verdict
// an allowed token's use gets counted under is the caller's.
Decision Authorizer::identify_at(const char* authorization, std::size_t& index) {
  if (open()) return {Verdict::allowed, nullptr};
  if (!authorization) {
    missing_->inc();
    return {Verdict::missing_token, nullptr};
  }
  std::optional<std::string_view> token = bearer_token(authorization);
  std::optional<std::size_t> found = token ? find(*token) : std::nullopt;
  if (!found) {
    invalid_->inc();
    return {Verdict::invalid_token, nullptr};
  }
  index = *found;
  return {Verdict::allowed, token_at(*found)};
}

Decision Authorizer::identify(const char* authorization) {
  std::size_t index = 0;
  return identify_at(authorization, index);
}

Decision Authorizer::authorize(const char* authorization, const BoxId& box) {
  std::size_t index = 0;
  Decision decision = identify_at(authorization, index);
  if (!decision.token) return decision;  // open, or refused
  if (!decision.token->allows(box.view())) {
    set_->forbidden[index]->inc();
    return {Verdict::forbidden, std::move(decision.token)};
  }
  set_->allowed[index]->inc();
  return decision;
}

Decision Authorizer::authenticate(const char* authorization) {
  std::size_t index = 0;
  Decision decision = identify_at(authorization, index);
  if (decision.token) set_->allowed[index]->inc();
  return decision;
}

std::shared_ptr<const ApiToken> Authorizer::peek(const char* authorization) const {
  if (open() || !authorization) return nullptr;
  std::optional<std::string_view> token = bearer_token(authorization);
  std::optional<std::size_t> found = token ? find(*token) : std::nullopt;
  return found ? token_at(*found) : nullptr;
}

}  // namespace boxgate::gateway
