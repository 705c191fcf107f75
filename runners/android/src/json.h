// Minimal JSON reader: enough for manifest.json and HF tokenizer.json files.
// Objects keep insertion order (vector of pairs) plus an index for lookup.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

namespace atom {

class Json {
 public:
  enum class Type { Null, Bool, Number, String, Array, Object };
  Type type = Type::Null;
  bool boolean = false;
  double number = 0;
  std::string str;
  std::vector<Json> items;                           // Array
  std::vector<std::pair<std::string, Json>> fields;  // Object, in file order

  static Json parse(const std::string& text);
  static Json parse_file(const std::string& path);

  bool is_null() const { return type == Type::Null; }
  bool has(const std::string& key) const;
  const Json& operator[](const std::string& key) const;  // throws if missing
  const Json& operator[](size_t i) const;
  size_t size() const { return type == Type::Array ? items.size() : fields.size(); }
  int64_t as_int() const;
  double as_double() const;
  const std::string& as_string() const;
  bool as_bool() const;
};

struct JsonError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// JSON string escaping for output.
std::string json_quote(const std::string& s);

}  // namespace atom
