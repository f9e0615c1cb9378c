#include "json_oracle.hpp"

#include <algorithm>

#include <nlohmann/json.hpp>

namespace boxgate::fuzz {

namespace {

class FactsSax : public nlohmann::json_sax<nlohmann::json> {
 public:
  explicit FactsSax(JsonFacts& facts) : facts_(facts) {}

  bool null() override { return value(std::nullopt); }
  bool boolean(bool b) override {
    if (pending_online_ && facts_.online_count == 1) facts_.online = b;
    return value(std::nullopt);
  }
  bool number_integer(number_integer_t) override { return value(std::nullopt); }
  bool number_unsigned(number_unsigned_t) override { return value(std::nullopt); }
  bool number_float(number_float_t, const string_t&) override { return value(std::nullopt); }
  bool string(string_t& s) override { return value(s); }
  bool binary(binary_t&) override { return value(std::nullopt); }
  bool start_object(std::size_t) override { return open(true); }
  bool end_object() override { return close(); }
  bool start_array(std::size_t) override { return open(false); }
  bool end_array() override { return close(); }
  bool key(string_t& k) override {
    pending_id_ = depth_ == 1 && k == "id";
    if (pending_id_) ++facts_.id_count;
    pending_online_ = depth_ == 1 && k == "online";
    if (pending_online_) ++facts_.online_count;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override { return false; }

 private:
  bool open(bool object) {
    if (depth_ == 0) facts_.object = object;
    taken();
    ++depth_;
    facts_.depth = std::max(facts_.depth, depth_);
    return true;
  }
  bool close() {
    --depth_;
    return true;
  }
  bool value(std::optional<std::string> s) {
    if (pending_id_ && facts_.id_count == 1) facts_.id = std::move(s);
    taken();
    return true;
  }
  void taken() {
    pending_id_ = false;
    pending_online_ = false;
  }

  JsonFacts& facts_;
  std::size_t depth_ = 0;
  bool pending_id_ = false;
  bool pending_online_ = false;
};

}  // namespace

JsonFacts json_facts(std::string_view document) {
  JsonFacts facts;
  // The two leniencies of nlohmann that json::scan (RFC 8259) does not share.
  if (document.find('\0') != std::string_view::npos || document.substr(0, 3) == "\xEF\xBB\xBF") return facts;
  FactsSax sax(facts);
  facts.valid = nlohmann::json::sax_parse(document, &sax);
  return facts;
}

}  // namespace boxgate::fuzz
