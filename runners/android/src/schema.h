// Manifest key names, module and method names, and the limits on what a manifest may ask
// for: defined once for the C++ runner, mirroring runners/python/atom_runner/schema.py.
#pragma once
#include <cstdint>

namespace atom::schema {

inline constexpr const char* kManifestFile = "manifest.json";
inline constexpr const char* kFormat = "atom-deploy-manifest";
inline constexpr int kFormatVersion = 3;
inline constexpr const char* kBackend = "executorch";  // the only backend this runner runs

namespace key {
inline constexpr const char* kFormat = "format";
inline constexpr const char* kFormatVersion = "format_version";
inline constexpr const char* kBackend = "backend";
inline constexpr const char* kDecode = "decode";
inline constexpr const char* kClip = "clip";
inline constexpr const char* kTokenizers = "tokenizers";
inline constexpr const char* kModules = "modules";
inline constexpr const char* kDecodeSteps = "decode_steps";
inline constexpr const char* kMaxContext = "max_context";
inline constexpr const char* kMaxBatch = "max_batch";
inline constexpr const char* kBeamWidth = "beam_width";
inline constexpr const char* kBosId = "bos_id";
inline constexpr const char* kEosId = "eos_id";
inline constexpr const char* kPadId = "pad_id";
// The checkpoint's conventions (issue 23); optional: absent means BOS first and [eos_id].
inline constexpr const char* kAddBos = "add_bos";
inline constexpr const char* kEosIds = "eos_ids";
inline constexpr const char* kKvCacheBytes = "kv_cache_bytes";
inline constexpr const char* kChat = "chat";  // optional: only a checkpoint with a chat template
inline constexpr const char* kChatTemplate = "template";
inline constexpr const char* kChatSpecialTokens = "special_tokens";
inline constexpr const char* kChatParts = "parts";
inline constexpr const char* kChatDefaultSystem = "default_system";
inline constexpr const char* kChatRoles = "roles";
inline constexpr const char* kChatPrefix = "prefix";
inline constexpr const char* kChatSuffix = "suffix";
inline constexpr const char* kChatGenerationPrompt = "generation_prompt";
inline constexpr const char* kNumVisualTokens = "num_visual_tokens";
inline constexpr const char* kVocabSize = "vocab_size";
inline constexpr const char* kDim = "dim";
inline constexpr const char* kShape = "shape";
inline constexpr const char* kFile = "file";
inline constexpr const char* kFiles = "files";
inline constexpr const char* kSha256 = "sha256";
inline constexpr const char* kBytes = "bytes";
inline constexpr const char* kMaxSeqLength = "max_seq_length";
inline constexpr const char* kEntryPoints = "entry_points";
inline constexpr const char* kInputs = "inputs";
inline constexpr const char* kOutputs = "outputs";
inline constexpr const char* kName = "name";
inline constexpr const char* kDtype = "dtype";
inline constexpr const char* kDynamic = "dynamic";
inline constexpr const char* kMin = "min";
inline constexpr const char* kMax = "max";
inline constexpr const char* kKvCache = "kv_cache";
inline constexpr const char* kKvStyle = "style";
}  // namespace key

namespace module {
inline constexpr const char* kVideoEncoder = "video_encoder";
inline constexpr const char* kDecoder = "decoder";
inline constexpr const char* kMiniLM = "minilm";
}  // namespace module

namespace entry {
inline constexpr const char* kForward = "forward";
inline constexpr const char* kTokenEmbedding = "token_embedding";
inline constexpr const char* kTextDecoder = "text_decoder";
}  // namespace entry

namespace tokenizer {
inline constexpr const char* kDecoder = "decoder";
inline constexpr const char* kMiniLM = "minilm";
}  // namespace tokenizer

namespace kv_style {
inline constexpr const char* kInPlace = "in_place";
inline constexpr const char* kExplicitIO = "explicit_io";
inline constexpr const char* kRunnerHeld = "runner_held";
}  // namespace kv_style

// Limit in schema.py: far above any real export, there so a hostile manifest gets one line.
namespace limit {
inline constexpr uint64_t kManifestBytes = 1u << 20;
inline constexpr uint64_t kTokenizerBytes = 256u << 20;  // a tokenizer.json (Llama 3's is 9 MB)
inline constexpr int kDepth = 32;
inline constexpr uint64_t kItems = 4096;  // in any one manifest object or array
inline constexpr uint64_t kNameChars = 255;
inline constexpr int64_t kDim = 2147483647;  // any size, id or count
inline constexpr uint64_t kTensorBytes = uint64_t(1) << 34;  // one clip or KV buffer as float32
inline constexpr uint64_t kRank = 8;
inline constexpr uint64_t kEosIds = 64;         // ids in decode.eos_ids
inline constexpr uint64_t kChatBytes = 1u << 16;  // one chat string as UTF-8
}  // namespace limit

}  // namespace atom::schema
