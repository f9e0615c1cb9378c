#include "boxgate/http/request_framing.hpp"

#include <cstring>

namespace boxgate::http {

namespace {

// RFC 9110 5.6.2: tchar.
bool is_tchar(unsigned char c) {
  if (c >= '0' && c <= '9') return true;
  if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return true;
  return c != 0 && std::strchr("!#$%&'*+-.^_`|~", c) != nullptr;
}

bool is_token(std::string_view s) {
  if (s.empty()) return false;
  for (unsigned char c : s) {
    if (!is_tchar(c)) return false;
  }
  return true;
}

// A field value's byte: HTAB, SP, VCHAR or obs-text (RFC 9110 5.5).
bool is_field_byte(unsigned char c) { return c == '\t' || c == ' ' || (c >= 0x21 && c != 0x7f); }

bool equals_nocase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if ((a[i] | 0x20) != (b[i] | 0x20)) return false;
  }
  return true;
}

std::string_view trim_ows(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

constexpr std::size_t kMaxLengthDigits = 18;  // < 2^63: no overflow, far beyond any body limit
constexpr std::size_t kMaxChunkSizeDigits = 15;
constexpr const char* kTwice =
    "A header that may appear once (Content-Length, Transfer-Encoding, Host, Authorization, X-Request-Id, "
    "Idempotency-Key) appears twice.";

}  // namespace

RequestFraming::Status RequestFraming::feed(std::string_view bytes, Observer& observer) {
  while (!bytes.empty() && status_ == Status::ok) {
    std::size_t used = 0;
    if (state_ == State::body || state_ == State::chunk_data || state_ == State::chunk_crlf) {
      used = take_data(bytes, observer);
    } else {
      std::string_view line;
      used = take_line(bytes, line);
      if (status_ == Status::ok && used > 0 && line.data() != nullptr) on_line(line, observer);
    }
    bytes.remove_prefix(used);
    offset_ += used;
    if (status_ == Status::ok && state_ == State::request_line && partial_.empty()) message_start_ = offset_;
  }
  return status_;
}

void RequestFraming::fail(const char* problem) {
  if (status_ != Status::ok) return;
  status_ = Status::invalid;
  problem_ = problem;
}

// Takes bytes up to and including the next LF. `line` is set (without its
// CRLF) once a whole line is there; an unfinished line is kept in partial_.
std::size_t RequestFraming::take_line(std::string_view bytes, std::string_view& line) {
  const std::size_t lf = bytes.find('\n');
  const std::string_view piece = bytes.substr(0, lf);
  if (partial_.size() + piece.size() > max_line_) {
    fail("A line of the request (or its header section) is too long.");
    return bytes.size();
  }
  if (lf == std::string_view::npos) {
    partial_.append(piece);
    return bytes.size();
  }
  if (!partial_.empty()) {
    partial_.append(piece);
    line = partial_;
  } else {
    line = piece;
  }
  if (line.find('\0') != std::string_view::npos) {
    status_ = Status::nul;
  } else if (line.empty() || line.back() != '\r') {
    fail("A line ends in a bare LF (RFC 9112 needs CRLF).");
  } else {
    line.remove_suffix(1);
    if (line.find('\r') != std::string_view::npos) fail("A line holds a bare CR.");
  }
  return lf + 1;
}

std::size_t RequestFraming::take_data(std::string_view bytes, Observer& observer) {
  if (state_ == State::chunk_crlf) {
    const char expected = crlf_seen_ == 0 ? '\r' : '\n';
    if (bytes.front() != expected) {
      fail("Chunk data is not followed by CRLF.");
      return bytes.size();
    }
    if (++crlf_seen_ == 2) state_ = State::chunk_size;
    return 1;
  }
  const std::size_t n = remaining_ < bytes.size() ? static_cast<std::size_t>(remaining_) : bytes.size();
  const std::string_view data = bytes.substr(0, n);
  if (std::memchr(data.data(), 0, data.size()) != nullptr) {
    status_ = Status::nul;
    return bytes.size();
  }
  observer.on_body(data);
  remaining_ -= n;
  if (remaining_ == 0) {
    if (state_ == State::body) {
      end_message(observer);
    } else {
      state_ = State::chunk_crlf;
      crlf_seen_ = 0;
    }
  }
  return n;
}

void RequestFraming::on_line(std::string_view line, Observer& observer) {
  if (state_ == State::request_line || state_ == State::header_line) {
    head_bytes_ += line.size() + 2;
    if (head_bytes_ > max_line_) return fail("The header section is too long.");
  }
  switch (state_) {
    case State::request_line: request_line(line); break;
    case State::header_line:
      if (line.empty()) {
        end_of_head(observer);
      } else {
        header_line(line);
      }
      break;
    case State::chunk_size: chunk_size(line); break;
    case State::trailer:
      if (!line.empty()) return fail("Trailer fields are refused.");
      end_message(observer);
      break;
    default: break;
  }
  partial_.clear();
}

void RequestFraming::request_line(std::string_view line) {
  if (line.empty()) return fail("An empty line where a request line belongs.");
  const std::size_t sp1 = line.find(' ');
  const std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return fail("The request line is not 'method target version'.");
  const std::string_view method = line.substr(0, sp1);
  const std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = line.substr(sp2 + 1);
  if (!is_token(method)) return fail("The method is not a token.");
  if (target.empty()) return fail("The request target is empty.");
  for (unsigned char c : target) {
    if (c < 0x21 || c > 0x7e) return fail("The request target holds a byte outside %x21-7E.");
  }
  if (version == "HTTP/1.1") {
    minor_ = 1;
  } else if (version == "HTTP/1.0") {
    minor_ = 0;
  } else {
    return fail("The version is neither HTTP/1.1 nor HTTP/1.0.");
  }
  method_.assign(method);
  target_.assign(target);
  content_length_.reset();
  chunked_ = has_authorization_ = has_host_ = has_request_id_ = has_idempotency_key_ = false;
  authorization_.clear();
  state_ = State::header_line;
}

void RequestFraming::header_line(std::string_view line) {
  if (line.front() == ' ' || line.front() == '\t') return fail("A header line is folded (obs-fold).");
  const std::size_t colon = line.find(':');
  if (colon == std::string_view::npos) return fail("A header line has no colon.");
  const std::string_view name = line.substr(0, colon);
  if (!is_token(name)) return fail("A header name is not a token (RFC 9110).");
  const std::string_view value = trim_ows(line.substr(colon + 1));
  for (unsigned char c : value) {
    if (!is_field_byte(c)) return fail("A header value holds a control character.");
  }
  auto once = [this](bool& seen) {
    if (seen) fail(kTwice);
    seen = true;
  };
  if (equals_nocase(name, "Content-Length")) {
    if (content_length_) return fail(kTwice);
    if (value.empty() || value.size() > kMaxLengthDigits) return fail("Content-Length is not a decimal number.");
    std::uint64_t length = 0;
    for (char c : value) {
      if (c < '0' || c > '9') return fail("Content-Length is not a decimal number.");
      length = length * 10 + static_cast<std::uint64_t>(c - '0');
    }
    content_length_ = length;
  } else if (equals_nocase(name, "Transfer-Encoding")) {
    if (chunked_) return fail(kTwice);
    if (!equals_nocase(value, "chunked")) return fail("The only Transfer-Encoding accepted is chunked.");
    chunked_ = true;
  } else if (equals_nocase(name, "Host")) {
    once(has_host_);
  } else if (equals_nocase(name, "Authorization")) {
    once(has_authorization_);
    authorization_.assign(value);
  } else if (equals_nocase(name, "X-Request-Id")) {
    once(has_request_id_);
    request_id_.assign(value);
  } else if (equals_nocase(name, "Idempotency-Key")) {
    once(has_idempotency_key_);
    idempotency_key_.assign(value);
  }
}

void RequestFraming::end_of_head(Observer& observer) {
  if (chunked_ && content_length_) return fail("Content-Length and Transfer-Encoding are both given.");
  if (chunked_ && minor_ == 0) return fail("Transfer-Encoding is not defined for HTTP/1.0.");
  RequestHead head;
  head.method = method_;
  head.target = target_;
  head.minor_version = minor_;
  head.content_length = content_length_;
  head.chunked = chunked_;
  if (has_authorization_) head.authorization = authorization_;
  if (has_request_id_) head.request_id = request_id_;
  if (has_idempotency_key_) head.idempotency_key = idempotency_key_;
  // evhttp reads no body after a HEAD request: a body there would be read
  // as the next request.
  if (head.has_body() && method_ == "HEAD") return fail("A HEAD request has no body.");
  head_bytes_ = 0;
  if (!observer.on_head(head)) {
    status_ = Status::stopped;
    return;
  }
  if (chunked_) {
    state_ = State::chunk_size;
  } else if (content_length_.value_or(0) > 0) {
    state_ = State::body;
    remaining_ = *content_length_;
  } else {
    end_message(observer);
  }
}

void RequestFraming::chunk_size(std::string_view line) {
  if (line.empty() || line.size() > kMaxChunkSizeDigits) return fail("A chunk size is not 1 to 15 hex digits.");
  std::uint64_t size = 0;
  for (char c : line) {
    const int digit = hex_value(c);
    if (digit < 0) return fail("A chunk size is not 1 to 15 hex digits (extensions are refused).");
    size = size * 16 + static_cast<std::uint64_t>(digit);
  }
  if (size == 0) {
    state_ = State::trailer;
  } else {
    state_ = State::chunk_data;
    remaining_ = size;
  }
}

void RequestFraming::end_message(Observer& observer) {
  ++messages_;
  state_ = State::request_line;
  observer.on_message_end();
}

}  // namespace boxgate::http
