#include "boxgate/json_scan.hpp"

#include <locale.h>
#include <stdlib.h>

#include <cmath>
#include <cstdint>
#include <vector>

namespace boxgate::json {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_digit(char c) {
  if (is_digit(c)) return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Where decoded string bytes go. A cap keeps a long key from being copied
// just to learn that it is not "id"; past the cap the scan only validates.
struct Sink {
  std::string* text = nullptr;
  std::size_t cap = std::string::npos;
  bool complete = true;

  void put(std::string_view bytes) {
    if (!text) return;
    if (text->size() + bytes.size() > cap) {
      complete = false;
      return;
    }
    text->append(bytes);
  }
  void put(char c) { put(std::string_view(&c, 1)); }
};

// The length of the well-formed UTF-8 sequence that starts `s` (Unicode
// table 3-7, the rule nlohmann applies), or 0 when it is ill-formed.
std::size_t utf8_sequence(std::string_view s) {
  auto byte = [&](std::size_t i) -> unsigned { return i < s.size() ? static_cast<unsigned char>(s[i]) : 0u; };
  auto tail = [&](std::size_t i, unsigned lo = 0x80, unsigned hi = 0xBF) { return byte(i) >= lo && byte(i) <= hi; };
  unsigned lead = byte(0);
  if (lead >= 0xC2 && lead <= 0xDF) return tail(1) ? 2 : 0;
  if (lead == 0xE0) return tail(1, 0xA0) && tail(2) ? 3 : 0;
  if (lead == 0xED) return tail(1, 0x80, 0x9F) && tail(2) ? 3 : 0;  // not a surrogate
  if (lead >= 0xE1 && lead <= 0xEF) return tail(1) && tail(2) ? 3 : 0;
  if (lead == 0xF0) return tail(1, 0x90) && tail(2) && tail(3) ? 4 : 0;
  if (lead >= 0xF1 && lead <= 0xF3) return tail(1) && tail(2) && tail(3) ? 4 : 0;
  if (lead == 0xF4) return tail(1, 0x80, 0x8F) && tail(2) && tail(3) ? 4 : 0;  // at most U+10FFFF
  return 0;
}

void append_utf8(Sink& out, std::uint32_t cp) {
  char buf[4];
  std::size_t n;
  if (cp < 0x80) {
    buf[0] = static_cast<char>(cp);
    n = 1;
  } else if (cp < 0x800) {
    buf[0] = static_cast<char>(0xC0 | (cp >> 6));
    buf[1] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    buf[0] = static_cast<char>(0xE0 | (cp >> 12));
    buf[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    buf[2] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    buf[0] = static_cast<char>(0xF0 | (cp >> 18));
    buf[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    buf[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    buf[3] = static_cast<char>(0x80 | (cp & 0x3F));
    n = 4;
  }
  out.put(std::string_view(buf, n));
}

// True when the number token is within the range of a double. nlohmann reads
// numbers with strtod and refuses an infinite result; this is the same test,
// in the "C" locale whatever the process's locale is (nlohmann swaps in the
// locale's decimal point to get the same effect).
bool fits_double(std::string_view token) {
  static const locale_t c_locale = newlocale(LC_ALL_MASK, "C", locale_t{});
  std::string text(token);
  return std::isfinite(strtod_l(text.c_str(), nullptr, c_locale));
}

// A number with fewer integer digits and no exponent is always finite, so the
// strtod above runs only for the rare tokens that could overflow.
constexpr std::size_t kDigitsThatMayOverflow = 309;  // DBL_MAX is about 1.8e308

class Scanner {
 public:
  Scanner(std::string_view in, std::size_t max_depth) : in_(in), max_depth_(max_depth) {}

  ScanResult run() {
    skip_ws();
    result_.top_offset = pos_;
    document();  // records any error in result_
    return std::move(result_);
  }

 private:
  // What the scanner expects at pos_. One loop over these states walks the
  // whole document; nesting lives in stack_, never in the call stack.
  enum class Next { value, first_member, first_element, after_value };

  bool document() {
    Next next = Next::value;
    for (;;) {
      switch (next) {
        case Next::value:
          if (!value(next)) return false;
          break;
        case Next::first_member:
          skip_ws();
          if (peek() == '}') {
            ++pos_;
            stack_.pop_back();
            next = Next::after_value;
          } else {
            if (!key()) return false;
            next = Next::value;
          }
          break;
        case Next::first_element:
          skip_ws();
          if (peek() == ']') {
            ++pos_;
            stack_.pop_back();
            next = Next::after_value;
          } else {
            next = Next::value;
          }
          break;
        case Next::after_value:
          if (stack_.empty()) return end_of_document();
          if (!after_value(next)) return false;
          break;
      }
    }
  }

  // At the start of a value: a scalar is consumed whole; a container is
  // opened and `next` says what may follow its opening bracket.
  bool value(Next& next) {
    skip_ws();
    bool is_id = id_next_;
    id_next_ = false;
    if (is_id) begin_id();
    Kind kind = kind_at(peek());
    if (!started_) {
      started_ = true;
      result_.top = kind;
    }
    next = Next::after_value;
    switch (kind) {
      case Kind::object:
        next = Next::first_member;
        return open(true);
      case Kind::array:
        next = Next::first_element;
        return open(false);
      case Kind::string: return string_value(is_id && result_.id_count == 1);
      case Kind::number: return number();
      case Kind::literal: return literal();
    }
    return fail(ScanError::syntax);
  }

  // The kind of value a byte starts (literal for anything else: literal()
  // then refuses what is not true, false or null).
  static Kind kind_at(char c) {
    if (c == '{') return Kind::object;
    if (c == '[') return Kind::array;
    if (c == '"') return Kind::string;
    if (c == '-' || is_digit(c)) return Kind::number;
    return Kind::literal;
  }

  // After a complete value inside a container: a separator, or the end of
  // one or more containers.
  bool after_value(Next& next) {
    end_id_if_complete();
    skip_ws();
    bool in_object = stack_.back();
    char c = peek();
    if (c == ',') {
      ++pos_;
      if (in_object && !key()) return false;
      next = Next::value;
      return true;
    }
    if (c == (in_object ? '}' : ']')) {
      ++pos_;
      stack_.pop_back();
      next = Next::after_value;
      return true;
    }
    return fail(ScanError::syntax);
  }

  bool end_of_document() {
    skip_ws();
    return pos_ == in_.size() || fail(ScanError::syntax);
  }

  bool open(bool object) {
    if (stack_.size() >= max_depth_) return fail(ScanError::too_deep);
    stack_.push_back(object);
    ++pos_;
    return true;
  }

  // A member's key and its colon. Keys of the top-level object are decoded
  // (at most 2 bytes: anything longer is not "id") to find the "id" member.
  bool key() {
    skip_ws();
    if (peek() != '"') return fail(ScanError::syntax);
    std::string decoded;
    bool top_level = stack_.size() == 1;
    Sink sink{top_level ? &decoded : nullptr, 2};
    if (!string(sink)) return false;
    skip_ws();
    if (peek() != ':') return fail(ScanError::syntax);
    ++pos_;
    id_next_ = top_level && sink.complete && decoded == "id";
    return true;
  }

  void begin_id() {
    ++result_.id_count;
    if (result_.id_count > 1) return;  // the span and string are the first one's
    result_.id.offset = pos_;
    capturing_id_ = true;
  }

  // The "id" value is complete when the scan is back in the top-level object.
  void end_id_if_complete() {
    if (!capturing_id_ || stack_.size() != 1) return;
    result_.id.size = pos_ - result_.id.offset;
    capturing_id_ = false;
  }

  bool string_value(bool decode) {
    if (!decode) {
      Sink none;
      return string(none);
    }
    std::string text;
    Sink sink{&text};
    if (!string(sink)) return false;
    result_.id_string = std::move(text);
    return true;
  }

  // At the opening quote of a string; on success pos_ is past the closing one.
  bool string(Sink& out) {
    ++pos_;
    for (;;) {
      if (pos_ >= in_.size()) return fail(ScanError::bad_string);
      char c = in_[pos_];
      auto byte = static_cast<unsigned char>(c);
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (c == '\\') {
        if (!escape(out)) return false;
      } else if (byte < 0x20) {
        return fail(ScanError::bad_string);
      } else if (byte < 0x80) {
        out.put(c);
        ++pos_;
      } else {
        std::size_t n = utf8_sequence(in_.substr(pos_));
        if (n == 0) return fail(ScanError::bad_string);
        out.put(in_.substr(pos_, n));
        pos_ += n;
      }
    }
  }

  // At a backslash inside a string.
  bool escape(Sink& out) {
    char c = at(pos_ + 1);
    const char* plain = "\"\\/bfnrt";
    const char* decoded = "\"\\/\b\f\n\r\t";
    for (int i = 0; plain[i]; ++i) {
      if (c == plain[i]) {
        out.put(decoded[i]);
        pos_ += 2;
        return true;
      }
    }
    if (c == 'u') return unicode_escape(out);
    ++pos_;
    return fail(ScanError::bad_string);
  }

  // At "\u": one code point, or a high surrogate with its low surrogate.
  bool unicode_escape(Sink& out) {
    long cp = hex4(pos_ + 2);
    if (cp < 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) return fail(ScanError::bad_string);
    pos_ += 6;
    if (cp >= 0xD800 && cp <= 0xDBFF) {
      long low = at(pos_) == '\\' && at(pos_ + 1) == 'u' ? hex4(pos_ + 2) : -1;
      if (low < 0xDC00 || low > 0xDFFF) return fail(ScanError::bad_string);
      pos_ += 6;
      cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, static_cast<std::uint32_t>(cp));
    return true;
  }

  // Four hex digits at `from`, or -1.
  long hex4(std::size_t from) const {
    long value = 0;
    for (std::size_t i = from; i < from + 4; ++i) {
      char c = at(i);
      int digit = hex_digit(c);
      if (digit < 0) return -1;
      value = value * 16 + digit;
    }
    return value;
  }

  // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, within the range of a double.
  bool number() {
    std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (is_digit(peek())) {
      skip_digits();
    } else {
      return fail(ScanError::bad_number);
    }
    std::size_t integer_digits = pos_ - start - (in_[start] == '-' ? 1 : 0);
    if (peek() == '.') {
      ++pos_;
      if (!is_digit(peek())) return fail(ScanError::bad_number);
      skip_digits();
    }
    bool exponent = peek() == 'e' || peek() == 'E';
    if (exponent) {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!is_digit(peek())) return fail(ScanError::bad_number);
      skip_digits();
    }
    if ((exponent || integer_digits >= kDigitsThatMayOverflow) && !fits_double(in_.substr(start, pos_ - start))) {
      pos_ = start;
      return fail(ScanError::bad_number);
    }
    return true;
  }

  bool literal() {
    for (std::string_view word : {"true", "false", "null"}) {
      if (in_.substr(pos_, word.size()) == word) {
        pos_ += word.size();
        return true;
      }
    }
    return fail(ScanError::syntax);
  }

  void skip_ws() {
    while (pos_ < in_.size() && is_space(in_[pos_])) ++pos_;
  }
  void skip_digits() {
    while (is_digit(peek())) ++pos_;
  }
  // NUL past the end: never valid where it is read, so it ends every loop.
  char at(std::size_t i) const { return i < in_.size() ? in_[i] : '\0'; }
  char peek() const { return at(pos_); }

  bool fail(ScanError error) {
    result_.error = error;
    result_.error_offset = pos_;
    return false;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  std::size_t max_depth_;
  std::vector<bool> stack_;  // one entry per open container: true for an object
  bool started_ = false;     // the top-level value's kind is recorded
  bool id_next_ = false;     // the value about to start is the top-level "id"'s
  bool capturing_id_ = false;
  ScanResult result_;
};

}  // namespace

ScanResult scan(std::string_view document, std::size_t max_depth) { return Scanner(document, max_depth).run(); }

const char* describe(ScanError error) noexcept {
  switch (error) {
    case ScanError::none: return "valid JSON";
    case ScanError::syntax: return "unexpected character or end of input";
    case ScanError::bad_string:
      return "invalid string (unterminated, an unescaped control character, a bad escape, an unpaired surrogate or "
             "invalid UTF-8)";
    case ScanError::bad_number: return "invalid number (not the JSON grammar, or out of the range of a double)";
    case ScanError::too_deep: return "objects and arrays nested too deeply";
  }
  return "invalid JSON";
}

}  // namespace boxgate::json
