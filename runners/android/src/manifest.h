// The decode/clip contract read from manifest.json (the same keys and checks as the Python
// runner's manifest.py and manifest_check.py), and the one rule for files: only files the
// manifest lists with a sha256, matching it, inside the artifact folder, are ever opened.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "chat.h"

namespace atom {

// One file the manifest names, with the size and digest it was exported with.
struct FileRecord {
  std::string root;  // the artifact folder
  std::string name;  // as the manifest names it, relative to root
  std::string path;  // root + "/" + name
  std::string sha256;
  uint64_t bytes = 0;
};

struct Manifest {
  std::string root;  // folder holding manifest.json
  std::string backend;
  int decode_steps = 0, max_context = 0, max_batch = 0, beam_width = 0;
  int64_t bos_id = 0, eos_id = 0, pad_id = 0;
  bool add_bos = true;           // generate: BOS before the prompt (the checkpoint's tokenizer rule)
  std::vector<int64_t> eos_ids;  // any of them ends a generation; eos_id first by default
  ChatParts chat;
  int num_visual_tokens = 0, vocab_size = 0, dim = 0;
  std::vector<int> clip_shape;
  std::string kv_style;
  // Entry points and tokenizers, each resolved through a hashed record.
  std::string encoder_file, decoder_file, minilm_file;
  std::string decoder_tokenizer, minilm_tokenizer;
  int minilm_max_seq = 0, minilm_max_batch = 0;
  std::vector<FileRecord> encoder_records, decoder_records, minilm_records;  // each module's files
  std::vector<FileRecord> tokenizer_records;
  size_t clip_numel() const;
};

// Every key the runner reads is checked for presence, type and range; throws
// std::runtime_error with one line naming the key.
Manifest load_manifest(const std::string& folder);

// Inside the folder (symlinks followed), then size, then sha256: a file that escapes the
// folder, or is truncated, corrupted or replaced, is refused before it is loaded, with
// the file named. Throws std::runtime_error.
void verify_file(const FileRecord& record);

}  // namespace atom
