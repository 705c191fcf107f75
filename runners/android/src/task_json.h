// The JSON shapes several tasks print: a decode (tokens and text) and embedding rows.
#pragma once
#include <vector>

#include "json.h"
#include "runner.h"

namespace atom {

Json decoded_json(const Decoded& d);  // {"tokens": [...], "text": "..."}
Json embeddings_json(const std::vector<std::vector<float>>& embs);  // {"embeddings": [[...], ...]}

}  // namespace atom
