#include "boxgate/traceparent.hpp"

namespace boxgate {

namespace {
bool lower_hex(std::string_view s) noexcept {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}
bool all_zero(std::string_view s) noexcept { return s.find_first_not_of('0') == std::string_view::npos; }
}  // namespace

bool is_valid_traceparent(std::string_view v) noexcept {
  // 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>
  if (v.size() != 55 || v[2] != '-' || v[35] != '-' || v[52] != '-') return false;
  std::string_view version = v.substr(0, 2), trace = v.substr(3, 32), parent = v.substr(36, 16), flags = v.substr(53, 2);
  if (!lower_hex(version) || !lower_hex(trace) || !lower_hex(parent) || !lower_hex(flags)) return false;
  return version != "ff" && !all_zero(trace) && !all_zero(parent);
}

}  // namespace boxgate
