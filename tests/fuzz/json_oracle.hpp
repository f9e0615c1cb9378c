#pragma once
// An independent reading of a JSON document for the fuzz targets: nlohmann's
// SAX parser (iterative: no recursion, whatever the depth) counts the
// top-level "id" members and the nesting depth, which a DOM cannot show
// (nlohmann keeps only the last of duplicate keys).

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace boxgate::fuzz {

struct JsonFacts {
  bool valid = false;             // nlohmann accepts it, minus the leniencies json::scan does not share
  bool object = false;            // the top-level value is an object
  std::size_t depth = 0;          // deepest nesting of objects and arrays
  std::size_t id_count = 0;       // top-level members named "id"
  std::optional<std::string> id;  // the first one's value, when it is a string
  std::size_t online_count = 0;   // top-level members named "online"
  std::optional<bool> online;     // the first one's value, when it is a boolean
};

JsonFacts json_facts(std::string_view document);

}  // namespace boxgate::fuzz
