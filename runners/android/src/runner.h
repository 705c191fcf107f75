// Runner: the three modules loaded once (mmap) plus tokenizers, serving every task.
#pragma once
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "bpe_tokenizer.h"
#include "chat.h"
#include "decode.h"
#include "et_module.h"
#include "manifest.h"
#include "wordpiece_tokenizer.h"

namespace atom {

struct Decoded {
  std::vector<int64_t> tokens;  // trimmed after EOS
  std::string text;
};

// Tokens before the first EOS, whichever of the manifest's EOS ids it is (prompts.py trim).
std::vector<int64_t> trim_after_any_eos(const std::vector<int64_t>& tokens, const std::vector<int64_t>& eos_ids);

// Which modules a Runner loads. Tasks use all three; the no-reuse benchmark loads one
// stage's modules at a time, as a pipeline with a model per stage would.
enum LoadModules : unsigned { kEncoder = 1, kDecoder = 2, kMiniLM = 4, kAllModules = 7 };

class Runner {
 public:
  explicit Runner(const std::string& artifacts, unsigned modules = kAllModules);
  const Manifest& manifest() const { return m_; }

  std::vector<float> read_clip(const std::string& path) const;  // checks size and finiteness
  std::vector<float> encode(const std::vector<float>& clip);     // -> visual prefix [N_vis * dim]
  // bos=false: no BOS before the prompt (the checkpoint's tokenizer adds none; chat templates carry their own).
  Decoded decode(const std::vector<int64_t>& prompt, const std::vector<float>& prefix, int beam, int steps,
                 bool bos = true);
  // `decode` for `rows` visual prefixes at once ([rows * N_vis * dim]): rows x beam KV-cache
  // rows, one decode step for all of them (Session.decode_batch).
  std::vector<Decoded> decode_batch(const std::vector<int64_t>& prompt, const std::vector<float>& prefixes, int rows,
                                    int beam, int steps, bool bos = true);
  int clips_per_batch(int beam) const;  // how many clips decode together at this beam
  // generate.cpp, mirroring Session.generate / Session.chat: the checkpoint's BOS rule; a
  // prompt longer than the context is an error, or with `truncate` keeps its end (the
  // pipelines pass true, as the Python pipelines do; the CLI passes its --truncate).
  Decoded generate(const std::string& prompt, int beam, int steps, bool truncate = true);
  Decoded chat(const std::vector<ChatMessage>& messages, int beam, int steps, bool truncate);
  std::vector<int64_t> chat_ids(const std::vector<ChatMessage>& messages);  // as Session.chat_ids
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
  Decoded generate_ids(std::vector<int64_t> ids, int beam, int steps, bool bos, bool truncate);
};

}  // namespace atom
