#include "wordpiece_tokenizer.h"

#include <algorithm>
#include <stdexcept>

#include "json.h"
#include "schema.h"
#include "unicode.h"

namespace atom {

static int64_t lookup(const std::unordered_map<std::string, int64_t>& v, const std::string& t,
                      const std::string& path) {
  auto it = v.find(t);
  if (it == v.end()) throw std::runtime_error(path + ": vocab has no " + t);
  return it->second;
}

WordPieceTokenizer::WordPieceTokenizer(const std::string& path, int max_seq_length) : max_seq_(max_seq_length) {
  // Library errors (a key missing, a wrong type) become one line naming the file.
  try {
    read(path);
  } catch (const Json::exception& e) {
    throw std::runtime_error("tokenizer " + path + " could not be read: " + e.what());
  }
}

void WordPieceTokenizer::read(const std::string& path) {
  Json j = read_json_file(path, schema::limit::kTokenizerBytes, schema::limit::kDepth);
  const Json& model = j.at("model");
  if (model.at("type").get<std::string>() != "WordPiece") throw std::runtime_error(path + ": model is not WordPiece");
  for (const auto& [token, id] : model.at("vocab").items())
    vocab_[token] = json_index(id, schema::limit::kDim, path + ": vocab id of " + json_quote(token));
  prefix_ = model.at("continuing_subword_prefix").get<std::string>();
  max_chars_ = size_t(json_index(model.at("max_input_chars_per_word"), schema::limit::kDim, path + ": max_input_chars_per_word"));
  unk_ = lookup(vocab_, model.at("unk_token").get<std::string>(), path);
  cls_ = lookup(vocab_, "[CLS]", path);
  sep_ = lookup(vocab_, "[SEP]", path);
  pad_ = lookup(vocab_, "[PAD]", path);
  const Json& n = j.at("normalizer");
  if (n.is_null() || n.at("type").get<std::string>() != "BertNormalizer")
    throw std::runtime_error(path + ": only BertNormalizer is supported");
  clean_ = n.at("clean_text").get<bool>();
  chinese_ = n.at("handle_chinese_chars").get<bool>();
  lower_ = n.at("lowercase").get<bool>();
  strip_ = n.at("strip_accents").is_null() ? lower_ : n.at("strip_accents").get<bool>();
  if (j.at("pre_tokenizer").at("type").get<std::string>() != "BertPreTokenizer")
    throw std::runtime_error(path + ": only BertPreTokenizer is supported");
}

std::string WordPieceTokenizer::normalize(const std::string& text) const {
  std::vector<uint32_t> in, out, tmp;
  if (!uni::decode_utf8(text, in)) throw std::runtime_error("text is not valid UTF-8");
  for (uint32_t c : in) {
    uint32_t k = uni::classes(c);
    if (clean_) {
      if (c == 0 || c == 0xFFFD || ((k & uni::kOther) && c != '\t' && c != '\n' && c != '\r')) continue;
      if (k & uni::kSpace) c = ' ';
    }
    if (chinese_ && uni::is_cjk_ideograph(c)) {
      out.push_back(' ');
      out.push_back(c);
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  if (strip_) {
    tmp.clear();
    for (uint32_t c : out) {
      std::vector<uint32_t> d;
      uni::nfd(c, d);
      for (uint32_t x : d)
        if (!(uni::classes(x) & uni::kMn)) tmp.push_back(x);
    }
    out.swap(tmp);
  }
  if (lower_) {
    tmp.clear();
    for (uint32_t c : out) uni::lowercase(c, tmp);
    out.swap(tmp);
  }
  return uni::encode_utf8(out);
}

std::vector<int64_t> WordPieceTokenizer::encode(const std::string& text) const {
  std::vector<uint32_t> c;
  uni::decode_utf8(normalize(text), c);
  // Pre-tokenize: whitespace splits, punctuation is its own word.
  std::vector<std::vector<uint32_t>> words(1);
  for (uint32_t x : c) {
    uint32_t k = uni::classes(x);
    bool punct = (x < 128 && ((x >= 33 && x <= 47) || (x >= 58 && x <= 64) || (x >= 91 && x <= 96) ||
                              (x >= 123 && x <= 126))) ||
                 (k & uni::kPunct);
    if (k & uni::kSpace) {
      if (!words.back().empty()) words.emplace_back();
    } else if (punct) {
      if (!words.back().empty()) words.emplace_back();
      words.back().push_back(x);
      words.emplace_back();
    } else {
      words.back().push_back(x);
    }
  }
  std::vector<int64_t> ids{cls_};
  for (const auto& w : words) {
    if (w.empty()) continue;
    if (w.size() > max_chars_) {
      ids.push_back(unk_);
      continue;
    }
    std::vector<int64_t> pieces;
    size_t start = 0;
    bool bad = false;
    while (start < w.size()) {
      size_t end = w.size();
      int64_t found = -1;
      while (start < end) {
        std::string sub = uni::encode_utf8(std::vector<uint32_t>(w.begin() + long(start), w.begin() + long(end)));
        if (start > 0) sub = prefix_ + sub;
        auto it = vocab_.find(sub);
        if (it != vocab_.end()) {
          found = it->second;
          break;
        }
        --end;
      }
      if (found < 0) {
        bad = true;
        break;
      }
      pieces.push_back(found);
      start = end;
    }
    if (bad) ids.push_back(unk_);
    else ids.insert(ids.end(), pieces.begin(), pieces.end());
  }
  if (int(ids.size()) + 1 > max_seq_) ids.resize(size_t(max_seq_ - 1));
  ids.push_back(sep_);
  return ids;
}

void WordPieceTokenizer::batch(const std::vector<std::string>& texts, std::vector<int64_t>& ids,
                               std::vector<int64_t>& mask, int& len) const {
  std::vector<std::vector<int64_t>> rows;
  len = 0;
  for (const auto& t : texts) {
    rows.push_back(encode(t));
    len = std::max(len, int(rows.back().size()));
  }
  ids.assign(rows.size() * size_t(len), pad_);
  mask.assign(rows.size() * size_t(len), 0);
  for (size_t r = 0; r < rows.size(); ++r)
    for (size_t k = 0; k < rows[r].size(); ++k) {
      ids[r * size_t(len) + k] = rows[r][k];
      mask[r * size_t(len) + k] = 1;
    }
}

}  // namespace atom
