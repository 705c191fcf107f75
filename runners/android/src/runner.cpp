#include "runner.h"

#include <cmath>
#include <fstream>
#include <stdexcept>

namespace atom {

using executorch::extension::make_tensor_ptr;
using executorch::runtime::EValue;

Runner::Runner(const std::string& artifacts, unsigned modules) : m_(load_manifest(artifacts)) {
  // Only what this runner loads is hashed: a no-reuse stage pays for its own module alone.
  std::vector<const FileRecord*> checked;
  for (const FileRecord& r : m_.tokenizer_records) checked.push_back(&r);
  for (auto [bit, records] : {std::pair{kEncoder, &m_.encoder_records}, std::pair{kDecoder, &m_.decoder_records},
                              std::pair{kMiniLM, &m_.minilm_records}})
    if (modules & bit)
      for (const FileRecord& r : *records) checked.push_back(&r);
  for (const FileRecord* r : checked) verify_file(*r);
  if (modules & kEncoder)
    encoder_ = std::make_unique<EtModule>("video_encoder", m_.encoder_file, std::vector<std::string>{"forward"});
  if (modules & kDecoder) {
    decoder_ = std::make_unique<EtModule>("decoder", m_.decoder_file,
                                          std::vector<std::string>{"token_embedding", "text_decoder"});
    stepper_ = std::make_unique<Stepper>(*decoder_, m_.dim);
  }
  if (modules & kMiniLM)
    minilm_ = std::make_unique<EtModule>("minilm", m_.minilm_file, std::vector<std::string>{"forward"});
  bpe_ = std::make_unique<BpeTokenizer>(m_.decoder_tokenizer);
  wordpiece_ = std::make_unique<WordPieceTokenizer>(m_.minilm_tokenizer, m_.minilm_max_seq);
  special_ = {m_.bos_id, m_.eos_id, m_.pad_id};
  special_.insert(m_.eos_ids.begin(), m_.eos_ids.end());
}

double Runner::load_seconds(const std::string& module) const {
  const EtModule* m = module == "video_encoder" ? encoder_.get() : module == "decoder" ? decoder_.get() : minilm_.get();
  return m ? m->load_seconds() : 0.0;
}

static void require(const void* module, const char* name) {
  if (!module) throw std::logic_error(std::string("this runner was built without the ") + name + " module");
}

std::vector<float> Runner::read_clip(const std::string& path) const {
  std::ifstream f(path, std::ios::binary | std::ios::ate);
  if (!f) throw std::runtime_error("cannot open clip " + path);
  size_t bytes = size_t(f.tellg());
  size_t want = m_.clip_numel() * sizeof(float);
  if (bytes != want)
    throw std::runtime_error("clip " + path + " has " + std::to_string(bytes) + " bytes, expected " +
                             std::to_string(want) + " (float32 clip of the manifest's shape)");
  std::vector<float> clip(m_.clip_numel());
  f.seekg(0);
  f.read(reinterpret_cast<char*>(clip.data()), std::streamsize(want));
  for (float v : clip)
    if (!std::isfinite(v)) throw std::runtime_error("clip " + path + " contains NaN or infinite values");
  return clip;
}

std::vector<float> Runner::encode(const std::vector<float>& clip) {
  require(encoder_.get(), "video_encoder");
  std::vector<executorch::aten::SizesType> shape(m_.clip_shape.begin(), m_.clip_shape.end());
  auto t = make_tensor_ptr(shape, std::vector<float>(clip));
  FloatOut out = encoder_->run("forward", {EValue(*t)});
  if (out.data.size() != size_t(m_.num_visual_tokens) * m_.dim)
    throw EtError("module video_encoder method forward: unexpected output size");
  return std::move(out.data);
}

static void check_beam(int beam, int max_batch) {
  if (beam < 1 || beam > max_batch)
    throw std::runtime_error("beam must be between 1 and " + std::to_string(max_batch) + ", got " +
                             std::to_string(beam));
}

int Runner::clips_per_batch(int beam) const {
  check_beam(beam, m_.max_batch);
  return m_.max_batch / beam;
}

Decoded Runner::decode(const std::vector<int64_t>& prompt, const std::vector<float>& prefix, int beam, int steps,
                       bool bos) {
  return decode_batch(prompt, prefix, 1, beam, steps, bos).at(0);
}

std::vector<Decoded> Runner::decode_batch(const std::vector<int64_t>& prompt_in, const std::vector<float>& prefixes,
                                          int rows, int beam, int steps, bool bos) {
  require(decoder_.get(), "decoder");
  check_beam(beam, m_.max_batch);
  if (rows < 1 || rows * beam > m_.max_batch)
    throw std::runtime_error(std::to_string(rows) + " prompts at beam " + std::to_string(beam) + " need " +
                             std::to_string(rows * beam) + " KV-cache rows; the export has " +
                             std::to_string(m_.max_batch));
  if (steps < 1) throw std::runtime_error("steps must be at least 1");
  int prefix_len = int(prefixes.size() / size_t(rows) / size_t(m_.dim));
  int room = prompt_room(m_.max_context, prefix_len, steps, bos);
  std::vector<int64_t> prompt = prompt_in;
  if (int(prompt.size()) > room) prompt.resize(size_t(room));  // same truncation as the Python runner
  Prefilled p = prefill(*stepper_, bos ? m_.bos_id : -1, prompt, prefixes, rows);
  std::vector<std::vector<int64_t>> tokens;
  if (beam == 1) {
    tokens = greedy_rows(*stepper_, p.logits, p.next_pos, steps);
  } else {
    for (BeamResult& b : beam_search_groups(*stepper_, p.logits, p.next_pos, steps, m_.eos_id, beam))
      tokens.push_back(std::move(b.tokens));
  }
  std::vector<Decoded> out;
  for (const auto& row : tokens) {
    Decoded d;
    d.tokens = trim_after_any_eos(row, m_.eos_ids);
    d.text = bpe_->decode(d.tokens, special_);
    out.push_back(std::move(d));
  }
  return out;
}

std::vector<std::vector<float>> Runner::embed(const std::vector<std::string>& texts) {
  require(minilm_.get(), "minilm");
  if (texts.empty()) throw std::runtime_error("embed got an empty list of texts");
  std::vector<std::vector<float>> out;
  for (size_t start = 0; start < texts.size(); start += size_t(m_.minilm_max_batch)) {
    std::vector<std::string> chunk(texts.begin() + long(start),
                                   texts.begin() + long(std::min(texts.size(), start + size_t(m_.minilm_max_batch))));
    std::vector<int64_t> ids, mask;
    int len = 0;
    wordpiece_->batch(chunk, ids, mask, len);
    int rows = int(chunk.size());
    auto ti = make_tensor_ptr({rows, len}, std::move(ids));
    auto tm = make_tensor_ptr({rows, len}, std::move(mask));
    FloatOut r = minilm_->run("forward", {EValue(*ti), EValue(*tm)});
    size_t dim = r.data.size() / size_t(rows);
    for (int k = 0; k < rows; ++k)
      out.emplace_back(r.data.begin() + long(k * dim), r.data.begin() + long((k + 1) * dim));
  }
  return out;
}

}  // namespace atom
