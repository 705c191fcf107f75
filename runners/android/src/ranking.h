// Cosine search over embedding rows: ranking an index against a query, reading a saved index,
// and ranking captions against a request (MiniLM embeds both).
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "runner.h"

namespace atom {

// Ranks rows of `index` by dot product with `query` (unit vectors: cosine); stable on ties.
std::vector<std::pair<size_t, double>> rank(const std::vector<std::vector<float>>& index,
                                            const std::vector<float>& query, size_t top);
// MiniLM-embeds the captions and the prompt, then ranks the captions against the prompt.
std::vector<std::pair<size_t, double>> rank_captions(Runner& r, const std::vector<Decoded>& captions,
                                                    const std::string& prompt, size_t top);
// A float32 [n, dim] file; refuses a ragged size and NaN or infinite values.
std::vector<std::vector<float>> read_embeddings(const std::string& path, size_t dim);

}  // namespace atom
