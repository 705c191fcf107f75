// The decode/clip contract read from manifest.json (the same keys the Python runner reads).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "json.h"

namespace atom {

// One file the manifest names, with the size and digest it was exported with.
struct FileRecord {
  std::string path;  // absolute
  std::string sha256;
  uint64_t bytes = 0;
};

struct Manifest {
  std::string root;  // folder holding manifest.json
  std::string backend;
  int decode_steps = 0, max_context = 0, max_batch = 0, beam_width = 0;
  int64_t bos_id = 0, eos_id = 0, pad_id = 0;
  int num_visual_tokens = 0, vocab_size = 0, dim = 0;
  std::vector<int> clip_shape;
  std::string kv_style;
  std::string encoder_file, decoder_file, minilm_file;  // absolute paths
  std::string decoder_tokenizer, minilm_tokenizer;
  int minilm_max_seq = 0, minilm_max_batch = 0;
  std::vector<FileRecord> encoder_records, decoder_records, minilm_records;  // each module's files
  std::vector<FileRecord> tokenizer_records;
  size_t clip_numel() const;
};

// Throws std::runtime_error with a one-line reason.
Manifest load_manifest(const std::string& folder);

// Size, then sha256: a truncated, corrupted or replaced artifact is refused before it is
// loaded, with the file named. Throws std::runtime_error.
void verify_file(const FileRecord& record);

}  // namespace atom
