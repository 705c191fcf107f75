// JSON through one library, nlohmann/json (vendored in third_party/), for reading and writing.
#pragma once
#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"

namespace atom {

using Json = nlohmann::json;

// Parses a file no larger than `max_bytes`, nested no deeper than `max_depth`. Any failure
// (missing, too large, not JSON, too deep) throws std::runtime_error with one line
// naming the file. The depth limit is enforced while parsing, so a deep file never
// builds a deep value.
Json read_json_file(const std::string& path, uint64_t max_bytes, int max_depth);

// Parses `text` as read_json_file does (same depth limit while parsing); errors name `what`.
Json parse_json(const std::string& text, int max_depth, const std::string& what);

// An integer in [0, limit), for values used as indexes (token ids): anything else throws
// std::runtime_error naming `what`.
int64_t json_index(const Json& v, int64_t limit, const std::string& what);

// A JSON string literal; invalid UTF-8 becomes U+FFFD, as Python's decode does.
std::string json_quote(const std::string& s);

// One line of JSON, strings repaired as json_quote repairs them: how the runner prints output.
std::string json_dump(const Json& j);

// `v` rounded to 9 significant digits, which round-trip a float32: the runner's numbers print
// short ("0.1", not "0.10000000149011612").
double json_number(double v);

}  // namespace atom
