#pragma once
// The one strict query parser every endpoint uses (docs/contract.md): a
// parameter the endpoint does not take is 400 invalid_query, never ignored;
// one it takes may appear once. Names and values are read as sent (never
// percent-decoded: a caller's %-escapes never turn into the bytes a check
// looks for). Loop thread only for read_query(); the rest is pure.

#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "api/errors.hpp"
#include "boxgate/http/server.hpp"

namespace boxgate::gateway {

// One parameter an endpoint takes.
struct QueryParamSpec {
  std::string_view name;
  Error error;                     // answered when it is repeated (or `valid` refuses its value)
  const char* message = nullptr;   // nullptr: "<name> is given more than once."
  // Checked in the order the parameters come, when given; nullptr: the
  // endpoint checks the value itself after the parse.
  bool (*valid)(std::string_view value) = nullptr;
};

// What a refused query is answered with.
struct QueryProblem {
  Error error;
  std::string message;
};

// The parameters of a query that passed, by name.
class Query {
 public:
  std::optional<std::string_view> get(std::string_view name) const;

 private:
  friend std::variant<Query, QueryProblem> parse_query(std::string_view, std::initializer_list<QueryParamSpec>);
  std::vector<std::pair<std::string_view, std::string_view>> values_;
};

// Parses `raw` (views into it) against the parameters an endpoint takes
// (none: any parameter is refused). Pure.
std::variant<Query, QueryProblem> parse_query(std::string_view raw, std::initializer_list<QueryParamSpec> takes);

// parse_query() on the exchange's query; on a problem answers 400 (with the
// ids given) and returns nullopt.
std::optional<Query> read_query(http::Exchange& ex, std::initializer_list<QueryParamSpec> takes,
                                const std::string* request_id, const std::string* box_id);

// Plain decimal digits only (no sign, no space), at most `max_digits` of
// them, from `min` to `max`; nullopt otherwise. Pure.
std::optional<std::int64_t> parse_decimal(std::string_view text, std::size_t max_digits, std::int64_t min,
                                          std::int64_t max);

}  // namespace boxgate::gateway
