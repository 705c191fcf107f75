// Tasks built from the Runner: captions over many clips (with encode/decode overlap),
// cosine search, the full pipeline, and the benchmark. Each returns a JSON string.
#pragma once
#include <string>
#include <vector>

#include "runner.h"

namespace atom {

struct CaptionTimings {
  double wall = 0, encode = 0, decode = 0, encode_wait = 0;
};

// Overlap: the encoder works on clip i+1 on a std::thread while the decoder works on clip i.
std::vector<Decoded> caption_clips(Runner& r, const std::vector<std::string>& clips, int beam, bool overlap,
                                   CaptionTimings& t);

std::string caption_json(const std::vector<std::string>& clips, const std::vector<Decoded>& caps,
                         const CaptionTimings& t, bool overlap);
std::string embed_json(const std::vector<std::vector<float>>& embs);
// Ranks rows of `index` by dot product with `query` (unit vectors: cosine); stable on ties.
std::vector<std::pair<size_t, double>> rank(const std::vector<std::vector<float>>& index,
                                            const std::vector<float>& query, size_t top);
// MiniLM-embeds the captions and the prompt, then ranks the captions against the prompt.
std::vector<std::pair<size_t, double>> rank_captions(Runner& r, const std::vector<Decoded>& captions,
                                                    const std::string& prompt, size_t top);
std::vector<std::vector<float>> read_embeddings(const std::string& path, size_t dim);
// Whitespace and control characters runs become one space: the task format is line-based, so a
// caption or request becomes one line (Python's clean_caption).
std::string one_line(const std::string& text);
// The script prompt of video assembly: ranked captions, the request, the cue.
std::string assembly_prompt(const std::vector<std::string>& ranked_captions, const std::string& request);
std::string pipeline_json(Runner& r, const std::vector<std::string>& clips, const std::string& prompt, int beam,
                          size_t top, bool overlap);
std::string bench_json(const std::string& artifacts, const std::vector<std::string>& clips, int beam, int iters);

double peak_rss_kb();  // VmHWM from /proc/self/status
std::string decoded_json(const Decoded& d);
std::string num(double v);  // shortest round-trip-ish JSON number
std::string floats_json(const std::vector<float>& v);

}  // namespace atom
