// Webhooks without processes (docs/webhooks.md): the endpoint file's
// parser and its messages, which entries an endpoint wants, the delivery
// bodies of each source, the Standard Webhooks signature, and the base64
// the secrets and signatures are written in.

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <nlohmann/json.hpp>

#include "boxgate/digest.hpp"
#include "notify/webhook_endpoints.hpp"
#include "notify/webhook_message.hpp"

using namespace boxgate;
using namespace boxgate::gateway;

namespace {

// whsec_ + base64 of the 32 bytes "0123456789abcdef0123456789abcdef".
constexpr const char* kWebhookSecret = "whsec_MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

nlohmann::json good_endpoint(const std::string& name = "billing") {
  return {{"name", name},
          {"url", "https://hooks.example.com/boxgate"},
          {"secret", kWebhookSecret},
          {"kinds", {"command.succeeded"}}};
}

std::string file_of(const std::vector<nlohmann::json>& endpoints) {
  return nlohmann::json{{"endpoints", nlohmann::json(endpoints)}}.dump();
}

// The WebhookConfigError's message, "" when the text parses. Any other
// exception escapes and fails the test: callers catch only this one.
std::string webhook_refusal(const std::string& text, const std::string& base_dir = ".") {
  try {
    parse_webhook_endpoints(text, base_dir);
  } catch (const WebhookConfigError& e) {
    return e.what();
  }
  return "";
}

std::string webhook_refusal_of(const nlohmann::json& endpoint) { return webhook_refusal(file_of({endpoint})); }

TEST(WebhookEndpoints, AFullFileParsesWithEveryField) {
  std::string dir = ::testing::TempDir() + "/webhook_test." + std::to_string(::getpid());
  std::filesystem::create_directories(dir + "/secrets");
  std::ofstream(dir + "/secrets/ops.whsec") << "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYX\n";  // 24 bytes 0..23
  nlohmann::json ops = {{"name", "fleet-ops"},
                        {"url", "http://127.0.0.1:9000/hook"},
                        {"secret_file", "secrets/ops.whsec"},
                        {"kinds", {"device.*", "event.alarm", "command.*"}},
                        {"boxes", "site7-*"},
                        {"max_in_flight", 8},
                        {"allow_http", true}};
  auto endpoints = parse_webhook_endpoints(file_of({good_endpoint(), ops}), dir);
  ASSERT_EQ(endpoints.size(), 2u);
  const WebhookEndpoint& billing = endpoints[0];
  EXPECT_EQ(billing.name, "billing");
  EXPECT_EQ(billing.url, "https://hooks.example.com/boxgate");
  EXPECT_EQ(billing.secret, "0123456789abcdef0123456789abcdef") << "the key is the base64 after whsec_, decoded";
  EXPECT_EQ(billing.kinds, std::vector<std::string>{"command.succeeded"});
  EXPECT_EQ(billing.boxes.text(), "*");
  EXPECT_EQ(billing.max_in_flight, 0u) << "0: the gateway's webhook_max_in_flight";
  const WebhookEndpoint& fleet = endpoints[1];
  EXPECT_EQ(fleet.url, "http://127.0.0.1:9000/hook");
  std::string key;
  for (char c = 0; c < 24; ++c) key.push_back(c);
  EXPECT_EQ(fleet.secret, key) << "secret_file, relative to the file's folder, its newline ignored";
  EXPECT_EQ(fleet.boxes.text(), "site7-*");
  EXPECT_EQ(fleet.max_in_flight, 8u);
  EXPECT_TRUE(parse_webhook_endpoints(R"({"endpoints":[]})").empty());
  std::filesystem::remove_all(dir);
}

TEST(WebhookEndpoints, EachBadFieldIsRefusedNamingTheEndpointAndField) {
  auto with = [](const char* key, nlohmann::json value) {
    nlohmann::json e = good_endpoint();
    e[key] = std::move(value);
    return webhook_refusal_of(e);
  };
  auto secret_file = [](const char* path) {
    nlohmann::json e = good_endpoint();
    e.erase("secret");
    e["secret_file"] = path;
    return webhook_refusal_of(e);
  };
  auto without = [](const char* key) {
    nlohmann::json e = good_endpoint();
    e.erase(key);
    return webhook_refusal_of(e);
  };
  struct Case {
    std::string why, error, expected;
  };
  const Case cases[] = {
      {"http without allow_http", with("url", "http://127.0.0.1:9000/hook"),
       "endpoint 'billing': an http:// url needs \"allow_http\": true"},
      {"allow_http not a boolean", with("allow_http", "yes"), "endpoint 'billing': allow_http must be true or false"},
      {"another scheme", with("url", "ftp://hooks.example.com/x"), "endpoint 'billing': the url must start with https://"},
      {"whitespace in the url", with("url", "https://hooks.example.com/a b"), "endpoint 'billing': the url is malformed"},
      {"no url", without("url"), "endpoint 'billing': needs a url"},
      {"an unknown state", with("kinds", {"command.done"}), "endpoint 'billing': kind \"command.done\" is not"},
      {"a pattern that is not a family wildcard", with("kinds", {"event.alarm*"}),
       "endpoint 'billing': kind \"event.alarm*\" is not"},
      {"an unknown family", with("kinds", {"box.online"}), "endpoint 'billing': kind \"box.online\" is not"},
      {"no kinds", with("kinds", nlohmann::json::array()), "endpoint 'billing': needs a list of kinds"},
      {"no secret", without("secret"), "endpoint 'billing': needs exactly one of secret and secret_file"},
      {"secret and secret_file", with("secret_file", "x.whsec"),
       "endpoint 'billing': needs exactly one of secret and secret_file"},
      {"a short secret (16 bytes)", with("secret", "whsec_MDEyMzQ1Njc4OWFiY2RlZg=="),
       "endpoint 'billing': the secret must be whsec_ and base64 of 24 to 64 random bytes"},
      {"a secret that is not base64", with("secret", "whsec_not base64 at all!"),
       "endpoint 'billing': the secret must be whsec_ and base64"},
      {"a secret without whsec_", with("secret", "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="),
       "endpoint 'billing': the secret must start with whsec_"},
      {"a missing secret_file", secret_file("/nonexistent/webhook.whsec"),
       "endpoint 'billing': cannot read /nonexistent/webhook.whsec"},
      {"a bad box pattern", with("boxes", "site*7"), "endpoint 'billing': boxes must be"},
      {"boxes not a string", with("boxes", 7), "endpoint 'billing': boxes must be"},
      {"max_in_flight 0", with("max_in_flight", 0), "endpoint 'billing': max_in_flight must be 1..1024"},
      {"max_in_flight negative", with("max_in_flight", -1), "endpoint 'billing': max_in_flight must be 1..1024"},
      {"an unknown field", with("retries", 3), "endpoint 'billing': unknown field retries"},
      {"a bad name", with("name", "bad name"), "endpoint 0: needs a name matching the id pattern"},
  };
  for (const Case& c : cases) {
    EXPECT_TRUE(c.error.starts_with(c.expected)) << c.why << ": " << c.error;
  }
}

TEST(WebhookEndpoints, FileLevelMistakesAreRefused) {
  EXPECT_EQ(webhook_refusal(file_of({good_endpoint(), good_endpoint()})), "endpoint 'billing': the name is used twice");
  std::string deep = R"({"endpoints":[)" + std::string(20, '[') + std::string(20, ']') + "]}";
  EXPECT_EQ(webhook_refusal(deep), "file: not valid JSON (or nested deeper than 16)");
  EXPECT_EQ(webhook_refusal("{not json"), "file: not valid JSON (or nested deeper than 16)");
  EXPECT_EQ(webhook_refusal(R"({"hooks":[]})"), "file: must be an object with an \"endpoints\" list");
  std::vector<nlohmann::json> many;
  for (int i = 0; i < 65; ++i) many.push_back(good_endpoint("e" + std::to_string(i)));
  EXPECT_EQ(webhook_refusal(file_of(many)), "file: at most 64 endpoints");
  EXPECT_EQ(webhook_refusal(R"({"endpoints":[7]})"), "endpoint 0: must be an object");
}

TEST(WebhookEndpoints, WantsKindsWildcardsAndTheBoxPattern) {
  nlohmann::json e = good_endpoint();
  e["kinds"] = {"command.succeeded", "device.*", "event.alarm"};
  e["boxes"] = "site7-*";
  WebhookEndpoint w = parse_webhook_endpoints(file_of({e}))[0];
  EXPECT_TRUE(w.wants("command.succeeded", "site7-a"));
  EXPECT_FALSE(w.wants("command.pending", "site7-a")) << "only the state named";
  EXPECT_TRUE(w.wants("device.online", "site7-a"));
  EXPECT_TRUE(w.wants("device.offline", "site7-b")) << "device.* takes both";
  EXPECT_TRUE(w.wants("event.alarm", "site7-a"));
  EXPECT_FALSE(w.wants("event.alarm2", "site7-a")) << "an exact name is not a prefix";
  EXPECT_FALSE(w.wants("event.heartbeat", "site7-a"));
  EXPECT_FALSE(w.wants("command.succeeded", "site8-a")) << "outside the box pattern";
  EXPECT_FALSE(w.wants("device.online", "site7"));

  e["kinds"] = {"command.*", "event.*"};
  e["boxes"] = "box-1";
  w = parse_webhook_endpoints(file_of({e}))[0];
  for (const char* kind : {"command.queued", "command.pending", "command.succeeded", "command.timed_out",
                           "command.expired", "command.cancelled", "event.alarm", "event.a.b:c"}) {
    EXPECT_TRUE(w.wants(kind, "box-1")) << kind;
  }
  EXPECT_FALSE(w.wants("device.online", "box-1"));
  EXPECT_FALSE(w.wants("command.succeeded", "box-10")) << "an exact box is not a prefix";
  EXPECT_TRUE(w.reads(WebhookSource::commands));
  EXPECT_FALSE(w.reads(WebhookSource::presence));
  EXPECT_TRUE(w.reads(WebhookSource::events));
  EXPECT_TRUE(w.reads(WebhookSource::replay)) << "every endpoint reads its replays";
}

redis::StoredEvent stored_entry(std::string id, std::string box, std::string name, std::string payload,
                         std::string received_ms) {
  return {std::move(id), std::move(box), std::move(name), std::move(payload), std::move(received_ms)};
}

TEST(WebhookMessage, ACommandOutcome) {
  auto e = stored_entry("1796677200123-0", "box-1", "succeeded",
                 R"({"request_id":"r-1","box":"box-1","state":"succeeded","at_ms":1796677200123,"late":false})",
                 "1796677200123");
  ASSERT_EQ(webhook_kind(WebhookSource::commands, e), "command.succeeded");
  WebhookMessage m = webhook_message(WebhookSource::commands, e, "command.succeeded");
  EXPECT_EQ(m.id, "commands-1796677200123-0");
  EXPECT_EQ(m.kind, "command.succeeded");
  EXPECT_EQ(m.box, "box-1");
  EXPECT_EQ(m.written_ms, 1796677200123);
  EXPECT_EQ(m.body,
            R"({"type":"command.succeeded","timestamp":"2026-12-07T21:00:00.123Z","stream":"commands",)"
            R"("stream_id":"1796677200123-0","data":{"request_id":"r-1","box":"box-1","state":"succeeded",)"
            R"("at_ms":1796677200123,"late":false}})");
}

TEST(WebhookMessage, APresenceChange) {
  auto e = stored_entry("1796677205456-3", "site7-a", "offline", R"({"box":"site7-a","online":false,"at_ms":1796677205456})",
                 "1796677205456");
  ASSERT_EQ(webhook_kind(WebhookSource::presence, e), "device.offline");
  EXPECT_EQ(webhook_kind(WebhookSource::presence, stored_entry("1-0", "b", "sleeping", "{}", "1")), std::nullopt)
      << "not a presence change";
  WebhookMessage m = webhook_message(WebhookSource::presence, e, "device.offline");
  EXPECT_EQ(m.id, "presence-1796677205456-3");
  auto body = nlohmann::json::parse(m.body);
  EXPECT_EQ(body["type"], "device.offline");
  EXPECT_EQ(body["timestamp"], "2026-12-07T21:00:05.456Z");
  EXPECT_EQ(body["stream"], "presence");
  EXPECT_EQ(body["data"], nlohmann::json::parse(e.payload));
}

TEST(WebhookMessage, AnEventsJsonPayloadStaysJson) {
  auto e = stored_entry("1796677207890-0", "site7-a", "alarm", R"({"level":3,"tags":["a","b"]})", "1796677207890");
  ASSERT_EQ(webhook_kind(WebhookSource::events, e), "event.alarm");
  WebhookMessage m = webhook_message(WebhookSource::events, e, "event.alarm");
  EXPECT_EQ(m.id, "events-1796677207890-0");
  EXPECT_EQ(m.body,
            R"({"type":"event.alarm","timestamp":"2026-12-07T21:00:07.890Z","stream":"events",)"
            R"("stream_id":"1796677207890-0","data":{"box":"site7-a","name":"alarm",)"
            R"("payload":{"level":3,"tags":["a","b"]},"received_ms":1796677207890}})");
  auto number = webhook_message(WebhookSource::events, stored_entry("1-0", "b", "n", "42", "5"), "event.n");
  EXPECT_EQ(nlohmann::json::parse(number.body)["data"]["payload"], 42);
}

TEST(WebhookMessage, ANonJsonPayloadBecomesAStringAndInvalidUtf8IsReplaced) {
  auto text = webhook_message(WebhookSource::events, stored_entry("1-0", "b", "log", "boot \"ok\"\n", "5"), "event.log");
  EXPECT_EQ(nlohmann::json::parse(text.body)["data"]["payload"], "boot \"ok\"\n");
  auto broken = webhook_message(WebhookSource::events, stored_entry("1-0", "b", "log", "a\xff" "b\x01", "5"), "event.log");
  auto body = nlohmann::json::parse(broken.body);  // valid JSON, valid UTF-8
  EXPECT_EQ(body["data"]["payload"], "a\xEF\xBF\xBD" "b\x01") << "U+FFFD for the byte that is not UTF-8";
  auto half = webhook_message(WebhookSource::events, stored_entry("1-0", "b", "log", R"({"a":)", ""), "event.log");
  body = nlohmann::json::parse(half.body);
  EXPECT_EQ(body["data"]["payload"], R"({"a":)") << "not a JSON text: a string";
  EXPECT_TRUE(body["data"]["received_ms"].is_null()) << "no received_ms: null";
}

// The expected values were computed independently of boxgate, with Python's
// standard library when this test was written:
//   base64.b64encode(hmac.new(key, f"{id}.{ts}.".encode() + body, hashlib.sha256).digest())
TEST(WebhookSignature, MatchesAnIndependentHmacSha256) {
  EXPECT_EQ(webhook_signature("0123456789abcdef0123456789abcdef", "commands-1796677200123-0", 1796677200,
                              R"({"type":"command.succeeded"})"),
            "v1,R1DzFpg1YYKPMshvrMaIrkWw34pL/EuDlXkqjBNvwB0=");
  std::string key;  // bytes 0..23: base64 AAECAwQFBgcICQoLDA0ODxAREhMUFRYX
  for (char c = 0; c < 24; ++c) key.push_back(c);
  EXPECT_EQ(webhook_signature(key, "events-1-0", 0, ""), "v1,TYDm+6Ru0YEEM9tYayGehfHy/iRKsYodHBzCP0HK7+E=");
  EXPECT_NE(webhook_signature(key, "events-1-0", 1, ""), webhook_signature(key, "events-1-0", 0, ""))
      << "the timestamp is signed";
}

TEST(WebhookBase64, RoundTripsRfc4648VectorsAndEveryByte) {
  const std::pair<std::string, std::string> vectors[] = {{"", ""},         {"f", "Zg=="},         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"}, {"foob", "Zm9vYg=="}, {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(digest::base64(plain), encoded);
    EXPECT_EQ(digest::from_base64(encoded), plain) << encoded;
  }
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (std::size_t n = 0; n <= all.size(); n += 37) {
    std::string part = all.substr(0, n);
    EXPECT_EQ(digest::from_base64(digest::base64(part)), part) << n;
  }
}

TEST(WebhookBase64, RejectsWhatIsNotPaddedStandardBase64) {
  for (const char* text : {"Zg", "Zg=", "Zm9vY", "Zm9v!", "Zm 9", "Zm-_", "Zm9v\n", "Z===", "====", "=Zm9", "Zm=v",
                           "Zg==Zg==", "Zm9vYg=a"}) {
    EXPECT_EQ(digest::from_base64(text), std::nullopt) << text;
  }
}

}  // namespace
