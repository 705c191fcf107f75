// The decode/clip contract read from manifest.json (the same keys the Python runner reads).
#pragma once
#include <string>
#include <vector>

#include "json.h"

namespace atom {

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
  size_t clip_numel() const;
};

// Throws std::runtime_error with a one-line reason.
Manifest load_manifest(const std::string& folder);

}  // namespace atom
