#include "command_body.hpp"

#include <nlohmann/json.hpp>

namespace boxgate::gateway {

namespace {

// Validates without building a DOM and notes whether the top-level object
// already has an "id" key.
class TopLevelScan : public nlohmann::json_sax<nlohmann::json> {
 public:
  bool is_object = false;
  bool has_id = false;

  bool null() override { return scalar(); }
  bool boolean(bool) override { return scalar(); }
  bool number_integer(number_integer_t) override { return scalar(); }
  bool number_unsigned(number_unsigned_t) override { return scalar(); }
  bool number_float(number_float_t, const string_t&) override { return scalar(); }
  bool string(string_t&) override { return scalar(); }
  bool binary(binary_t&) override { return scalar(); }
  bool start_object(std::size_t) override {
    if (depth_ == 0) is_object = true;
    ++depth_;
    return true;
  }
  bool key(string_t& key) override {
    if (depth_ == 1 && key == "id") has_id = true;
    return true;
  }
  bool end_object() override { return --depth_, true; }
  bool start_array(std::size_t) override { return ++depth_, true; }
  bool end_array() override { return --depth_, true; }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  bool scalar() { return true; }
  int depth_ = 0;
};

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

}  // namespace

std::optional<std::string> command_payload(std::string_view body, const RequestId& id) {
  TopLevelScan scan;
  if (!nlohmann::json::sax_parse(body, &scan) || !scan.is_object) return std::nullopt;
  if (scan.has_id) {
    // Replace the caller's id: rare, so the simple DOM round trip is fine.
    auto command = nlohmann::json::parse(body);
    command["id"] = id.str();
    return command.dump();
  }
  // Common case: splice "id" in after the opening brace; the caller's bytes
  // stay as they were (ids need no JSON escaping).
  std::size_t open = body.find('{');
  std::size_t next = open + 1;
  while (next < body.size() && is_space(body[next])) ++next;
  bool empty = body[next] == '}';
  std::string out;
  out.reserve(body.size() + id.str().size() + 8);
  out.append("{\"id\":\"").append(id.str()).append(empty ? "\"" : "\",");
  out.append(body.substr(open + 1));
  return out;
}

}  // namespace boxgate::gateway
