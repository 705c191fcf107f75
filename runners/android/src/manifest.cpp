#include "manifest.h"

#include <stdexcept>

namespace atom {

static std::string module_file(const Manifest& m, const Json& modules, const std::string& name,
                               const std::string& entry) {
  const std::string& file = modules[name]["entry_points"][entry]["file"].as_string();
  if (file.empty() || file[0] == '/' || file.find("..") != std::string::npos)
    throw std::runtime_error("manifest: file of " + name + " escapes the artifact folder: " + file);
  return m.root + "/" + file;
}

size_t Manifest::clip_numel() const {
  size_t n = 1;
  for (int d : clip_shape) n *= size_t(d);
  return n;
}

Manifest load_manifest(const std::string& folder) {
  Manifest m;
  m.root = folder;
  Json j;
  try {
    j = Json::parse_file(folder + "/manifest.json");
  } catch (const JsonError& e) {
    throw std::runtime_error(std::string("manifest: ") + e.what());
  }
  try {
    if (j["format"].as_string() != "atom-deploy-manifest" || j["format_version"].as_int() != 1)
      throw std::runtime_error("manifest: unsupported format/version");
    m.backend = j["backend"].as_string();
    if (m.backend != "executorch")
      throw std::runtime_error("manifest: backend is " + m.backend + ", this runner needs executorch");
    const Json& d = j["decode"];
    m.decode_steps = int(d["decode_steps"].as_int());
    m.max_context = int(d["max_context"].as_int());
    m.max_batch = int(d["max_batch"].as_int());
    m.beam_width = int(d["beam_width"].as_int());
    m.bos_id = d["bos_id"].as_int();
    m.eos_id = d["eos_id"].as_int();
    m.pad_id = d["pad_id"].as_int();
    m.num_visual_tokens = int(d["num_visual_tokens"].as_int());
    m.vocab_size = int(d["vocab_size"].as_int());
    m.dim = int(d["dim"].as_int());
    for (const Json& v : j["clip"]["shape"].items) m.clip_shape.push_back(int(v.as_int()));
    const Json& mods = j["modules"];
    m.encoder_file = module_file(m, mods, "video_encoder", "forward");
    m.decoder_file = module_file(m, mods, "decoder", "text_decoder");
    if (module_file(m, mods, "decoder", "token_embedding") != m.decoder_file)
      throw std::runtime_error("manifest: decoder entry points in different files are not supported");
    m.minilm_file = module_file(m, mods, "minilm", "forward");
    m.kv_style = mods["decoder"]["kv_cache"]["style"].as_string();
    if (m.kv_style != "mutable_buffers")
      throw std::runtime_error("manifest: kv cache style " + m.kv_style + " is not supported");
    const Json& minilm_in = mods["minilm"]["entry_points"]["forward"]["inputs"][0];
    m.minilm_max_batch = int(minilm_in["dynamic"]["0"]["max"].as_int());
    const Json& toks = j["tokenizers"];
    m.decoder_tokenizer = folder + "/" + toks["decoder"]["file"].as_string();
    m.minilm_tokenizer = folder + "/" + toks["minilm"]["file"].as_string();
    m.minilm_max_seq = int(toks["minilm"]["max_seq_length"].as_int());
  } catch (const JsonError& e) {
    throw std::runtime_error(std::string("manifest: ") + e.what());
  }
  return m;
}

}  // namespace atom
