#include "manifest.h"

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <utility>

#include "json.h"
#include "schema.h"
#include "sha256.h"

namespace atom {

namespace k = schema::key;
namespace limit = schema::limit;

namespace {

std::string describe(const Json& v) {
  if (v.is_object()) return "an object";
  if (v.is_array()) return "a list";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_null()) return "null";
  if (v.is_number_float()) return "float " + v.dump();
  return "int " + v.dump();
}

std::string shorten(const std::string& text) {  // a value for a one-line message
  std::string out = json_quote(text);
  return out.size() <= 60 ? out : out.substr(0, 57) + "...";
}

// Reads keys out of the manifest; every failure is one line naming the key's full path.
class Reader {
 public:
  explicit Reader(std::string where) : where_(std::move(where)) {}

  [[noreturn]] void fail(const std::string& key, const std::string& problem) const {
    throw std::runtime_error(where_ + ": " + key + " " + problem);
  }
  static std::string join(const std::string& parent, const std::string& name) {
    return parent.empty() ? name : parent + "." + name;
  }
  const Json& get(const Json& obj, const std::string& parent, const std::string& name) const {
    auto it = obj.find(name);
    if (it == obj.end()) fail(join(parent, name), "is missing");
    return *it;
  }
  const Json& object(const Json& obj, const std::string& parent, const std::string& name) const {
    const Json& v = get(obj, parent, name);
    if (!v.is_object()) fail(join(parent, name), "must be an object, got " + describe(v));
    return v;
  }
  const Json& list(const Json& obj, const std::string& parent, const std::string& name, size_t min_len = 1) const {
    const Json& v = get(obj, parent, name);
    if (!v.is_array()) fail(join(parent, name), "must be a list, got " + describe(v));
    if (v.size() < min_len) fail(join(parent, name), "must have at least " + std::to_string(min_len) + " item(s)");
    return v;
  }
  int64_t integer(const Json& obj, const std::string& parent, const std::string& name, int64_t lo = 1,
                  int64_t hi = limit::kDim) const {
    return integer_value(get(obj, parent, name), join(parent, name), lo, hi);
  }
  int64_t integer_value(const Json& v, const std::string& key, int64_t lo = 1, int64_t hi = limit::kDim) const {
    if (!v.is_number_integer()) fail(key, "must be an integer, got " + describe(v));
    // nlohmann keeps a non-negative integer as uint64 (it may exceed INT64_MAX), a negative one as int64.
    const bool in_range = v.is_number_unsigned()
                              ? v.get<uint64_t>() <= uint64_t(hi) && (lo <= 0 || v.get<uint64_t>() >= uint64_t(lo))
                              : v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
    if (!in_range)
      fail(key, "must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + v.dump());
    return v.get<int64_t>();
  }
  std::string text(const Json& obj, const std::string& parent, const std::string& name) const {
    const Json& v = get(obj, parent, name);
    if (!v.is_string()) fail(join(parent, name), "must be a string, got " + describe(v));
    return v.get<std::string>();
  }
  // A file name relative to the artifact folder: no NUL, no absolute path, no "..".
  std::string file_name(const Json& obj, const std::string& parent) const {
    const std::string key = join(parent, k::kFile), name = text(obj, parent, k::kFile);
    if (name.empty() || name.size() > limit::kNameChars)
      fail(key, "must be 1 to " + std::to_string(limit::kNameChars) + " characters, got " + std::to_string(name.size()));
    for (unsigned char ch : name)
      if (ch < 0x20 || ch == 0x7f || ch == '\\')
        fail(key, "contains a NUL, control character or backslash: " + shorten(name));
    bool dotdot = false;
    for (size_t start = 0; start <= name.size();) {
      size_t end = name.find('/', start);
      if (end == std::string::npos) end = name.size();
      dotdot |= name.compare(start, end - start, "..") == 0 && end - start == 2;
      start = end + 1;
    }
    if (name[0] == '/' || dotdot) fail(key, "names a file outside the artifact folder: " + shorten(name));
    return name;
  }
  // Sizes: positive integers (or axis names, where `symbolic`), at most kRank of them.
  std::vector<int64_t> shape(const Json& v, const std::string& key, bool symbolic) const {
    if (!v.is_array() || v.empty() || v.size() > limit::kRank)
      fail(key, "must be a list of 1 to " + std::to_string(limit::kRank) + " sizes, got " + describe(v));
    std::vector<int64_t> out;
    for (size_t i = 0; i < v.size(); ++i)
      if (!(symbolic && v[i].is_string())) out.push_back(integer_value(v[i], key + "[" + std::to_string(i) + "]"));
    return out;
  }
  // The float32 bytes of a tensor of this shape stay under the limit; the product is
  // checked before each multiplication, so it cannot overflow.
  void tensor_bytes(const std::vector<int64_t>& shape, const std::string& key) const {
    uint64_t bytes = sizeof(float);
    for (int64_t d : shape) {
      if (bytes > limit::kTensorBytes / uint64_t(d))
        fail(key, "would take more than " + std::to_string(limit::kTensorBytes >> 30) +
                      " GiB as float32 (the limit)");
      bytes *= uint64_t(d);
    }
  }

 private:
  std::string where_;
};

// Width limit, walked without recursion (the parser has already enforced the depth).
void check_width(const Json& root, const Reader& r) {
  std::vector<const Json*> stack{&root};
  while (!stack.empty()) {
    const Json* v = stack.back();
    stack.pop_back();
    if (!v->is_structured()) continue;
    if (v->size() > limit::kItems)
      r.fail("manifest", "has an object or list of " + std::to_string(v->size()) + " items; the limit is " +
                             std::to_string(limit::kItems));
    for (const Json& child : *v) stack.push_back(&child);
  }
}

FileRecord file_record(const Reader& r, const Json& rec, const std::string& key, const std::string& root) {
  FileRecord out;
  out.root = root;
  out.name = r.file_name(rec, key);
  out.path = root + "/" + out.name;
  out.sha256 = r.text(rec, key, k::kSha256);
  bool hex = out.sha256.size() == 64;
  for (char ch : out.sha256) hex &= (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f');
  if (!hex) r.fail(Reader::join(key, k::kSha256), "must be 64 lowercase hex digits, got " + shorten(out.sha256));
  out.bytes = uint64_t(r.integer(rec, key, k::kBytes, 0, int64_t(1) << 62));
  return out;
}

void tensor_spec(const Reader& r, const Json& t, const std::string& key) {
  r.text(t, key, k::kName);
  r.text(t, key, k::kDtype);
  const std::string skey = Reader::join(key, k::kShape);
  const Json& shape = r.get(t, key, k::kShape);
  r.shape(shape, skey, true);
  const Json& dynamic = r.object(t, key, k::kDynamic);
  const std::string dkey = Reader::join(key, k::kDynamic);
  for (auto it = dynamic.begin(); it != dynamic.end(); ++it) {
    const std::string akey = dkey + "." + it.key();
    bool digits = !it.key().empty() && it.key().size() < 3;
    for (char ch : it.key()) digits &= ch >= '0' && ch <= '9';
    if (!digits || size_t(std::stoi(it.key())) >= shape.size())
      r.fail(akey, "is not an axis of " + skey + " (rank " + std::to_string(shape.size()) + ")");
    if (!it.value().is_object()) r.fail(akey, "must be an object, got " + describe(it.value()));
    int64_t low = r.integer(it.value(), akey, k::kMin, 0);
    r.integer(it.value(), akey, k::kMax, std::max<int64_t>(low, 1));
  }
}

struct ModuleFiles {
  std::vector<FileRecord> records;
  const FileRecord& entry_file(const Reader& r, const std::string& key, const std::string& name) const {
    for (const FileRecord& f : records)
      if (f.name == name) return f;
    r.fail(key, "names " + shorten(name) + ", which is not in the module's hashed files");
  }
};

// A module's files and entry points; returns the records, and each entry point's file
// resolved through them (nothing unhashed can be named).
ModuleFiles read_module(const Reader& r, const Json& modules, const std::string& name,
                        const std::vector<const char*>& entries, const std::string& root,
                        std::vector<std::string>* entry_paths, const Json** module_out) {
  const std::string key = Reader::join(k::kModules, name);
  const Json& module = r.object(modules, k::kModules, name);
  *module_out = &module;
  ModuleFiles files;
  const Json& list = r.list(module, key, k::kFiles);
  const std::string fkey = Reader::join(key, k::kFiles);
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string ikey = fkey + "[" + std::to_string(i) + "]";
    if (!list[i].is_object()) r.fail(ikey, "must be an object, got " + describe(list[i]));
    files.records.push_back(file_record(r, list[i], ikey, root));
  }
  const Json& eps = r.object(module, key, k::kEntryPoints);
  const std::string ekey = Reader::join(key, k::kEntryPoints);
  for (const char* entry : entries) {
    const Json& spec = r.object(eps, ekey, entry);
    const std::string skey = Reader::join(ekey, entry);
    const std::string file = r.file_name(spec, skey);
    entry_paths->push_back(files.entry_file(r, Reader::join(skey, k::kFile), file).path);
    for (const char* side : {k::kInputs, k::kOutputs}) {
      const Json& tensors = r.list(spec, skey, side);
      for (size_t i = 0; i < tensors.size(); ++i) {
        const std::string tkey = Reader::join(skey, side) + "[" + std::to_string(i) + "]";
        if (!tensors[i].is_object()) r.fail(tkey, "must be an object, got " + describe(tensors[i]));
        tensor_spec(r, tensors[i], tkey);
      }
    }
  }
  return files;
}

// A chat string: present, a string, at most kChatBytes (Python: manifest_check._check_chat).
std::string chat_text(const Reader& r, const Json& obj, const std::string& parent, const std::string& name) {
  std::string v = r.text(obj, parent, name);
  if (v.size() > limit::kChatBytes)
    r.fail(Reader::join(parent, name), "has more than " + std::to_string(limit::kChatBytes) + " bytes of UTF-8 (the limit)");
  return v;
}

// The checkpoint's conventions (issue 23), each optional for manifests written before them.
void read_conventions(const Reader& r, const Json& d, const Json& j, Manifest& m) {
  if (d.contains(k::kAddBos)) {
    const Json& v = d[k::kAddBos];
    if (!v.is_boolean()) r.fail(Reader::join(k::kDecode, k::kAddBos), "must be a boolean, got " + describe(v));
    m.add_bos = v.get<bool>();
  }
  m.eos_ids = {m.eos_id};
  if (d.contains(k::kEosIds)) {
    const std::string key = Reader::join(k::kDecode, k::kEosIds);
    const Json& ids = r.list(d, k::kDecode, k::kEosIds);
    if (ids.size() > limit::kEosIds)
      r.fail(key, "has " + std::to_string(ids.size()) + " ids; the limit is " + std::to_string(limit::kEosIds));
    m.eos_ids.clear();
    for (size_t i = 0; i < ids.size(); ++i)
      m.eos_ids.push_back(r.integer_value(ids[i], key + "[" + std::to_string(i) + "]", 0, m.vocab_size - 1));
  }
  if (d.contains(k::kKvCacheBytes)) r.integer(d, k::kDecode, k::kKvCacheBytes, 1, int64_t(1) << 62);
  if (!j.contains(k::kChat)) return;
  const Json& chat = r.object(j, "", k::kChat);
  chat_text(r, chat, k::kChat, k::kChatTemplate);
  const Json& specials = r.object(chat, k::kChat, k::kChatSpecialTokens);
  const std::string skey = Reader::join(k::kChat, k::kChatSpecialTokens);
  for (auto it = specials.begin(); it != specials.end(); ++it) chat_text(r, specials, skey, it.key());
  m.chat.template_present = true;
  if (!chat.contains(k::kChatParts)) return;  // a template only Python can render
  const std::string pkey = Reader::join(k::kChat, k::kChatParts);
  const Json& parts = r.object(chat, k::kChat, k::kChatParts);
  m.chat.default_system = chat_text(r, parts, pkey, k::kChatDefaultSystem);
  m.chat.generation_prompt = chat_text(r, parts, pkey, k::kChatGenerationPrompt);
  const std::string rkey = Reader::join(pkey, k::kChatRoles);
  const Json& roles = r.object(parts, pkey, k::kChatRoles);
  for (const std::string& role : chat_roles()) {
    const Json& rec = r.object(roles, rkey, role);
    const std::string key = Reader::join(rkey, role);
    m.chat.roles[role] = {chat_text(r, rec, key, k::kChatPrefix), chat_text(r, rec, key, k::kChatSuffix)};
  }
  m.chat.present = true;
}

}  // namespace

void verify_file(const FileRecord& r) {
  std::unique_ptr<char, decltype(&std::free)> root(realpath(r.root.c_str(), nullptr), &std::free);
  std::unique_ptr<char, decltype(&std::free)> path(realpath(r.path.c_str(), nullptr), &std::free);
  if (!root || !path) throw std::runtime_error("missing artifact file " + r.path);
  if (std::string(path.get()).rfind(std::string(root.get()) + "/", 0) != 0)
    throw std::runtime_error(r.root + ": manifest names a file outside the artifact folder: " + r.name);
  std::ifstream probe(r.path, std::ios::binary | std::ios::ate);
  if (!probe) throw std::runtime_error("missing artifact file " + r.path);
  const uint64_t size = uint64_t(probe.tellg());
  if (size != r.bytes)
    throw std::runtime_error("artifact " + r.path + " has " + std::to_string(size) + " bytes, manifest says " +
                             std::to_string(r.bytes) + " (truncated or replaced?)");
  if (sha256_file_hex(r.path) != r.sha256)
    throw std::runtime_error("artifact " + r.path + " does not match its sha256 in the manifest (corrupted or replaced)");
}

size_t Manifest::clip_numel() const {
  size_t n = 1;
  for (int d : clip_shape) n *= size_t(d);  // bounded by load_manifest's tensor_bytes check
  return n;
}

Manifest load_manifest(const std::string& folder) {
  namespace mod = schema::module;
  namespace ep = schema::entry;
  Manifest m;
  m.root = folder;
  const std::string path = folder + "/" + schema::kManifestFile;
  Json j;
  try {
    j = read_json_file(path, limit::kManifestBytes, limit::kDepth);
  } catch (const std::runtime_error& e) {
    throw std::runtime_error(std::string("manifest: ") + e.what());
  }
  Reader r(path);
  if (!j.is_object() || j.value(k::kFormat, Json()) != schema::kFormat)
    throw std::runtime_error(path + " is not an atom-deploy manifest");
  check_width(j, r);
  if (j.value(k::kFormatVersion, Json()) != schema::kFormatVersion)
    throw std::runtime_error(path + " has manifest format " + j.value(k::kFormatVersion, Json()).dump() +
                             "; this runner reads format " + std::to_string(schema::kFormatVersion) +
                             ": re-export with this kit");
  m.backend = r.text(j, "", k::kBackend);
  if (m.backend != schema::kBackend)
    r.fail(k::kBackend, "is " + shorten(m.backend) + "; this runner needs " + schema::kBackend);

  const Json& d = r.object(j, "", k::kDecode);
  m.decode_steps = int(r.integer(d, k::kDecode, k::kDecodeSteps));
  m.max_context = int(r.integer(d, k::kDecode, k::kMaxContext));
  m.max_batch = int(r.integer(d, k::kDecode, k::kMaxBatch));
  m.beam_width = int(r.integer(d, k::kDecode, k::kBeamWidth));
  m.num_visual_tokens = int(r.integer(d, k::kDecode, k::kNumVisualTokens));
  m.vocab_size = int(r.integer(d, k::kDecode, k::kVocabSize));
  m.dim = int(r.integer(d, k::kDecode, k::kDim));
  m.bos_id = r.integer(d, k::kDecode, k::kBosId, 0, m.vocab_size - 1);
  m.eos_id = r.integer(d, k::kDecode, k::kEosId, 0, m.vocab_size - 1);
  m.pad_id = r.integer(d, k::kDecode, k::kPadId, 0, m.vocab_size - 1);
  read_conventions(r, d, j, m);
  if (m.beam_width > m.max_batch)
    r.fail(Reader::join(k::kDecode, k::kBeamWidth), "(" + std::to_string(m.beam_width) + ") exceeds decode.max_batch (" +
                                                         std::to_string(m.max_batch) + ")");

  const Json& clip = r.object(j, "", k::kClip);
  const std::string skey = Reader::join(k::kClip, k::kShape);
  std::vector<int64_t> clip_shape = r.shape(r.list(clip, k::kClip, k::kShape), skey, false);
  r.tensor_bytes(clip_shape, skey);
  m.clip_shape.assign(clip_shape.begin(), clip_shape.end());

  const Json& toks = r.object(j, "", k::kTokenizers);
  for (const char* name : {schema::tokenizer::kDecoder, schema::tokenizer::kMiniLM}) {
    const std::string key = Reader::join(k::kTokenizers, name);
    m.tokenizer_records.push_back(file_record(r, r.object(toks, k::kTokenizers, name), key, folder));
  }
  m.decoder_tokenizer = m.tokenizer_records[0].path;
  m.minilm_tokenizer = m.tokenizer_records[1].path;
  m.minilm_max_seq = int(r.integer(toks[schema::tokenizer::kMiniLM], Reader::join(k::kTokenizers, schema::tokenizer::kMiniLM),
                                   k::kMaxSeqLength));

  const Json& mods = r.object(j, "", k::kModules);
  std::vector<std::string> paths;
  const Json *encoder = nullptr, *decoder = nullptr, *minilm = nullptr;
  m.encoder_records = read_module(r, mods, mod::kVideoEncoder, {ep::kForward}, folder, &paths, &encoder).records;
  m.decoder_records =
      read_module(r, mods, mod::kDecoder, {ep::kTokenEmbedding, ep::kTextDecoder}, folder, &paths, &decoder).records;
  m.minilm_records = read_module(r, mods, mod::kMiniLM, {ep::kForward}, folder, &paths, &minilm).records;
  m.encoder_file = paths[0];
  m.decoder_file = paths[2];
  if (paths[1] != paths[2])
    r.fail("modules.decoder.entry_points", "name two files; this runner needs both entry points in one program");
  m.minilm_file = paths[3];

  // An encoder and a decoder from different models: the prefix [1, N_vis, D] must be what
  // the decoder takes (Python: atom_runner/signature.py).
  const Json& prefix = (*encoder)[k::kEntryPoints][ep::kForward][k::kOutputs][0][k::kShape];
  const Json& embeds = (*decoder)[k::kEntryPoints][ep::kTextDecoder][k::kInputs][0][k::kShape];
  if (prefix.size() < 2 || prefix.back() != m.dim || prefix[prefix.size() - 2] != m.num_visual_tokens)
    r.fail("modules.video_encoder.entry_points.forward.outputs[0].shape",
           prefix.dump() + " does not give decode.num_visual_tokens x decode.dim (" +
               std::to_string(m.num_visual_tokens) + " x " + std::to_string(m.dim) + "): encoder from another model?");
  if (embeds.back() != m.dim)
    r.fail("modules.decoder.entry_points.text_decoder.inputs[0].shape",
           embeds.dump() + " does not end in decode.dim (" + std::to_string(m.dim) + ")");

  const std::string kv_key = "modules.decoder.kv_cache";
  const Json& kv = r.object(*decoder, "modules.decoder", k::kKvCache);
  m.kv_style = r.text(kv, kv_key, k::kKvStyle);
  if (m.kv_style != schema::kv_style::kInPlace)
    r.fail(Reader::join(kv_key, k::kKvStyle), "is " + shorten(m.kv_style) + "; this runner needs " +
                                                   schema::kv_style::kInPlace);
  r.tensor_bytes(r.shape(r.list(kv, kv_key, k::kShape), Reader::join(kv_key, k::kShape), false),
                 Reader::join(kv_key, k::kShape));

  const std::string in_key = "modules.minilm.entry_points.forward.inputs[0].dynamic";
  const Json& dyn = (*minilm)[k::kEntryPoints][ep::kForward][k::kInputs][0][k::kDynamic];
  if (!dyn.contains("0")) r.fail(in_key, "has no batch axis \"0\"");
  m.minilm_max_batch = int(r.integer(dyn["0"], in_key + ".0", k::kMax));
  return m;
}

}  // namespace atom
