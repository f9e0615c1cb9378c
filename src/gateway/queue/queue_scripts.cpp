#include "queue/queue_scripts.hpp"

#include <hiredis/hiredis.h>

#include <charconv>

namespace boxgate::gateway {

const char* const kEnqueueScript = R"LUA(
local list, items = KEYS[1], KEYS[2]
local depth = redis.call('LLEN', list)
if redis.call('HEXISTS', items, ARGV[2]) == 1 then return {'exists', depth} end
if depth >= tonumber(ARGV[4]) then return {'full', depth} end
local size = #ARGV[1] + #ARGV[3]
local bytes = tonumber(redis.call('HGET', items, '/bytes') or '0')
if bytes + size > tonumber(ARGV[5]) then return {'full_bytes', depth} end
redis.call('RPUSH', list, ARGV[1])
redis.call('HSET', items, ARGV[2], ARGV[3])
redis.call('HINCRBY', items, '/bytes', size)
if ARGV[6] == '1' and depth == 0 and redis.call('HEXISTS', items, '/sending') == 0 then
  redis.call('HSET', items, '/sending', ARGV[7])
  return {'claimed', depth}
end
return {'queued', depth}
)LUA";

const char* const kStepScript = R"LUA(
local list, items = KEYS[1], KEYS[2]
local now = tonumber(ARGV[1])
local freed = 0
local ended = ''
local function drop(element, id)
  local entry = redis.call('HGET', items, id)
  if entry then
    freed = freed + #entry + #element
    redis.call('HDEL', items, id)
  end
end
if ARGV[5] ~= '' and redis.call('HGET', items, '/sending') == ARGV[5] then
  redis.call('HDEL', items, '/sending')
  if ARGV[6] ~= '1' then
    local id = string.match(ARGV[5], '^(%S+)')
    local head = redis.call('LINDEX', list, 0)
    if head and string.match(head, '(%S+)$') == id then
      redis.call('LPOP', list)
      drop(head, id)
      ended = head
    end
  end
end
local sending = redis.call('HGET', items, '/sending')
local sending_id = sending and string.match(sending, '^(%S+)')
local expired = {}
for _, element in ipairs(redis.call('LRANGE', list, 0, -1)) do
  local expires, id = string.match(element, '^(%d+) %d+ %d+ %d+ %S+ (%S+)$')
  if expires and tonumber(expires) <= now and id ~= sending_id then
    redis.call('LREM', list, 1, element)
    drop(element, id)
    expired[#expired + 1] = element
  end
end
local status, entry = 'idle', ''
if sending then
  local until_ms = tonumber(string.match(sending, '(%d+)$')) or 0
  status = until_ms < now and 'stale' or 'busy'
elseif ARGV[2] == '1' then
  local head = redis.call('LINDEX', list, 0)
  if head then
    local timeout, id = string.match(head, '^%d+ (%d+) %d+ %d+ %S+ (%S+)$')
    sending = id .. ' ' .. ARGV[3] .. ' ' .. (now + tonumber(timeout) + tonumber(ARGV[4]))
    redis.call('HSET', items, '/sending', sending)
    status, entry = 'claimed', redis.call('HGET', items, id) or ''
  end
end
local depth = redis.call('LLEN', list)
if depth == 0 and not sending then
  redis.call('DEL', items)
elseif freed > 0 then
  redis.call('HINCRBY', items, '/bytes', -freed)
end
local answer = {status, sending or '', entry, depth, freed, redis.call('LINDEX', list, 0) or '', ended}
for _, element in ipairs(expired) do answer[#answer + 1] = element end
return answer
)LUA";

const char* const kCancelScript = R"LUA(
local list, items = KEYS[1], KEYS[2]
local sending = redis.call('HGET', items, '/sending')
if sending and string.match(sending, '^(%S+)') == ARGV[1] then return {'sending'} end
local entry = redis.call('HGET', items, ARGV[1])
if not entry then return {'absent'} end
local freed, removed = #entry, ''
for _, element in ipairs(redis.call('LRANGE', list, 0, -1)) do
  if string.match(element, '(%S+)$') == ARGV[1] then
    redis.call('LREM', list, 1, element)
    freed, removed = freed + #element, element
    break
  end
end
redis.call('HDEL', items, ARGV[1])
if redis.call('LLEN', list) == 0 and not sending then
  redis.call('DEL', items)
else
  redis.call('HINCRBY', items, '/bytes', -freed)
end
return {'cancelled', freed, entry, removed}
)LUA";

const char* const kForgetBoxScript = R"LUA(
if redis.call('ZSCORE', KEYS[1], ARGV[1]) == ARGV[2] then return redis.call('ZREM', KEYS[1], ARGV[1]) end
return 0
)LUA";

namespace {

std::optional<std::int64_t> number(std::string_view text) {
  std::int64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return value;
}

// The next space-separated word of `text`; `text` moves past it.
std::string_view next_word(std::string_view& text) {
  auto space = text.find(' ');
  std::string_view word = text.substr(0, space);
  text = space == std::string_view::npos ? std::string_view{} : text.substr(space + 1);
  return word;
}

std::optional<std::string_view> text_at(const redisReply* reply, std::size_t i) {
  if (i >= reply->elements || reply->element[i]->type != REDIS_REPLY_STRING) return std::nullopt;
  return std::string_view(reply->element[i]->str, reply->element[i]->len);
}

std::optional<std::int64_t> integer_at(const redisReply* reply, std::size_t i) {
  if (i >= reply->elements || reply->element[i]->type != REDIS_REPLY_INTEGER) return std::nullopt;
  return static_cast<std::int64_t>(reply->element[i]->integer);
}

bool is_array(const redisReply* reply) { return reply && reply->type == REDIS_REPLY_ARRAY && reply->elements > 0; }

}  // namespace

std::string element_text(const QueueElement& e) {
  return std::to_string(e.expires_ms) + ' ' + std::to_string(e.timeout_ms) + ' ' + std::to_string(e.accepted_ms) +
         ' ' + std::to_string(e.charge) + ' ' + (e.token.empty() ? "-" : e.token) + ' ' + e.id;
}

std::optional<QueueElement> parse_element(std::string_view text) {
  auto expires = number(next_word(text));
  auto timeout = number(next_word(text));
  auto accepted = number(next_word(text));
  auto charge = number(next_word(text));
  std::string_view token = next_word(text);
  if (!expires || !timeout || !accepted || !charge || token.empty() || text.empty() ||
      text.find(' ') != std::string_view::npos) {
    return std::nullopt;
  }
  return QueueElement{*expires, *timeout, *accepted, *charge, token == "-" ? "" : std::string(token),
                      std::string(text)};
}

std::string sending_text(std::string_view id, std::string_view gateway, std::int64_t until_ms) {
  std::string text(id);
  text += ' ';
  text += gateway;
  text += ' ';
  text += std::to_string(until_ms);
  return text;
}

std::optional<Sending> parse_sending(std::string_view text) {
  std::string_view rest = text;
  std::string_view id = next_word(rest);
  std::string_view gateway = next_word(rest);
  auto until = number(rest);
  if (id.empty() || gateway.empty() || !until) return std::nullopt;
  return Sending{std::string(id), std::string(gateway), *until, std::string(text)};
}

std::optional<EnqueueAnswer> parse_enqueue(const redisReply* reply) {
  if (!is_array(reply)) return std::nullopt;
  auto status = text_at(reply, 0);
  auto depth = integer_at(reply, 1);
  if (!status || !depth) return std::nullopt;
  using S = EnqueueAnswer::Status;
  for (auto [name, value] : {std::pair{"queued", S::queued}, {"claimed", S::claimed}, {"exists", S::exists},
                             {"full", S::full}, {"full_bytes", S::full_bytes}}) {
    if (*status == name) return EnqueueAnswer{value, *depth};
  }
  return std::nullopt;
}

std::optional<StepAnswer> parse_step(const redisReply* reply) {
  if (!is_array(reply) || reply->elements < 7) return std::nullopt;
  auto status = text_at(reply, 0);
  auto sending = text_at(reply, 1);
  auto entry = text_at(reply, 2);
  auto depth = integer_at(reply, 3);
  auto freed = integer_at(reply, 4);
  auto head = text_at(reply, 5);
  auto ended = text_at(reply, 6);
  if (!status || !sending || !entry || !depth || !freed || !head || !ended) return std::nullopt;
  StepAnswer answer{StepAnswer::Status::idle, parse_sending(*sending), std::string(*entry), *depth, *freed,
                    parse_element(*head), parse_element(*ended), {}};
  using S = StepAnswer::Status;
  if (*status == "busy") answer.status = S::busy;
  else if (*status == "stale") answer.status = S::stale;
  else if (*status == "claimed") answer.status = S::claimed;
  else if (*status != "idle") return std::nullopt;
  if (answer.status != S::idle && !answer.sending) return std::nullopt;
  for (std::size_t i = 7; i < reply->elements; ++i) {
    auto text = text_at(reply, i);
    if (auto element = text ? parse_element(*text) : std::nullopt) answer.expired.push_back(std::move(*element));
  }
  return answer;
}

std::optional<CancelAnswer> parse_cancel(const redisReply* reply) {
  if (!is_array(reply)) return std::nullopt;
  auto status = text_at(reply, 0);
  if (!status) return std::nullopt;
  if (*status == "sending") return CancelAnswer{CancelAnswer::Status::sending, 0, {}, std::nullopt};
  if (*status == "absent") return CancelAnswer{CancelAnswer::Status::absent, 0, {}, std::nullopt};
  auto freed = integer_at(reply, 1);
  auto entry = text_at(reply, 2);
  auto element = text_at(reply, 3);
  if (*status != "cancelled" || !freed || !entry || !element) return std::nullopt;
  return CancelAnswer{CancelAnswer::Status::cancelled, *freed, std::string(*entry), parse_element(*element)};
}

}  // namespace boxgate::gateway
