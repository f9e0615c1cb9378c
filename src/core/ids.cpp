#include "boxgate/ids.hpp"

#include <sys/random.h>

#include <algorithm>
#include <array>
#include <cstdint>

namespace boxgate {

namespace {
bool is_alnum(char c) noexcept {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}
}  // namespace

bool is_valid_id(std::string_view text) noexcept {
  if (text.empty() || text.size() > 128 || !is_alnum(text[0])) return false;
  for (char c : text.substr(1)) {
    if (!is_alnum(c) && c != '_' && c != '.' && c != ':' && c != '-') return false;
  }
  return true;
}

namespace {
// Kernel CSPRNG bytes, fetched 4 KiB at a time: one getrandom() per 256 ids
// instead of one per id. Each thread has its own buffer; bytes are never reused.
void random_bytes(std::uint8_t* out, std::size_t count) {
  static thread_local std::array<std::uint8_t, 4096> pool{};
  static thread_local std::size_t used = pool.size();
  if (pool.size() - used < count) {
    std::size_t got = 0;
    while (got < pool.size()) {  // short only on EINTR or before the pool is seeded
      ssize_t n = getrandom(pool.data() + got, pool.size() - got, 0);
      if (n > 0) got += static_cast<std::size_t>(n);
    }
    used = 0;
  }
  std::copy_n(pool.data() + used, count, out);
  std::fill_n(pool.data() + used, count, 0);
  used += count;
}
}  // namespace

RequestId new_request_id() {
  std::array<std::uint8_t, 16> b{};
  random_bytes(b.data(), b.size());
  b[6] = static_cast<std::uint8_t>((b[6] & 0x0f) | 0x40);  // version 4
  b[8] = static_cast<std::uint8_t>((b[8] & 0x3f) | 0x80);  // RFC 4122 variant
  static constexpr char hex[] = "0123456789abcdef";
  std::string s;
  s.reserve(36);
  for (std::size_t i = 0; i < b.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) s.push_back('-');
    s.push_back(hex[b[i] >> 4]);
    s.push_back(hex[b[i] & 0x0f]);
  }
  return *RequestId::parse(s);
}

}  // namespace boxgate
