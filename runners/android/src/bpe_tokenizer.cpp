#include "bpe_tokenizer.h"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <stdexcept>

#include "json.h"
#include "schema.h"
#include "unicode.h"

namespace atom {
namespace {

bool is_space(uint32_t c) { return uni::classes(c) & uni::kSpace; }
bool is_letter(uint32_t c) { return uni::classes(c) & uni::kLetter; }
bool is_number(uint32_t c) { return uni::classes(c) & uni::kNumber; }

std::string cfg(const Json& j, const char* key) {
  if (!j.contains(key)) return "";
  const Json& v = j.at(key);
  if (v.is_boolean()) return v.get<bool>() ? "true" : "false";
  if (v.is_string()) return v.get<std::string>();
  return v.is_null() ? "null" : "?";
}

}  // namespace

void BpeTokenizer::read(const std::string& path) {
  Json j = read_json_file(path, schema::limit::kTokenizerBytes, schema::limit::kDepth);
  const Json& model = j.at("model");
  if (model.at("type").get<std::string>() != "BPE") throw std::runtime_error(path + ": model is not BPE");
  // An empty Sequence (what tokenizers writes for a GGUF-converted vocabulary) normalizes nothing.
  const Json& norm = j.at("normalizer");
  bool no_op_norm = norm.is_null() || (norm.is_object() && norm.value("type", "") == "Sequence" &&
                                       norm.contains("normalizers") && norm.at("normalizers").empty());
  if (!no_op_norm) throw std::runtime_error(path + ": normalizers are not supported");
  const Json& pre = j.at("pre_tokenizer");
  if (pre.is_null() || pre.at("type").get<std::string>() != "ByteLevel" || cfg(pre, "add_prefix_space") != "false" ||
      cfg(pre, "use_regex") == "false")
    throw std::runtime_error(path + ": only ByteLevel(add_prefix_space=false, use_regex=true) is supported");
  if (model.contains("dropout") && !model.at("dropout").is_null())
    throw std::runtime_error(path + ": dropout is not supported");
  byte_fallback_ = cfg(model, "byte_fallback") == "true";
  for (const auto& [token, value] : model.at("vocab").items()) {
    int64_t id = json_index(value, schema::limit::kDim, path + ": vocab id of " + json_quote(token));
    vocab_[token] = id;
    if (size_t(id) >= id_to_token_.size()) id_to_token_.resize(size_t(id) + 1);
    id_to_token_[size_t(id)] = token;
  }
  int rank = 0;
  for (const Json& m : model.at("merges")) {
    std::string a, b;
    if (m.is_array()) {
      a = m.at(0).get<std::string>();
      b = m.at(1).get<std::string>();
    } else {
      const std::string s = m.get<std::string>();
      size_t sp = s.find(' ');
      if (sp == std::string::npos) throw std::runtime_error(path + ": merge without a space: " + json_quote(s));
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    }
    merge_rank_.emplace(a + '\x01' + b, rank++);
  }
  if (j.contains("added_tokens")) {
    for (const Json& t : j.at("added_tokens")) {
      int64_t id = json_index(t.at("id"), schema::limit::kDim, path + ": added token id");
      const std::string content = t.at("content").get<std::string>();
      added_.emplace_back(content, id);
      if (t.at("special").get<bool>()) special_.insert(id);
      if (size_t(id) >= id_to_token_.size()) id_to_token_.resize(size_t(id) + 1);
      id_to_token_[size_t(id)] = content;
    }
    // Longest content first, so overlapping added tokens match like HF (leftmost-longest).
    std::stable_sort(added_.begin(), added_.end(),
                     [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });
  }
}

std::vector<std::string> gpt2_split(const std::string& text) {
  std::vector<uint32_t> c;
  if (!uni::decode_utf8(text, c)) throw std::runtime_error("text is not valid UTF-8");
  std::vector<std::string> out;
  size_t n = c.size(), i = 0;
  auto piece = [&](size_t a, size_t b) {
    out.push_back(uni::encode_utf8(std::vector<uint32_t>(c.begin() + a, c.begin() + b)));
  };
  while (i < n) {
    // 1. contractions
    if (c[i] == '\'' && i + 1 < n) {
      uint32_t a = c[i + 1], b = i + 2 < n ? c[i + 2] : 0;
      size_t len = 0;
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) len = 3;
      else if (a == 's' || a == 't' || a == 'm' || a == 'd') len = 2;
      if (len) {
        piece(i, i + len);
        i += len;
        continue;
      }
    }
    size_t j = i + (c[i] == ' ' && i + 1 < n ? 1 : 0);
    // 2./3./4. optional space then a run of letters / numbers / other
    if (is_letter(c[j]) || is_number(c[j]) || (!is_space(c[j]))) {
      if (j == i + 1 || !is_space(c[i])) {
        size_t k = j;
        if (is_letter(c[j])) while (k < n && is_letter(c[k])) ++k;
        else if (is_number(c[j])) while (k < n && is_number(c[k])) ++k;
        else while (k < n && !is_space(c[k]) && !is_letter(c[k]) && !is_number(c[k])) ++k;
        piece(i, k);
        i = k;
        continue;
      }
    }
    // 5./6. whitespace: leave the last space for the next word when a non-space follows
    size_t k = i;
    while (k < n && is_space(c[k])) ++k;
    if (k < n && k - i > 1) --k;
    piece(i, k);
    i = k;
  }
  return out;
}

BpeTokenizer::BpeTokenizer(const std::string& path) {
  // Library errors (a key missing, a wrong type) become one line naming the file.
  try {
    read(path);
  } catch (const Json::exception& e) {
    throw std::runtime_error("tokenizer " + path + " could not be read: " + e.what());
  }
  // GPT-2 byte <-> printable character map.
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    uint32_t cp = printable ? uint32_t(b) : uint32_t(256 + extra++);
    byte_to_char_[b].clear();
    uni::append_utf8(byte_to_char_[b], cp);
    char_to_byte_[cp] = uint8_t(b);
  }
  // Byte fallback replaces a symbol missing from the vocabulary by its <0xXX> byte tokens.
  // A vocabulary without any of them (GGUF-converted byte-level ones) gives it nothing to
  // use, and the tokenizer behaves exactly as without it.
  if (byte_fallback_)
    for (int b = 0; b < 256; ++b) {
      char code[8];
      std::snprintf(code, sizeof code, "<0x%02X>", b);
      if (vocab_.count(code)) throw std::runtime_error(path + ": byte_fallback with <0xXX> tokens is not supported");
    }
}

void BpeTokenizer::bpe_word(const std::string& word, std::vector<int64_t>& out) const {
  std::vector<std::string> sym;
  for (unsigned char b : word) sym.push_back(byte_to_char_[b]);
  while (sym.size() > 1) {
    int best = INT_MAX;
    size_t at = 0;
    for (size_t k = 0; k + 1 < sym.size(); ++k) {
      auto it = merge_rank_.find(sym[k] + '\x01' + sym[k + 1]);
      if (it != merge_rank_.end() && it->second < best) {
        best = it->second;
        at = k;
      }
    }
    if (best == INT_MAX) break;
    sym[at] += sym[at + 1];
    sym.erase(sym.begin() + long(at) + 1);
  }
  for (const auto& s : sym) {
    auto it = vocab_.find(s);
    if (it != vocab_.end()) out.push_back(it->second);  // no unk token: unknown symbols are dropped
  }
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  size_t start = 0, i = 0;
  auto flush = [&](size_t end) {
    if (end > start)
      for (const auto& w : gpt2_split(text.substr(start, end - start))) bpe_word(w, ids);
  };
  while (i < text.size()) {
    bool matched = false;
    for (const auto& a : added_) {
      if (!a.first.empty() && text.compare(i, a.first.size(), a.first) == 0) {
        flush(i);
        ids.push_back(a.second);
        i += a.first.size();
        start = i;
        matched = true;
        break;
      }
    }
    if (!matched) ++i;
  }
  flush(text.size());
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids, const std::unordered_set<int64_t>& skip) const {
  std::string joined;
  for (int64_t id : ids) {
    if (skip.count(id) || special_.count(id) || id < 0 || size_t(id) >= id_to_token_.size()) continue;
    joined += id_to_token_[size_t(id)];
  }
  std::vector<uint32_t> cps;
  uni::decode_utf8(joined, cps);
  std::string bytes;
  for (uint32_t cp : cps) {
    auto it = char_to_byte_.find(cp);
    if (it != char_to_byte_.end()) bytes += char(it->second);
    else uni::append_utf8(bytes, cp);  // added non-special tokens keep their text
  }
  std::string text = uni::utf8_lossy(bytes);
  // Python str.strip(): whitespace at both ends.
  std::vector<uint32_t> t;
  uni::decode_utf8(text, t);
  auto ws = [](uint32_t c) { return (uni::classes(c) & uni::kSpace) || (c >= 0x1C && c <= 0x1F); };
  size_t a = 0, b = t.size();
  while (a < b && ws(t[a])) ++a;
  while (b > a && ws(t[b - 1])) --b;
  return uni::encode_utf8(std::vector<uint32_t>(t.begin() + long(a), t.begin() + long(b)));
}

}  // namespace atom
