#include "task_json.h"

namespace atom {

Json decoded_json(const Decoded& d) { return {{"tokens", d.tokens}, {"text", d.text}}; }

Json embeddings_json(const std::vector<std::vector<float>>& embs) {
  Json rows = Json::array();
  for (const auto& e : embs) {
    Json row = Json::array();
    for (float v : e) row.push_back(json_number(v));
    rows.push_back(std::move(row));
  }
  return {{"embeddings", rows}};
}

}  // namespace atom
