#pragma once
// RequestFraming: a strict reader of the framing of HTTP/1.x requests, fed
// the bytes of one connection as they arrive, before evhttp parses them.
//
// Why: evhttp 2.1 reads framing leniently (a chunk size "0x7", "+7", "7 junk"
// or "-0"; chunk data without its CRLF; blank lines before a chunk size; a
// chunked body on HTTP/1.0; trailer fields merged into the headers). A proxy
// in front may read the same bytes otherwise and hide a second request in
// them (request smuggling). The server runs every byte through this reader
// first and closes the connection, answered 400, at the first byte that does
// not frame a request per RFC 9112 -- evhttp then only ever parses framing
// both readings agree on. It also says, at the end of each request's header
// section, whether a body follows, so the server can refuse a caller before
// reading its body (RequestHead, Observer::on_head).
//
// What it accepts (RFC 9112, stricter where the RFC allows a choice):
//   request-line  = token SP 1*(%x21-7E) SP ( "HTTP/1.0" / "HTTP/1.1" ) CRLF
//   field-line    = token ":" OWS value OWS CRLF   (value: HTAB, SP, VCHAR,
//                   obs-text; no obs-fold, no bare CR, no NUL)
//   at most one Content-Length (1*18DIGIT), Transfer-Encoding (exactly
//   "chunked", HTTP/1.1 only, never with Content-Length), Host,
//   Authorization, X-Request-Id and Idempotency-Key; no body on HEAD;
//   chunk         = 1*15HEXDIG CRLF data CRLF  (chunk extensions refused)
//   last-chunk    = 1*("0") CRLF CRLF           (trailer fields refused)
// Every line ends in CRLF; no empty line before a request line.
//
// Memory: one partial line (at most max_line_bytes) and a few short strings.
// Thread ownership: none (a value type); the server keeps one per connection
// on its loop thread.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace boxgate::http {

// What one request's header section says about it. Valid during on_head only.
struct RequestHead {
  std::string_view method;
  std::string_view target;
  int minor_version = 1;                      // HTTP/1.<minor_version>
  std::optional<std::uint64_t> content_length;
  bool chunked = false;
  // Values, trimmed, of the headers a caller is identified by.
  std::optional<std::string_view> authorization;
  std::optional<std::string_view> request_id;       // X-Request-Id
  std::optional<std::string_view> idempotency_key;  // Idempotency-Key
  bool has_body() const noexcept { return chunked || content_length.value_or(0) > 0; }
};

class RequestFraming {
 public:
  // Told what was read, in order. on_head returns false to stop reading (the
  // caller refuses the request); feed() then returns Status::stopped.
  struct Observer {
    virtual ~Observer() = default;
    virtual bool on_head(const RequestHead&) { return true; }
    virtual void on_body(std::string_view) {}  // the decoded body, in pieces
    virtual void on_message_end() {}
  };

  enum class Status {
    ok,       // every byte so far frames valid requests (the last may be unfinished)
    invalid,  // a framing error: problem() says which (answer 400, close)
    nul,      // a NUL byte (never valid in a request to this server: close)
    stopped,  // on_head returned false
  };

  // `max_line_bytes` bounds one line and the header section as a whole.
  explicit RequestFraming(std::size_t max_line_bytes) : max_line_(max_line_bytes) {}

  // Reads the next bytes. Once the status is not ok, later calls change nothing.
  Status feed(std::string_view bytes, Observer& observer);
  Status status() const noexcept { return status_; }
  const char* problem() const noexcept { return problem_; }
  // How many requests were read to their end.
  std::uint64_t messages() const noexcept { return messages_; }
  // Where the request being read (the refused one, once refused) starts,
  // counted in bytes fed since the first.
  std::uint64_t message_start() const noexcept { return message_start_; }

 private:
  enum class State { request_line, header_line, body, chunk_size, chunk_data, chunk_crlf, trailer };

  std::size_t take_line(std::string_view bytes, std::string_view& line);
  std::size_t take_data(std::string_view bytes, Observer& observer);
  void on_line(std::string_view line, Observer& observer);
  void request_line(std::string_view line);
  void header_line(std::string_view line);
  void end_of_head(Observer& observer);
  void chunk_size(std::string_view line);
  void end_message(Observer& observer);
  void fail(const char* problem);

  std::size_t max_line_;
  State state_ = State::request_line;
  Status status_ = Status::ok;
  const char* problem_ = nullptr;
  std::string partial_;            // an unfinished line
  std::size_t head_bytes_ = 0;     // of the current header section
  std::uint64_t remaining_ = 0;    // body or chunk bytes still to come
  int crlf_seen_ = 0;              // of the CRLF after chunk data
  std::uint64_t messages_ = 0;
  std::uint64_t offset_ = 0;         // bytes read so far
  std::uint64_t message_start_ = 0;
  // The current request's head, as far as read.
  std::string method_, target_, authorization_, request_id_, idempotency_key_;
  int minor_ = 1;
  std::optional<std::uint64_t> content_length_;
  bool chunked_ = false, has_authorization_ = false, has_host_ = false, has_request_id_ = false,
       has_idempotency_key_ = false;
};

}  // namespace boxgate::http
