#include "api/query.hpp"

#include <algorithm>

namespace boxgate::gateway {

namespace {

std::string unknown_message(std::string_view name, std::initializer_list<QueryParamSpec> takes) {
  if (takes.size() == 0) return "This endpoint takes no query parameters.";
  std::string message = "Unknown query parameter '" + quoted_name(name) + "'; ";
  message += takes.size() == 1 ? "the only one is " : "the parameters are ";
  bool first = true;
  for (const QueryParamSpec& spec : takes) {
    if (!first) message += ", ";
    message += spec.name;
    first = false;
  }
  return message + ".";
}

QueryProblem problem_of(const QueryParamSpec& spec) {
  return {spec.error, spec.message ? std::string(spec.message) : std::string(spec.name) + " is given more than once."};
}

}  // namespace

std::optional<std::string_view> Query::get(std::string_view name) const {
  for (const auto& [n, v] : values_) {
    if (n == name) return v;
  }
  return std::nullopt;
}

std::variant<Query, QueryProblem> parse_query(std::string_view raw, std::initializer_list<QueryParamSpec> takes) {
  Query query;
  for (const http::QueryParam& param : http::split_query(raw)) {
    auto spec = std::find_if(takes.begin(), takes.end(), [&](const QueryParamSpec& s) { return s.name == param.name; });
    if (spec == takes.end()) return QueryProblem{Error::invalid_query, unknown_message(param.name, takes)};
    if (query.get(param.name) || (spec->valid && !spec->valid(param.value))) return problem_of(*spec);
    query.values_.emplace_back(param.name, param.value);
  }
  return query;
}

std::optional<Query> read_query(http::Exchange& ex, std::initializer_list<QueryParamSpec> takes,
                                const std::string* request_id, const std::string* box_id) {
  auto parsed = parse_query(ex.raw_query(), takes);
  if (auto* problem = std::get_if<QueryProblem>(&parsed)) {
    reply_error(ex, problem->error, problem->message, request_id, box_id);
    return std::nullopt;
  }
  return std::get<Query>(std::move(parsed));
}

std::optional<std::int64_t> parse_decimal(std::string_view text, std::size_t max_digits, std::int64_t min,
                                          std::int64_t max) {
  if (text.empty() || text.size() > max_digits || text.size() > 18) return std::nullopt;
  std::int64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
  }
  if (value < min || value > max) return std::nullopt;
  return value;
}

}  // namespace boxgate::gateway
