#include "manifest.h"

#include <fstream>
#include <stdexcept>

#include "sha256.h"

namespace atom {

static std::string inside(const Manifest& m, const std::string& file, const std::string& what) {
  if (file.empty() || file[0] == '/' || file.find("..") != std::string::npos)
    throw std::runtime_error("manifest: file of " + what + " escapes the artifact folder: " + file);
  return m.root + "/" + file;
}

static FileRecord record(const Manifest& m, const Json& entry, const std::string& what) {
  return FileRecord{inside(m, entry["file"].as_string(), what), entry["sha256"].as_string(),
                    uint64_t(entry["bytes"].as_int())};
}

static std::vector<FileRecord> module_records(const Manifest& m, const Json& modules, const std::string& name) {
  std::vector<FileRecord> out;
  for (const Json& entry : modules[name]["files"].items) out.push_back(record(m, entry, name));
  return out;
}

void verify_file(const FileRecord& r) {
  std::ifstream probe(r.path, std::ios::binary | std::ios::ate);
  if (!probe) throw std::runtime_error("missing artifact file " + r.path);
  const uint64_t size = uint64_t(probe.tellg());
  if (size != r.bytes)
    throw std::runtime_error("artifact " + r.path + " has " + std::to_string(size) + " bytes, manifest says " +
                             std::to_string(r.bytes) + " (truncated or replaced?)");
  if (sha256_file_hex(r.path) != r.sha256)
    throw std::runtime_error("artifact " + r.path + " does not match its sha256 in the manifest (corrupted or replaced)");
}

static std::string module_file(const Manifest& m, const Json& modules, const std::string& name,
                               const std::string& entry) {
  return inside(m, modules[name]["entry_points"][entry]["file"].as_string(), name);
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
    if (j["format"].as_string() != "atom-deploy-manifest" || j["format_version"].as_int() != 2)
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
    if (m.kv_style != "in_place")
      throw std::runtime_error("manifest: kv cache style " + m.kv_style + " is not supported");
    const Json& minilm_in = mods["minilm"]["entry_points"]["forward"]["inputs"][0];
    m.minilm_max_batch = int(minilm_in["dynamic"]["0"]["max"].as_int());
    const Json& toks = j["tokenizers"];
    m.tokenizer_records = {record(m, toks["decoder"], "the decoder tokenizer"),
                           record(m, toks["minilm"], "the MiniLM tokenizer")};
    m.decoder_tokenizer = m.tokenizer_records[0].path;
    m.minilm_tokenizer = m.tokenizer_records[1].path;
    m.encoder_records = module_records(m, mods, "video_encoder");
    m.decoder_records = module_records(m, mods, "decoder");
    m.minilm_records = module_records(m, mods, "minilm");
    m.minilm_max_seq = int(toks["minilm"]["max_seq_length"].as_int());
  } catch (const JsonError& e) {
    throw std::runtime_error(std::string("manifest: ") + e.what());
  }
  return m;
}

}  // namespace atom
