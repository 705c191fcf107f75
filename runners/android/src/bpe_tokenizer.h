// Byte-level BPE (GPT-2 / Llama-3 style) read from a HF tokenizer.json.
//
// Supported: model.type "BPE" with vocab + merges (either "a b" strings or ["a","b"] pairs),
// no normalizer (or an empty Sequence), pre_tokenizer ByteLevel with add_prefix_space=false and use_regex=true
// (the GPT-2 split pattern 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+,
// Unicode classes from tools/gen_unicode.py), added tokens matched verbatim before
// pre-tokenization, decoder ByteLevel (invalid UTF-8 becomes U+FFFD). Anything else in the
// file (another pre-tokenizer or normalizer, prefix space, dropout, byte fallback with
// <0xXX> tokens to fall back to) is rejected at load time rather than silently tokenized differently.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace atom {

class BpeTokenizer {
 public:
  explicit BpeTokenizer(const std::string& path);
  std::vector<int64_t> encode(const std::string& text) const;  // no special tokens added
  // Skips special (added) tokens and `skip`, joins bytes, lossy UTF-8, strips whitespace
  // at both ends (as the Python runner's .strip()).
  std::string decode(const std::vector<int64_t>& ids, const std::unordered_set<int64_t>& skip) const;

 private:
  void read(const std::string& path);  // the tokenizer.json's model, merges and added tokens
  void bpe_word(const std::string& word, std::vector<int64_t>& out) const;
  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int> merge_rank_;  // key: left + '\x01' + right
  std::vector<std::pair<std::string, int64_t>> added_;  // content -> id
  std::unordered_set<int64_t> special_;
  std::string byte_to_char_[256];
  std::unordered_map<uint32_t, uint8_t> char_to_byte_;
  bool byte_fallback_ = false;
};

// The GPT-2 pre-tokenizer split (exposed for tests); input must be valid UTF-8.
std::vector<std::string> gpt2_split(const std::string& text);

}  // namespace atom
