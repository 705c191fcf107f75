// WordPiece for all-MiniLM-L6-v2, read from its HF tokenizer.json.
//
// BertNormalizer: clean text (drop NUL, U+FFFD and Cc/Cf/Cs/Co/Cn except \t\n\r; White_Space -> ' '),
// pad CJK ideographs with spaces, strip accents (NFD, drop Mn) when strip_accents is true or
// null-with-lowercase, lowercase per character. BertPreTokenizer: split on whitespace and
// isolate every punctuation character (ASCII punctuation or Unicode P*). WordPiece: greedy
// longest match with "##" continuations, [UNK] for a word that cannot be covered or is longer
// than max_input_chars_per_word. Then [CLS] ids [SEP], truncated to max_seq_length.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <vector>

namespace atom {

class WordPieceTokenizer {
 public:
  WordPieceTokenizer(const std::string& path, int max_seq_length);
  std::vector<int64_t> encode(const std::string& text) const;  // with [CLS]/[SEP]
  // Batch padded to the longest row: ids and attention mask, both [n, len] row-major.
  void batch(const std::vector<std::string>& texts, std::vector<int64_t>& ids, std::vector<int64_t>& mask,
             int& len) const;

 private:
  void read(const std::string& path);  // the tokenizer.json's vocab and normalizer settings
  std::string normalize(const std::string& text) const;
  std::unordered_map<std::string, int64_t> vocab_;
  int64_t cls_ = 101, sep_ = 102, unk_ = 100, pad_ = 0;
  std::string prefix_ = "##";
  size_t max_chars_ = 100;
  int max_seq_;
  bool clean_ = true, chinese_ = true, strip_ = true, lower_ = true;
};

}  // namespace atom
