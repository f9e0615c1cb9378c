// Unit tests of json::scan: what it accepts and refuses, the top-level "id"
// it reports, depth, documents far deeper than any call stack, and a
// cross-check against nlohmann on a corpus of small documents.

#include "boxgate/json_scan.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <random>
#include <string>
#include <vector>

using namespace boxgate;
using json::Kind;
using json::ScanError;

namespace {

std::string nested(std::size_t levels, const std::string& inner = "") {
  return std::string(levels, '[') + inner + std::string(levels, ']');
}

// The value nlohmann gives a top-level "id", as the oracle for spans and strings.
std::size_t nlohmann_top_level_ids(const std::string& doc) {
  struct Counter : nlohmann::json_sax<nlohmann::json> {
    std::size_t depth = 0, ids = 0;
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(std::size_t) override { return ++depth, true; }
    bool key(string_t& k) override {
      if (depth == 1 && k == "id") ++ids;
      return true;
    }
    bool end_object() override { return --depth, true; }
    bool start_array(std::size_t) override { return ++depth, true; }
    bool end_array() override { return --depth, true; }
    bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }
  } counter;
  nlohmann::json::sax_parse(doc, &counter);
  return counter.ids;
}

}  // namespace

TEST(JsonScan, AcceptsValidDocumentsOfEveryKind) {
  struct Case {
    std::string doc;
    Kind top;
  };
  std::vector<Case> cases{{"{}", Kind::object},
                          {" \t\r\n{ \"a\" : [ 1 , 2 ] }\n ", Kind::object},
                          {"[]", Kind::array},
                          {"[[], {}, [{}]]", Kind::array},
                          {"\"\"", Kind::string},
                          {R"("\"\\\/\b\f\n\r\t\u0000\u00e9\uD83D\uDE00")", Kind::string},
                          {"\"h\xC3\xA9llo \xE2\x9C\x93 \xF0\x9F\x98\x80 \x7F\"", Kind::string},
                          {"0", Kind::number},
                          {"-0", Kind::number},
                          {"-12.5e+3", Kind::number},
                          {"1E-5", Kind::number},
                          {"1e-400", Kind::number},  // underflows to 0: accepted, as by nlohmann
                          {"123456789012345678901234567890", Kind::number},
                          {"1.7976931348623157e308", Kind::number},
                          {"true", Kind::literal},
                          {"false", Kind::literal},
                          {"null", Kind::literal}};
  for (const auto& c : cases) {
    auto r = json::scan(c.doc);
    EXPECT_TRUE(r.ok()) << c.doc << ": " << json::describe(r.error) << " at " << r.error_offset;
    EXPECT_EQ(r.top, c.top) << c.doc;
  }
  EXPECT_EQ(json::scan("  {}").top_offset, 2u);
}

TEST(JsonScan, RefusesInvalidDocumentsWithTheReason) {
  struct Case {
    std::string doc;
    ScanError error;
    std::size_t offset;
  };
  std::vector<Case> cases{
      {"", ScanError::syntax, 0},
      {"  ", ScanError::syntax, 2},
      {"{", ScanError::syntax, 1},
      {"{\"a\"}", ScanError::syntax, 4},
      {"{\"a\":}", ScanError::syntax, 5},
      {"{\"a\":1,}", ScanError::syntax, 7},
      {"{a:1}", ScanError::syntax, 1},
      {"{'a':1}", ScanError::syntax, 1},
      {"[1,]", ScanError::syntax, 3},
      {"[1 2]", ScanError::syntax, 3},
      {"[1}", ScanError::syntax, 2},
      {"{\"a\":1]", ScanError::syntax, 6},
      {"{} {}", ScanError::syntax, 3},
      {"{}x", ScanError::syntax, 2},
      {"tru", ScanError::syntax, 0},
      {"nul", ScanError::syntax, 0},
      {"True", ScanError::syntax, 0},
      {"\xEF\xBB\xBF{}", ScanError::syntax, 0},       // a byte order mark (nlohmann skips it)
      {std::string("{}\0", 3), ScanError::syntax, 2},  // a NUL after the value (nlohmann stops there)
      {"\"abc", ScanError::bad_string, 4},
      {"\"a\tb\"", ScanError::bad_string, 2},
      {std::string("\"a\0b\"", 5), ScanError::bad_string, 2},
      {R"("\x")", ScanError::bad_string, 2},
      {R"("\U0041")", ScanError::bad_string, 2},
      {R"("\u00G0")", ScanError::bad_string, 1},
      {R"("\u00e")", ScanError::bad_string, 1},
      {R"("\ud800")", ScanError::bad_string, 7},         // high surrogate alone
      {R"("\ud800\u0041")", ScanError::bad_string, 7},   // followed by no low surrogate
      {R"("\udc00")", ScanError::bad_string, 1},         // low surrogate alone
      {"\"\xC0\x80\"", ScanError::bad_string, 1},        // overlong NUL
      {"\"\xC1\xBF\"", ScanError::bad_string, 1},        // overlong
      {"\"\xE0\x9F\xBF\"", ScanError::bad_string, 1},    // overlong 3 bytes
      {"\"\xED\xA0\x80\"", ScanError::bad_string, 1},    // encoded surrogate
      {"\"\xF0\x8F\xBF\xBF\"", ScanError::bad_string, 1},  // overlong 4 bytes
      {"\"\xF4\x90\x80\x80\"", ScanError::bad_string, 1},  // above U+10FFFF
      {"\"\xF5\x80\x80\x80\"", ScanError::bad_string, 1},
      {"\"\xFF\"", ScanError::bad_string, 1},
      {"\"\x80\"", ScanError::bad_string, 1},            // lone continuation byte
      {"\"\xC3\"", ScanError::bad_string, 1},            // truncated sequence
      {"\"\xE2\x9C\"", ScanError::bad_string, 1},
      {"01", ScanError::syntax, 1},
      {"-", ScanError::bad_number, 1},
      {"-a", ScanError::bad_number, 1},
      {"1.", ScanError::bad_number, 2},
      {".5", ScanError::syntax, 0},
      {"+1", ScanError::syntax, 0},
      {"1e", ScanError::bad_number, 2},
      {"1e+", ScanError::bad_number, 3},
      {"1e400", ScanError::bad_number, 0},  // overflows a double, as nlohmann refuses
      {"[-1e400]", ScanError::bad_number, 1},
      {"2" + std::string(308, '0'), ScanError::bad_number, 0},
      {"\xC3\xA9", ScanError::syntax, 0},  // UTF-8 outside a string
  };
  for (const auto& c : cases) {
    auto r = json::scan(c.doc);
    EXPECT_EQ(r.error, c.error) << c.doc << ": " << json::describe(r.error);
    EXPECT_EQ(r.error_offset, c.offset) << c.doc;
  }
  EXPECT_TRUE(json::scan("1" + std::string(308, '0')).ok()) << "1e308 spelled out fits a double";
}

TEST(JsonScan, DescribesEveryError) {
  for (auto e : {ScanError::none, ScanError::syntax, ScanError::bad_string, ScanError::bad_number,
                 ScanError::too_deep}) {
    EXPECT_GT(std::string(json::describe(e)).size(), 5u);
  }
}

TEST(JsonScan, ReportsTheTopLevelIdOfEveryType) {
  for (std::string value : {R"("r-1")", "7", "-1.5e3", "true", "false", "null", R"({"id":1,"x":[2]})", "[1,[2]]",
                            "{}", "[]", R"("")"}) {
    std::string doc = R"({"a":1, "id" :  )" + value + R"(  , "b":{"id":2}})";
    auto r = json::scan(doc);
    ASSERT_TRUE(r.ok()) << doc;
    EXPECT_EQ(r.id_count, 1u) << doc;
    EXPECT_EQ(doc.substr(r.id.offset, r.id.size), value) << doc;
    EXPECT_EQ(r.id_string.has_value(), value[0] == '"') << doc;
  }
  auto last = json::scan(R"({"id":{"a":[1]}})");
  EXPECT_EQ(last.id.offset, 6u);
  EXPECT_EQ(last.id.size, 9u);
}

TEST(JsonScan, DecodesTheIdString) {
  EXPECT_EQ(json::scan(R"({"id":"abc"})").id_string, "abc");
  EXPECT_EQ(json::scan(R"({"id":"a\"\\\/\b\f\n\r\t"})").id_string, "a\"\\/\b\f\n\r\t");
  EXPECT_EQ(json::scan(R"({"id":"\u0041\u00e9\u20ac\ud83d\ude00"})").id_string,
            "A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(json::scan(R"({"id":"\u0000"})").id_string, std::string("\0", 1));
  EXPECT_EQ(json::scan("{\"id\":\"h\xC3\xA9\"}").id_string, "h\xC3\xA9");
  std::string long_id(100000, 'x');
  EXPECT_EQ(json::scan(R"({"id":")" + long_id + "\"}").id_string, long_id);
}

TEST(JsonScan, FindsOnlyTopLevelIdKeysAsAParserDecodesThem) {
  EXPECT_EQ(json::scan(R"({"a":{"id":"x"},"b":[{"id":1}]})").id_count, 0u);
  EXPECT_EQ(json::scan(R"([{"id":"x"}])").id_count, 0u);
  EXPECT_EQ(json::scan(R"("id")").id_count, 0u);
  EXPECT_EQ(json::scan(R"({"idx":1,"i":2,"ID":3,"Id":4,"i d":5,"":6})").id_count, 0u);
  EXPECT_EQ(json::scan(R"({"x":"id","y":["id"]})").id_count, 0u) << "values are not keys";
  auto escaped = json::scan(R"({"\u0069\u0064":"e-1"})");
  EXPECT_EQ(escaped.id_count, 1u) << "an escaped key is still \"id\"";
  EXPECT_EQ(escaped.id_string, "e-1");
  EXPECT_EQ(json::scan(R"({"i\u0064":1})").id_count, 1u);
  auto twice = json::scan(R"({"id":"first","a":1,"id":"second"})");
  EXPECT_EQ(twice.id_count, 2u);
  EXPECT_EQ(twice.id_string, "first") << "span and string are the first one's";
  EXPECT_EQ(twice.id.offset, 6u);
}

TEST(JsonScan, DepthLimitCountsOpenContainers) {
  EXPECT_TRUE(json::scan("1", 0).ok());
  EXPECT_EQ(json::scan("{}", 0).error, ScanError::too_deep);
  EXPECT_TRUE(json::scan("{}", 1).ok());
  EXPECT_TRUE(json::scan(R"({"a":[{"b":[]}]})", 4).ok());
  auto over = json::scan(R"({"a":[{"b":[]}]})", 3);
  EXPECT_EQ(over.error, ScanError::too_deep);
  EXPECT_EQ(over.error_offset, 11u) << "the bracket that went over";
  EXPECT_TRUE(json::scan(nested(64), 64).ok());
  EXPECT_EQ(json::scan(nested(65), 64).error, ScanError::too_deep);
  // Siblings do not add up: depth is nesting, not count.
  std::string wide = "[";
  for (int i = 0; i < 1000; ++i) wide += "[[]],";
  wide += "[]]";
  EXPECT_TRUE(json::scan(wide, 3).ok());
}

TEST(JsonScan, DocumentsFarDeeperThanTheCallStackNeverCrash) {
  // Each would overflow the stack of a recursive parser or serialiser.
  for (std::size_t levels : {1000u, 100000u}) {
    SCOPED_TRACE(levels);
    auto arrays = json::scan(nested(levels));
    EXPECT_TRUE(arrays.ok());
    std::string objects;
    for (std::size_t i = 0; i < levels; ++i) objects += "{\"a\":";
    objects += "1" + std::string(levels, '}');
    EXPECT_TRUE(json::scan(objects).ok());
    std::string with_id = R"({"id":)" + nested(levels) + R"(,"x":)" + nested(levels) + "}";
    auto id = json::scan(with_id);
    ASSERT_TRUE(id.ok());
    EXPECT_EQ(id.id_count, 1u);
    EXPECT_EQ(id.id.size, 2 * levels);
    EXPECT_EQ(json::scan(std::string(levels, '[')).error, ScanError::syntax) << "unclosed";
    EXPECT_EQ(json::scan(nested(levels), 64).error, ScanError::too_deep);
  }
  // A million levels: a 2 MB document, 125 KB of nesting stack.
  EXPECT_TRUE(json::scan(nested(1000000)).ok());
}

// The oracle: nlohmann accepts it, minus the two leniencies the scanner does
// not share (a leading BOM, a NUL ending the document early).
// Returns the scan, so a corpus can count what it covered.
json::ScanResult expect_same_verdict(const std::string& doc) {
  bool nlohmann_ok = nlohmann::json::accept(doc);
  bool expected = nlohmann_ok && doc.find('\0') == std::string::npos && doc.rfind("\xEF\xBB\xBF", 0) != 0;
  auto r = json::scan(doc);
  EXPECT_EQ(r.ok(), expected) << "document (" << doc.size() << " bytes): '" << doc << "' nlohmann=" << nlohmann_ok
                              << " scan=" << json::describe(r.error) << " at " << r.error_offset;
  if (!r.ok() || !expected) return r;
  EXPECT_EQ(r.id_count, nlohmann_top_level_ids(doc)) << doc;
  if (r.id_count != 1) return r;
  // The span is exactly the value nlohmann sees, and the string its decoding.
  auto dom = nlohmann::json::parse(doc);
  auto value = nlohmann::json::parse(doc.substr(r.id.offset, r.id.size), nullptr, false);
  EXPECT_EQ(value, dom["id"]) << doc;
  EXPECT_EQ(r.id_string.has_value(), dom["id"].is_string()) << doc;
  if (r.id_string && dom["id"].is_string()) {
    EXPECT_EQ(*r.id_string, dom["id"].get<std::string>()) << doc;
  }
  return r;
}

TEST(JsonScan, AgreesWithNlohmannOnEveryShortDocument) {
  // Every string of up to 4 bytes over an alphabet of JSON's structural and
  // awkward bytes: ~190k documents.
  const std::string alphabet = std::string("{}[]\":,0-1e.t \\u\x80\xC3\xA9") + '\0';
  std::vector<std::string> level{""};
  for (int length = 1; length <= 4; ++length) {
    std::vector<std::string> longer;
    for (const auto& prefix : level) {
      for (char c : alphabet) {
        longer.push_back(prefix + c);
        expect_same_verdict(longer.back());
        if (HasFailure()) return;
      }
    }
    level = std::move(longer);
  }
}

namespace {

// A random valid document of small depth, spelled with awkward spacing,
// escapes and numbers, sometimes with top-level "id" members.
class Generator {
  static constexpr const char* kLiterals[] = {"true", "false", "null"};
  static constexpr const char* kIdKeys[] = {"\"id\"", "\"\\u0069d\"", "\"i\\u0064\""};

 public:
  explicit Generator(std::uint64_t seed) : rng_(seed) {}

  std::string document() {
    std::string out = ws();
    if (pick(4) == 0) {
      value(out, 0);
    } else {
      object(out, 0, true);
    }
    return out + ws();
  }

  // The document with a few bytes inserted, deleted or replaced.
  std::string mutate(std::string doc) {
    static const std::string bytes = "{}[]\":,0123456789-+.eE \\/ubfnrt\x7f\x80\xbf\xc3\xa9\xed\xf0\xf4\xff";
    for (int n = 1 + pick(3); n > 0; --n) {
      std::size_t at = doc.empty() ? 0 : pick(doc.size());
      switch (pick(3)) {
        case 0: doc.insert(doc.begin() + static_cast<std::ptrdiff_t>(at), bytes[pick(bytes.size())]); break;
        case 1: if (!doc.empty()) doc.erase(at, 1); break;
        default: if (!doc.empty()) doc[at] = bytes[pick(bytes.size())]; break;
      }
    }
    return doc;
  }

 private:
  std::size_t pick(std::size_t n) { return std::uniform_int_distribution<std::size_t>(0, n - 1)(rng_); }

  std::string ws() {
    static const char* spaces[] = {"", "", "", " ", "\n", "\t ", "\r\n"};
    return spaces[pick(std::size(spaces))];
  }

  void value(std::string& out, int depth) {
    switch (depth >= 4 ? 2 + pick(4) : pick(6)) {
      case 0: return object(out, depth + 1, false);
      case 1: return array(out, depth + 1);
      case 2: return string(out);
      case 3: return number(out);
      case 4: out += kLiterals[pick(std::size(kLiterals))]; return;
      default: return string(out);
    }
  }

  void object(std::string& out, int depth, bool top) {
    out += "{" + ws();
    for (std::size_t n = pick(4), i = 0; i < n; ++i) {
      if (i) out += ws() + "," + ws();
      if (top && pick(3) == 0) {
        out += kIdKeys[pick(std::size(kIdKeys))];
      } else {
        string(out);
      }
      out += ws() + ":" + ws();
      value(out, depth);
    }
    out += ws() + "}";
  }

  void array(std::string& out, int depth) {
    out += "[" + ws();
    for (std::size_t n = pick(4), i = 0; i < n; ++i) {
      if (i) out += ws() + "," + ws();
      value(out, depth);
    }
    out += ws() + "]";
  }

  void string(std::string& out) {
    static const char* parts[] = {"a", "id", "r-1", " ", "\\\"", "\\\\", "\\/", "\\n", "\\t", "\\u0041",
                                  "\\u00E9", "\\ud83d\\ude00", "\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\x7F"};
    out += "\"";
    for (std::size_t n = pick(4); n > 0; --n) out += parts[pick(std::size(parts))];
    out += "\"";
  }

  void number(std::string& out) {
    static const char* numbers[] = {"0", "-0", "7", "-12", "3.25", "1e3", "-2.5E-7", "1e308", "1.8e308", "1e-400",
                                    "12345678901234567890123", "0.000001"};
    out += numbers[pick(std::size(numbers))];
  }

  std::mt19937_64 rng_;
};

}  // namespace

TEST(JsonScan, AgreesWithNlohmannOnRandomAndMutatedDocuments) {
  Generator gen(20240611);
  int valid = 0, one_id = 0, two_ids = 0, string_id = 0, mutants_valid = 0, mutants_invalid = 0;
  for (int i = 0; i < 20000 && !HasFailure(); ++i) {
    std::string doc = gen.document();
    auto r = expect_same_verdict(doc);
    valid += r.ok();
    one_id += r.id_count == 1;
    two_ids += r.id_count > 1;
    string_id += r.id_string.has_value();
    auto m = expect_same_verdict(gen.mutate(doc));
    (m.ok() ? mutants_valid : mutants_invalid) += 1;
  }
  // The corpus covers what it is meant to (a generator bug would hollow it out).
  EXPECT_GT(valid, 18000);
  EXPECT_GT(one_id, 3000);
  EXPECT_GT(two_ids, 800);
  EXPECT_GT(string_id, 1000);
  EXPECT_GT(mutants_valid, 1000);
  EXPECT_GT(mutants_invalid, 10000);
}
