#include "json.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace atom {

namespace {
struct TooDeep {};
}  // namespace

Json read_json_file(const std::string& path, uint64_t max_bytes, int max_depth) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw std::runtime_error("cannot open " + path);
  const auto size = uint64_t(f.tellg());
  if (size > max_bytes)
    throw std::runtime_error(path + " has " + std::to_string(size) + " bytes; the limit is " + std::to_string(max_bytes));
  f.seekg(0);
  std::string text(size, '\0');
  f.read(text.data(), std::streamsize(size));
  return parse_json(text, max_depth, path);
}

Json parse_json(const std::string& text, int max_depth, const std::string& what) {
  // nlohmann's parser keeps its own stack (no recursion); the callback stops it at the
  // limit, before a deep value exists to be copied or destroyed recursively.
  Json::parser_callback_t limit = [max_depth](int depth, Json::parse_event_t event, Json&) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) && depth >= max_depth)
      throw TooDeep{};
    return true;
  };
  try {
    return Json::parse(text, limit);
  } catch (const TooDeep&) {
    throw std::runtime_error(what + " is nested deeper than " + std::to_string(max_depth) + " levels");
  } catch (const Json::parse_error& e) {
    throw std::runtime_error(what + " is not valid JSON: " + e.what());
  }
}

int64_t json_index(const Json& v, int64_t limit, const std::string& what) {
  if (!v.is_number_integer() || (v.is_number_unsigned() ? v.get<uint64_t>() >= uint64_t(limit)
                                                         : v.get<int64_t>() < 0 || v.get<int64_t>() >= limit))
    throw std::runtime_error(what + " must be an integer in [0, " + std::to_string(limit) + "), got " + v.dump());
  return v.get<int64_t>();
}

std::string json_quote(const std::string& s) { return json_dump(Json(s)); }

std::string json_dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

double json_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.9g", v);
  return std::strtod(buf, nullptr);
}

}  // namespace atom
