// API tokens: the scope matcher, the api_tokens formats, the Bearer header
// and the Authorizer (src/gateway/api/auth.hpp). The input is split at its first
// newline into a scope list and a box id candidate.
// - Scope::parse and matches agree with a plain reading of the rules: "*",
//   "<id prefix>*" or an exact id; a prefix matches by leading bytes.
// - A token list parses or throws ConfigError("api_tokens"); what parses
//   rebuilds into a list that parses to the same tokens.
// - bearer_token gives back exactly the token after "Bearer" and spaces.
// - authorize() lets a header through only when its token is one whose hash
//   is configured, and for a box its scope holds.

#include <string>
#include <vector>

#include "api/auth.hpp"
#include "boxgate/options.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

namespace {

using gateway::ApiToken;
using gateway::Scope;

bool oracle_matches(const std::string& scope, const std::string& box) {
  if (scope == "*") return true;
  if (!scope.empty() && scope.back() == '*') {
    std::string prefix = scope.substr(0, scope.size() - 1);
    return is_valid_id(prefix) && box.compare(0, prefix.size(), prefix) == 0;
  }
  return is_valid_id(scope) && box == scope;
}

bool oracle_scope_valid(const std::string& scope) {
  return scope == "*" || (!scope.empty() && scope.back() == '*' && is_valid_id(scope.substr(0, scope.size() - 1))) ||
         is_valid_id(scope);
}

std::vector<std::string> split(const std::string& text, char by) {
  std::vector<std::string> out;
  std::size_t start = 0;
  while (true) {
    std::size_t at = text.find(by, start);
    out.push_back(text.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

void check_scopes(const std::string& list, const std::string& box) {
  bool any = false;
  for (const auto& text : split(list, '|')) {
    auto scope = Scope::parse(text);
    check(scope.has_value() == oracle_scope_valid(text), "Scope::parse differs from the rules");
    if (!scope) continue;
    check(scope->text() == text, "a scope does not print as parsed");
    bool matches = scope->matches(box);
    check(matches == oracle_matches(text, box), "Scope::matches differs from the rules");
    any = any || matches;
  }
  ApiToken token{"t", {}, {}};
  for (const auto& text : split(list, '|')) {
    if (auto scope = Scope::parse(text)) token.scopes.push_back(*scope);
  }
  check(token.allows(box) == any, "ApiToken::allows is not any of its scopes");
}

void check_token_list(const std::string& text) {
  std::vector<ApiToken> tokens;
  try {
    tokens = gateway::parse_token_list(text);
  } catch (const ConfigError& e) {
    check(e.key() == "api_tokens", "a token list error names another key");
    return;
  }
  std::string rebuilt;
  for (const auto& t : tokens) {
    check(gateway::is_valid_token_name(t.name) && !t.scopes.empty(), "a token that should not parse");
    rebuilt += (rebuilt.empty() ? "" : ",") + t.name + ":" + gateway::to_hex(t.hash) + ":" + t.scope_text();
  }
  auto again = gateway::parse_token_list(rebuilt);
  check(again.size() == tokens.size(), "a rebuilt list parses to another count");
  for (std::size_t i = 0; i < again.size(); ++i) {
    check(again[i].name == tokens[i].name && again[i].hash == tokens[i].hash &&
              again[i].scope_text() == tokens[i].scope_text(),
          "a rebuilt list parses to other tokens");
  }
}

void check_authorize(const std::string& header, const std::string& box_text) {
  static ops::Metrics metrics;
  static gateway::Authorizer auth(
      gateway::parse_token_list("a:" + gateway::to_hex(gateway::sha256("tok-a")) + ":box-*|x," +
                                "b:" + gateway::to_hex(gateway::sha256("tok-b")) + ":*"),
      metrics);
  auto box = BoxId::parse(box_text);
  if (!box) box = BoxId::parse("box-1");
  const std::string c_header = header.substr(0, header.find('\0'));  // a header is a C string
  gateway::Decision d = auth.authorize(c_header.c_str(), *box);
  auto token = gateway::bearer_token(c_header);
  bool known = token && (*token == "tok-a" || *token == "tok-b");
  if (d.verdict == gateway::Verdict::allowed || d.verdict == gateway::Verdict::forbidden) {
    check(known && d.token && d.token->name == (*token == "tok-a" ? "a" : "b"), "a token let through that is not one");
    check((d.verdict == gateway::Verdict::allowed) == d.token->allows(box->view()), "verdict differs from the scope");
  } else {
    check(!known, "a known token refused");
  }
  if (token) {
    check(gateway::is_valid_token(*token), "bearer_token gave an invalid token");
    std::string_view rest = std::string_view(c_header).substr(6);
    check(rest.substr(rest.size() - token->size()) == *token, "bearer_token is not the header's tail");
  }
}

}  // namespace

int token_scope(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);
  const std::size_t newline = input.find('\n');
  const std::string scopes = input.substr(0, newline);
  const std::string box = newline == std::string::npos ? "" : input.substr(newline + 1);
  check_scopes(scopes, box);
  check_token_list(input);
  try {
    gateway::parse_token_json(input, "fuzz");
  } catch (const ConfigError& e) {
    check(e.key() == "api_tokens", "a token file error names another key");
  }
  check_authorize(input, box);
  return 0;
}

}  // namespace boxgate::fuzz
