#include "ranking.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <stdexcept>

namespace atom {

std::vector<std::pair<size_t, double>> rank(const std::vector<std::vector<float>>& index,
                                            const std::vector<float>& query, size_t top) {
  std::vector<std::pair<size_t, double>> scored;
  for (size_t i = 0; i < index.size(); ++i) {
    if (index[i].size() != query.size()) throw std::runtime_error("embedding dimension mismatch");
    double dot = 0;
    for (size_t k = 0; k < query.size(); ++k) dot += double(index[i][k]) * double(query[k]);
    scored.emplace_back(i, dot);
  }
  std::stable_sort(scored.begin(), scored.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  if (scored.size() > top) scored.resize(top);
  return scored;
}

std::vector<std::vector<float>> read_embeddings(const std::string& path, size_t dim) {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw std::runtime_error("cannot open embeddings " + path);
  size_t bytes = size_t(f.tellg());
  if (bytes == 0 || bytes % (dim * sizeof(float)))
    throw std::runtime_error("embeddings " + path + " is not a float32 [n, " + std::to_string(dim) + "] file");
  f.seekg(0);
  std::vector<std::vector<float>> out(bytes / (dim * sizeof(float)), std::vector<float>(dim));
  for (auto& row : out) {
    f.read(reinterpret_cast<char*>(row.data()), std::streamsize(dim * sizeof(float)));
    for (float v : row)  // a NaN row would rank anywhere and print as null: refuse it, as read_clip does
      if (!std::isfinite(v)) throw std::runtime_error("embeddings " + path + " contains NaN or infinite values");
  }
  return out;
}

std::vector<std::pair<size_t, double>> rank_captions(Runner& r, const std::vector<Decoded>& captions,
                                                    const std::string& prompt, size_t top) {
  std::vector<std::string> texts;
  for (const auto& c : captions) texts.push_back(c.text);
  texts.push_back(prompt);  // embedded in the same MiniLM call as the captions
  auto embs = r.embed(texts);
  std::vector<float> query = embs.back();
  embs.pop_back();
  return rank(embs, query, top);
}

}  // namespace atom
