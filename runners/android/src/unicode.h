// UTF-8 <-> code points and the few Unicode properties the tokenizers need
// (tables generated from Python's unicodedata by tools/gen_unicode.py).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace atom::uni {

enum : uint32_t { kLetter = 1, kNumber = 2, kSpace = 4, kMn = 8, kPunct = 16, kOther = 32, kMark = 64 };

// Decodes UTF-8; returns false on invalid input.
bool decode_utf8(const std::string& s, std::vector<uint32_t>& out);
void append_utf8(std::string& out, uint32_t cp);
std::string encode_utf8(const std::vector<uint32_t>& cps);
// Like Rust's String::from_utf8_lossy: each maximal invalid subpart becomes U+FFFD.
std::string utf8_lossy(const std::string& bytes);

uint32_t classes(uint32_t cp);
void lowercase(uint32_t cp, std::vector<uint32_t>& out);  // full per-char mapping
void nfd(uint32_t cp, std::vector<uint32_t>& out);        // canonical decomposition of one char
bool is_cjk_ideograph(uint32_t cp);                        // BERT's "Chinese character" ranges

}  // namespace atom::uni
