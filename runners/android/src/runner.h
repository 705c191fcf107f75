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

class Runner {
 public:
  explicit Runner(const std::string& artifacts);
  const Manifest& manifest() const { return m_; }

  std::vector<float> read_clip(const std::string& path) const;  // checks size and finiteness
  std::vector<float> encode(const std::vector<float>& clip);     // -> visual prefix [N_vis * dim]
  Decoded decode(const std::vector<int64_t>& prompt, const std::vector<float>& prefix, int beam, int steps);
  Decoded generate(const std::string& prompt, int beam, int steps);
  std::vector<std::vector<float>> embed(const std::vector<std::string>& texts);

  double load_seconds(const std::string& module) const;
  BpeTokenizer& tokenizer() { return *bpe_; }

 private:
  Manifest m_;
  std::unique_ptr<EtModule> encoder_, decoder_, minilm_;
  std::unique_ptr<BpeTokenizer> bpe_;
  std::unique_ptr<WordPieceTokenizer> wordpiece_;
  std::unique_ptr<Stepper> stepper_;
  std::unordered_set<int64_t> special_;
};

}  // namespace atom
