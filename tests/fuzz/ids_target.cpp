// Ids and percent-decoding: the security boundary of every topic, channel and
// key. is_valid_id must agree with the contract's regular expression; an id
// parsed from a percent-decoded path segment can then hold none of
// '/ + # * ? [ ]', spaces or control bytes. percent_decode must agree with a
// plain RFC 3986 decoder ('+' stays '+', a '%' not followed by two hex digits
// stays as it is); split_query must give back exactly the pieces of the raw
// query, never decoding them.

#include <regex>
#include <string>

#include "boxgate/http/server.hpp"
#include "boxgate/ids.hpp"
#include "targets.hpp"

namespace boxgate::fuzz {

namespace {

bool oracle_valid_id(const std::string& text) {
  static const std::regex pattern("^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$");
  return text.find('\n') == std::string::npos && std::regex_match(text, pattern);
}

int hex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string oracle_decode(const std::string& in) {
  std::string out;
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] == '%' && i + 2 < in.size() && hex(in[i + 1]) >= 0 && hex(in[i + 2]) >= 0) {
      out.push_back(static_cast<char>(hex(in[i + 1]) * 16 + hex(in[i + 2])));
      i += 2;
    } else {
      out.push_back(in[i]);
    }
  }
  return out;
}

}  // namespace

int ids(const std::uint8_t* data, std::size_t size) {
  const std::string input(reinterpret_cast<const char*>(data), size);

  check(is_valid_id(input) == oracle_valid_id(input), "is_valid_id differs from the contract's pattern");
  check(BoxId::parse(input).has_value() == is_valid_id(input), "BoxId::parse differs from is_valid_id");

  // A path segment comes from libevent's parsed URI, a C string: no NUL.
  const std::string segment = input.substr(0, input.find('\0'));
  const std::string decoded = http::percent_decode(segment);
  check(decoded == oracle_decode(segment), "percent_decode differs from RFC 3986 decoding");
  if (auto box = BoxId::parse(decoded)) {
    check(box->str().find_first_of("/+#*?[] \t\r\n") == std::string::npos, "a parsed id holds a separator");
    for (char c : box->str()) check(static_cast<unsigned char>(c) > 0x20 && c != 0x7f, "a parsed id holds a control byte");
  }

  std::string rebuilt;
  for (const http::QueryParam& p : http::split_query(input)) {
    check(!p.name.empty() || p.has_value, "an empty piece was kept");
    check(p.name.find('&') == std::string_view::npos && p.name.find('=') == std::string_view::npos, "name holds & or =");
    check(p.value.find('&') == std::string_view::npos, "value holds &");
    if (!rebuilt.empty()) rebuilt += '&';
    rebuilt += p.name;
    if (p.has_value) (rebuilt += '=') += p.value;
  }
  std::string pieces;  // the raw query without its empty pieces
  for (std::size_t start = 0; start <= input.size();) {
    std::size_t amp = input.find('&', start);
    std::string piece = input.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    if (!piece.empty()) pieces += (pieces.empty() ? "" : "&") + piece;
    if (amp == std::string::npos) break;
    start = amp + 1;
  }
  check(rebuilt == pieces, "split_query lost or changed bytes");
  return 0;
}

}  // namespace boxgate::fuzz
