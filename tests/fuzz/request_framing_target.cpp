// http::RequestFraming (streaming, fed in pieces) against a model written
// apart from it: a whole-buffer reader of the same grammar (RFC 9112, as
// request_framing.hpp narrows it), line by line.
//
// For every input and every way of cutting it into pieces: both accept or
// both refuse; when both accept, they read the same heads, the same decoded
// bodies and the same number of finished requests. The first two bytes pick
// the piece sizes; the rest is the connection's bytes.

#include <cctype>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "boxgate/http/request_framing.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

namespace {

constexpr std::size_t kModelLineLimit = 256;

struct Read {
  bool refused = false;
  std::vector<std::string> heads;
  std::vector<std::string> bodies;
  int finished = 0;
};

std::string describe_head(std::string_view method, std::string_view target, int minor,
                          std::optional<std::uint64_t> length, bool chunked, std::optional<std::string_view> auth) {
  std::string text = std::string(method) + "|" + std::string(target) + "|" + std::to_string(minor);
  if (length) text += "|cl=" + std::to_string(*length);
  if (chunked) text += "|chunked";
  if (auth) text += "|auth=" + std::string(*auth);
  return text;
}

// ---- the model ------------------------------------------------------------

class Model {
 public:
  explicit Model(std::string_view in) : in_(in) {}

  Read run() {
    while (pos_ < in_.size() && !out_.refused) {
      if (!request()) break;
    }
    return out_;
  }

 private:
  enum class Line { whole, unfinished, bad };

  // The next CRLF-ended line from pos_, without its CRLF.
  Line line(std::string& text) {
    const std::size_t lf = in_.find('\n', pos_);
    const std::size_t end = lf == std::string_view::npos ? in_.size() : lf;
    if (end - pos_ > kModelLineLimit) return refuse();
    if (lf == std::string_view::npos) {
      pos_ = in_.size();
      return Line::unfinished;
    }
    text.assign(in_.substr(pos_, lf - pos_));
    pos_ = lf + 1;
    if (text.find('\0') != std::string::npos || text.empty() || text.back() != '\r') return refuse();
    text.pop_back();
    if (text.find('\r') != std::string::npos) return refuse();
    return Line::whole;
  }
  Line refuse() {
    out_.refused = true;
    return Line::bad;
  }

  static bool tchar(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || (c != 0 && std::strchr("!#$%&'*+-.^_`|~", c));
  }
  static bool token(std::string_view s) {
    if (s.empty()) return false;
    for (char c : s) {
      if (!tchar(c)) return false;
    }
    return true;
  }
  static std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return out;
  }

  // One request; false when the input ended or was refused.
  bool request() {
    std::string text;
    std::size_t head_bytes = 0;
    if (line(text) != Line::whole) return false;
    head_bytes += text.size() + 2;
    if (head_bytes > kModelLineLimit) return refuse(), false;
    // method SP target SP version
    const std::size_t a = text.find(' ');
    if (a == std::string::npos) return refuse(), false;
    const std::size_t b = text.find(' ', a + 1);
    if (b == std::string::npos) return refuse(), false;
    const std::string method = text.substr(0, a), target = text.substr(a + 1, b - a - 1), version = text.substr(b + 1);
    if (!token(method) || target.empty()) return refuse(), false;
    for (char c : target) {
      if (static_cast<unsigned char>(c) < 0x21 || static_cast<unsigned char>(c) > 0x7e) return refuse(), false;
    }
    if (version != "HTTP/1.1" && version != "HTTP/1.0") return refuse(), false;
    const int minor = version == "HTTP/1.1" ? 1 : 0;

    std::optional<std::uint64_t> length;
    bool chunked = false;
    std::optional<std::string> auth;
    std::vector<std::string> once_seen;
    for (;;) {
      if (line(text) != Line::whole) return false;
      head_bytes += text.size() + 2;
      if (head_bytes > kModelLineLimit) return refuse(), false;
      if (text.empty()) break;
      if (text[0] == ' ' || text[0] == '\t') return refuse(), false;
      const std::size_t colon = text.find(':');
      if (colon == std::string::npos || !token(text.substr(0, colon))) return refuse(), false;
      std::string value = text.substr(colon + 1);
      const std::size_t first = value.find_first_not_of(" \t");
      value = first == std::string::npos ? "" : value.substr(first, value.find_last_not_of(" \t") - first + 1);
      for (char c : value) {
        const auto u = static_cast<unsigned char>(c);
        if (u == 0x7f || (u < 0x20 && u != '\t')) return refuse(), false;
      }
      const std::string name = lower(text.substr(0, colon));
      for (const char* single : {"content-length", "transfer-encoding", "host", "authorization", "x-request-id",
                                 "idempotency-key"}) {
        if (name != single) continue;
        for (const auto& seen : once_seen) {
          if (seen == name) return refuse(), false;
        }
        once_seen.push_back(name);
      }
      if (name == "content-length") {
        if (value.empty() || value.size() > 18 || value.find_first_not_of("0123456789") != std::string::npos) {
          return refuse(), false;
        }
        length = std::stoull(value);
      } else if (name == "transfer-encoding") {
        if (lower(value) != "chunked") return refuse(), false;
        chunked = true;
      } else if (name == "authorization") {
        auth = value;
      }
    }
    if ((chunked && length) || (chunked && minor == 0)) return refuse(), false;
    const bool body = chunked || length.value_or(0) > 0;
    if (body && method == "HEAD") return refuse(), false;
    out_.heads.push_back(describe_head(method, target, minor, length, chunked, auth));
    out_.bodies.emplace_back();
    if (chunked) return chunked_body();
    if (length.value_or(0) > 0) return data(*length);
    ++out_.finished;
    return true;
  }

  // `n` body bytes (or as many as there are).
  bool data(std::uint64_t n) {
    const std::string_view bytes = in_.substr(pos_, n);
    if (bytes.find('\0') != std::string_view::npos) return refuse(), false;
    out_.bodies.back() += bytes;
    pos_ += bytes.size();
    if (bytes.size() < n) return false;
    ++out_.finished;
    return true;
  }

  bool chunked_body() {
    std::string text;
    for (;;) {
      if (line(text) != Line::whole) return false;
      if (text.empty() || text.size() > 15 || text.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos) {
        return refuse(), false;
      }
      const std::uint64_t size = std::stoull(text, nullptr, 16);
      if (size == 0) break;
      const std::string_view bytes = in_.substr(pos_, size);
      if (bytes.find('\0') != std::string_view::npos) return refuse(), false;
      out_.bodies.back() += bytes;
      pos_ += bytes.size();
      if (bytes.size() < size) return false;
      for (char expected : {'\r', '\n'}) {
        if (pos_ == in_.size()) return false;
        if (in_[pos_++] != expected) return refuse(), false;
      }
    }
    if (line(text) != Line::whole) return false;
    if (!text.empty()) return refuse(), false;
    ++out_.finished;
    return true;
  }

  std::string_view in_;
  std::size_t pos_ = 0;
  Read out_;
};

// ---- the code under test --------------------------------------------------

struct Recorder : http::RequestFraming::Observer {
  Read out;
  bool on_head(const http::RequestHead& h) override {
    out.heads.push_back(describe_head(h.method, h.target, h.minor_version, h.content_length, h.chunked,
                                      h.authorization));
    out.bodies.emplace_back();
    return true;
  }
  void on_body(std::string_view data) override { out.bodies.back() += data; }
  void on_message_end() override { ++out.finished; }
};

}  // namespace

int request_framing(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  const std::string_view in(reinterpret_cast<const char*>(data) + 2, size - 2);
  const Read model = Model(in).run();

  Recorder recorder;
  http::RequestFraming framing(kModelLineLimit);
  // Piece sizes from the first two bytes: 1..16, cycling.
  std::size_t at = 0;
  for (unsigned i = 0; at < in.size(); ++i) {
    const std::size_t piece = 1 + ((data[i % 2] >> (4 * (i / 2 % 2))) & 0x0f);
    framing.feed(in.substr(at, piece), recorder);
    at += piece;
  }
  const bool refused = framing.status() != http::RequestFraming::Status::ok;
  check(refused == model.refused, "accept/refuse differs from the model");
  if (refused) return 0;
  check(recorder.out.heads == model.heads, "heads differ from the model");
  check(recorder.out.bodies == model.bodies, "bodies differ from the model");
  check(recorder.out.finished == model.finished, "finished requests differ from the model");
  check(framing.messages() == static_cast<std::uint64_t>(model.finished), "messages() miscounts");
  return 0;
}

}  // namespace boxgate::fuzz
