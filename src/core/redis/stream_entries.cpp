#include "boxgate/redis/stream_entries.hpp"

#include <hiredis/hiredis.h>

#include <charconv>
#include <cstdint>
#include <system_error>
#include <utility>

namespace boxgate::redis {

namespace {

std::string_view str_of(const redisReply* r) {
  if (!r || (r->type != REDIS_REPLY_STRING && r->type != REDIS_REPLY_STATUS)) return {};
  return {r->str, r->len};
}

// "ms-seq" -> (ms, seq); "ms" -> (ms, 0).
std::pair<std::string_view, std::string_view> halves(std::string_view id) {
  auto dash = id.find('-');
  if (dash == std::string_view::npos) return {id, "0"};
  return {id.substr(0, dash), id.substr(dash + 1)};
}

// A decimal of at most 20 digits that fits in 64 bits (Redis's ms and seq are unsigned 64-bit:
// a larger one is not an id, and Redis would answer an error for it).
bool digits(std::string_view s) {
  std::uint64_t value = 0;
  auto [end, error] = std::from_chars(s.data(), s.data() + s.size(), value);
  return !s.empty() && s.size() <= 20 && error == std::errc() && end == s.data() + s.size();
}

// Decimal strings without leading zeros compare by length, then bytes.
bool number_less(std::string_view a, std::string_view b) {
  while (a.size() > 1 && a[0] == '0') a.remove_prefix(1);
  while (b.size() > 1 && b[0] == '0') b.remove_prefix(1);
  if (a.size() != b.size()) return a.size() < b.size();
  return a < b;
}

}  // namespace

bool is_stream_id(std::string_view id) noexcept {
  auto [ms, seq] = halves(id);
  return digits(ms) && digits(seq);
}

bool is_last_stream_id(std::string_view id) noexcept {
  auto [ms, seq] = halves(id);
  return number_less("18446744073709551614", ms) && number_less("18446744073709551614", seq);
}

bool stream_id_less(std::string_view a, std::string_view b) noexcept {
  auto [ams, aseq] = halves(a);
  auto [bms, bseq] = halves(b);
  if (ams != bms && (number_less(ams, bms) || number_less(bms, ams))) return number_less(ams, bms);
  return number_less(aseq, bseq);
}

std::string range_start_after(const std::optional<std::string>& after) { return after ? "(" + *after : "-"; }

std::vector<StoredEvent> parse_entries(const redisReply* array) {
  std::vector<StoredEvent> out;
  if (!array || array->type != REDIS_REPLY_ARRAY) return out;
  out.reserve(array->elements);
  for (std::size_t i = 0; i < array->elements; ++i) {
    const redisReply* entry = array->element[i];
    if (!entry || entry->type != REDIS_REPLY_ARRAY || entry->elements != 2) continue;
    const redisReply* fields = entry->element[1];
    if (!fields || fields->type != REDIS_REPLY_ARRAY) continue;
    StoredEvent event;
    event.id = std::string(str_of(entry->element[0]));
    bool has_box = false, has_name = false;
    for (std::size_t f = 0; f + 1 < fields->elements; f += 2) {
      std::string_view key = str_of(fields->element[f]);
      std::string_view value = str_of(fields->element[f + 1]);
      if (key == "box") event.box = value, has_box = true;
      else if (key == "name") event.name = value, has_name = true;
      else if (key == "payload") event.payload = value;
      else if (key == "received_ms") event.received_ms = value;
    }
    if (has_box && has_name && is_stream_id(event.id)) out.push_back(std::move(event));
  }
  return out;
}

std::optional<std::string> last_entry_id(const redisReply* array) {
  if (!array || array->type != REDIS_REPLY_ARRAY || array->elements == 0) return std::nullopt;
  const redisReply* last = array->element[array->elements - 1];
  if (!last || last->type != REDIS_REPLY_ARRAY || last->elements < 1) return std::nullopt;
  const redisReply* id = last->element[0];
  if (!id || id->type != REDIS_REPLY_STRING) return std::nullopt;
  std::string text(id->str, id->len);
  if (!is_stream_id(text)) return std::nullopt;
  return text;
}

}  // namespace boxgate::redis
