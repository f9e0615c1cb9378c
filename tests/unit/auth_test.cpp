// API tokens: hashing, the api_tokens formats, scopes, the Bearer header and
// the Authorizer's verdicts and counters (src/gateway/api/auth.hpp).

#include "api/auth.hpp"

#include <gtest/gtest.h>

#include <fstream>

#include <unistd.h>

#include "boxgate/options.hpp"

using namespace boxgate;
using namespace boxgate::gateway;

namespace {

// echo -n secret-ci | sha256sum
const std::string kCiHash = to_hex(sha256("secret-ci"));
const std::string kOpsHash = to_hex(sha256("secret-ops"));

std::string config_error(const std::string& value) {
  try {
    parse_api_tokens(value);
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.key(), "api_tokens");
    return e.what();
  }
  return "no error";
}

BoxId box(const char* id) { return *BoxId::parse(id); }

}  // namespace

TEST(Auth, Sha256MatchesKnownVectors) {
  EXPECT_EQ(to_hex(sha256("")), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(to_hex(sha256("abc")), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto parsed = parse_hex_hash("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD");
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, sha256("abc"));
  EXPECT_FALSE(parse_hex_hash("ba7816bf"));
  EXPECT_FALSE(parse_hex_hash(std::string(63, 'a') + "g"));
}

TEST(Auth, ScopesAreExactIdsPrefixesOrEverything) {
  auto exact = Scope::parse("box-1");
  auto prefix = Scope::parse("box-*");
  auto all = Scope::parse("*");
  ASSERT_TRUE(exact && prefix && all);
  EXPECT_TRUE(exact->matches("box-1"));
  EXPECT_FALSE(exact->matches("box-10"));
  EXPECT_FALSE(exact->matches("box-"));
  EXPECT_TRUE(prefix->matches("box-10"));
  EXPECT_TRUE(prefix->matches("box-"));
  EXPECT_FALSE(prefix->matches("box"));
  EXPECT_FALSE(prefix->matches("Box-1"));
  EXPECT_TRUE(all->matches("anything"));
  for (const char* bad : {"", "**", "box-**", "*box", "b*x", "-box*", "box/1", "box+", "box#", "a b", "box-1|x"}) {
    EXPECT_FALSE(Scope::parse(bad)) << bad;
  }
  EXPECT_EQ(prefix->text(), "box-*");
  EXPECT_EQ(all->text(), "*");
}

TEST(Auth, InlineListParsesNamesHashesAndScopes) {
  auto tokens = parse_api_tokens(" ci:" + kCiHash + ":box-*|other-7 , ops:" + kOpsHash + ":*,");
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].name, "ci");
  EXPECT_EQ(tokens[0].hash, sha256("secret-ci"));
  EXPECT_EQ(tokens[0].scope_text(), "box-*|other-7");
  EXPECT_TRUE(tokens[0].allows("box-3"));
  EXPECT_TRUE(tokens[0].allows("other-7"));
  EXPECT_FALSE(tokens[0].allows("other-70"));
  EXPECT_TRUE(tokens[1].allows("x"));
  EXPECT_TRUE(parse_api_tokens("").empty());
  EXPECT_TRUE(parse_api_tokens("  ").empty());
}

TEST(Auth, BadEntriesNameTheKeyAndNeverRepeatTheHash) {
  const std::string pasted_token = "this-is-a-token-pasted-by-mistake";
  std::string message = config_error("ci:" + pasted_token + ":*");
  EXPECT_NE(message.find("64 hex digits"), std::string::npos) << message;
  EXPECT_EQ(message.find(pasted_token), std::string::npos) << message;
  EXPECT_NE(config_error("ci:" + kCiHash).find("name:sha256hex:scope"), std::string::npos);
  EXPECT_NE(config_error("c i:" + kCiHash + ":*").find("name"), std::string::npos);
  EXPECT_NE(config_error("ci:" + kCiHash + ":").find("scope"), std::string::npos);
  EXPECT_NE(config_error("ci:" + kCiHash + ":box/1").find("scope"), std::string::npos);
  EXPECT_NE(config_error("ci:" + kCiHash + ":*,ci:" + kOpsHash + ":*").find("twice"), std::string::npos);
  EXPECT_NE(config_error("a:" + kCiHash + ":*,b:" + kCiHash + ":*").find("same hash"), std::string::npos);
  EXPECT_NE(config_error("/no/such/tokens.json").find("cannot read"), std::string::npos);
}

TEST(Auth, JsonFileOfTokens) {
  std::string path = ::testing::TempDir() + "/auth_test_tokens." + std::to_string(::getpid()) + ".json";
  std::ofstream(path) << R"([{"name":"ci","sha256":")" << kCiHash << R"(","scopes":["box-*","x"]},)"
                      << R"({"name":"ops","sha256":")" << kOpsHash << R"(","scopes":["*"]}])";
  ASSERT_TRUE(names_token_file(path));
  auto tokens = parse_api_tokens(path);
  ASSERT_EQ(tokens.size(), 2u);
  EXPECT_EQ(tokens[0].scope_text(), "box-*|x");
  EXPECT_EQ(tokens[1].name, "ops");

  EXPECT_NE(config_error(path + "x").find("cannot read"), std::string::npos);
  auto json_error = [](const std::string& text) {
    try {
      parse_token_json(text, "t.json");
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(json_error("{}").find("array"), std::string::npos);
  EXPECT_NE(json_error(R"([{"name":"ci","sha256":")" + kCiHash + R"(","scopes":[]}])").find("item 1"),
            std::string::npos);
  EXPECT_NE(json_error(R"([{"name":"ci","sha256":")" + kCiHash + R"(","scopes":["*"],"extra":1}])").find("item 1"),
            std::string::npos);
  EXPECT_NE(json_error(R"([{"name":"ci","sha256":")" + kCiHash + R"(","scopes":[7]}])").find("strings"),
            std::string::npos);
}

TEST(Auth, BearerHeaderIsStrict) {
  EXPECT_EQ(bearer_token("Bearer abc").value_or("-"), "abc");
  EXPECT_EQ(bearer_token("bearer  a.b_c-d~e+f/g==").value_or("-"), "a.b_c-d~e+f/g==");
  EXPECT_EQ(bearer_token("BEARER x").value_or("-"), "x");
  for (const char* bad : {"", "Bearer", "Bearer ", "Basic abc", "Bearerabc", "Bearer a b", "Bearer =abc",
                          "Bearer a=b", "Bearer a\tb", "Bearer a\x01", "Bearer \xc3\xa9", "Token abc"}) {
    EXPECT_FALSE(bearer_token(bad)) << bad;
  }
  EXPECT_TRUE(bearer_token("Bearer " + std::string(kMaxTokenBytes, 'a')));
  EXPECT_FALSE(bearer_token("Bearer " + std::string(kMaxTokenBytes + 1, 'a')));
}

TEST(Auth, HashTokenStripsOneNewline) {
  EXPECT_EQ(hash_token_input("secret-ci\n").hex.value_or("-"), kCiHash);
  EXPECT_EQ(hash_token_input("secret-ci\r\n").hex.value_or("-"), kCiHash);
  EXPECT_EQ(hash_token_input("secret-ci").hex.value_or("-"), kCiHash);
  EXPECT_FALSE(hash_token_input("").hex);
  EXPECT_FALSE(hash_token_input("\n").hex);
  EXPECT_FALSE(hash_token_input("secret-ci\n\n").hex);
  EXPECT_FALSE(hash_token_input("two words\n").hex);
}

TEST(Auth, AuthorizerVerdictsAndCounters) {
  ops::Metrics metrics;
  Authorizer auth(parse_api_tokens("ci:" + kCiHash + ":box-*,ops:" + kOpsHash + ":*"), metrics);
  EXPECT_FALSE(auth.open());
  EXPECT_EQ(auth.authorize(nullptr, box("box-1")).verdict, Verdict::missing_token);
  EXPECT_EQ(auth.authorize("Bearer wrong", box("box-1")).verdict, Verdict::invalid_token);
  EXPECT_EQ(auth.authorize("Basic c2VjcmV0LWNp", box("box-1")).verdict, Verdict::invalid_token);
  EXPECT_EQ(auth.authorize(("Bearer " + kCiHash).c_str(), box("box-1")).verdict, Verdict::invalid_token)
      << "the hash itself is not a token";
  Decision ci = auth.authorize("Bearer secret-ci", box("box-1"));
  EXPECT_EQ(ci.verdict, Verdict::allowed);
  ASSERT_NE(ci.token, nullptr);
  EXPECT_EQ(ci.token->name, "ci");
  Decision outside = auth.authorize("Bearer secret-ci", box("other"));
  EXPECT_EQ(outside.verdict, Verdict::forbidden);
  EXPECT_EQ(outside.token->name, "ci");
  EXPECT_EQ(auth.authorize("Bearer secret-ops", box("other")).verdict, Verdict::allowed);

  std::string text = metrics.render();
  EXPECT_NE(text.find(R"(boxgate_auth_failures_total{status="401",reason="missing_token"} 1)"), std::string::npos)
      << text;
  EXPECT_NE(text.find(R"(boxgate_auth_failures_total{status="401",reason="invalid_token"} 3)"), std::string::npos);
  EXPECT_NE(text.find(R"(boxgate_auth_failures_total{status="403",reason="forbidden",token="ci"} 1)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(boxgate_auth_failures_total{status="403",reason="forbidden",token="ops"} 0)"),
            std::string::npos);
  EXPECT_NE(text.find(R"(boxgate_auth_allowed_total{token="ci"} 1)"), std::string::npos);
  EXPECT_NE(text.find(R"(boxgate_auth_allowed_total{token="ops"} 1)"), std::string::npos);
  EXPECT_EQ(text.find("secret"), std::string::npos);
  EXPECT_EQ(text.find(kCiHash), std::string::npos);
}

TEST(Auth, NoTokensMeansOpenAndUncounted) {
  ops::Metrics metrics;
  Authorizer auth({}, metrics);
  EXPECT_TRUE(auth.open());
  EXPECT_EQ(auth.authorize(nullptr, box("box-1")).verdict, Verdict::allowed);
  EXPECT_EQ(metrics.render().find("boxgate_auth"), std::string::npos);
}

TEST(Auth, TokenFileEntriesMaySetTheirOwnLimits) {
  auto tokens = parse_token_json(R"([{"name":"ci","sha256":")" + kCiHash +
                                     R"(","scopes":["*"],"max_pending":3,"rate":0},)"
                                     R"({"name":"ops","sha256":")" + kOpsHash + R"(","scopes":["*"]}])",
                                 "t.json");
  ops::Metrics metrics;
  Authorizer auth(std::move(tokens), metrics, TokenLimits{10, 5, 100, 200});
  const ApiToken& ci = auth.tokens()[0];
  EXPECT_EQ(ci.limits.max_pending, 3);
  EXPECT_EQ(ci.limits.max_streams, 5) << "left out: the default";
  EXPECT_EQ(ci.limits.rate, 0);
  EXPECT_EQ(ci.limits.burst, 200);
  EXPECT_EQ(auth.tokens()[1].limits.max_pending, 10);
  for (const char* bad : {R"("max_pending":0)", R"("burst":0)", R"("rate":-1)", R"("rate":"5")",
                          R"("max_streams":1.5)", R"("rate":99999999999)", R"("max_pendnig":1)"}) {
    SCOPED_TRACE(bad);
    const std::string entry = R"([{"name":"ci","sha256":")" + kCiHash + R"(","scopes":["*"],)" + bad + "}]";
    EXPECT_THROW(parse_token_json(entry, "t.json"), ConfigError);
  }
}

TEST(Auth, SharesAreCountedAndAReloadKeepsAKeptTokensCounts) {
  ops::Metrics metrics;
  Authorizer auth(parse_api_tokens("ci:" + kCiHash + ":*,ops:" + kOpsHash + ":*"), metrics, TokenLimits{2, 1, 0, 1});
  std::shared_ptr<const ApiToken> ci = auth.authenticate("Bearer secret-ci").token;
  ASSERT_NE(ci, nullptr);
  std::optional<TokenSlot> first = ci->take_pending();
  std::optional<TokenSlot> second = ci->take_pending();
  ASSERT_TRUE(first && second);
  EXPECT_FALSE(ci->take_pending()) << "at its share";
  EXPECT_TRUE(auth.authenticate("Bearer secret-ops").token->take_pending()) << "another token's share is its own";
  second.reset();
  std::optional<TokenSlot> again = ci->take_pending();
  EXPECT_TRUE(again) << "a slot given back";

  // ci kept, ops removed: ci's two slots still count; the old token stays valid while held.
  auth.replace(parse_api_tokens("ci:" + kCiHash + ":*"));
  EXPECT_EQ(auth.authenticate("Bearer secret-ops").verdict, Verdict::invalid_token);
  std::shared_ptr<const ApiToken> reloaded = auth.authenticate("Bearer secret-ci").token;
  ASSERT_NE(reloaded, nullptr);
  EXPECT_FALSE(reloaded->take_pending());
  EXPECT_EQ(ci->name, "ci");
  first.reset();
  EXPECT_TRUE(reloaded->take_pending());
}
