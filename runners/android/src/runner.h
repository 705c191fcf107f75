// Runner: the three modules loaded once (mmap) plus tokenizers, serving every task.
#pragma once
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "bpe_tokenizer.h"
#include "decode.h"
#include "et_module.h"
#include "manifest.h"
#include "wordpiece_tokenizer.h"

namespace atom {

struct Decoded {
  std::vector<int64_t> tokens;  // trimmed after EOS
  std::string text;
};

// Which modules a Runner loads. Tasks use all three; the no-reuse benchmark loads one
// stage's modules at a time, as a pipeline with a model per stage would.
enum LoadModules : unsigned { kEncoder = 1, kDecoder = 2, kMiniLM = 4, kAllModules = 7 };

class Runner {
 public:
  explicit Runner(const std::string& artifacts, unsigned modules = kAllModules);
  const Manifest& manifest() const { return m_; }

  std::vector<float> read_clip(const std::string& path) const;  // checks size and finiteness
  std::vector<float> encode(const std::vector<float>& clip);     // -> visual prefix [N_vis * dim]
  Decoded decode(const std::vector<int64_t>& prompt, const std::vector<float>& prefix, int beam, int steps);
  // `decode` for `rows` visual prefixes at once ([rows * N_vis * dim]): rows x beam KV-cache
  // rows, one decode step for all of them (Session.decode_batch).
  std::vector<Decoded> decode_batch(const std::vector<int64_t>& prompt, const std::vector<float>& prefixes, int rows,
                                    int beam, int steps);
  int clips_per_batch(int beam) const;  // how many clips decode together at this beam
  Decoded generate(const std::string& prompt, int beam, int steps);
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts);

  double load_seconds(const std::string& module) const;  // 0 for a module this Runner did not load
  BpeTokenizer& tokenizer() { return *bpe_; }
  Stepper& stepper() { return *stepper_; }  // the decode loop's own stepper (latency timing)

 private:
  Manifest m_;
  std::unique_ptr<EtModule> encoder_, decoder_, minilm_;
  std::unique_ptr<BpeTokenizer> bpe_;
  std::unique_ptr<WordPieceTokenizer> wordpiece_;
  std::unique_ptr<Stepper> stepper_;
  std::unordered_set<int64_t> special_;
};

}  // namespace atom
