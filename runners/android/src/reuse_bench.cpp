#include "reuse_bench.h"

#include <algorithm>
#include <fstream>
#include <map>
#include <memory>
#include <stdexcept>

#include "captioning.h"
#include "json.h"
#include "process_memory.h"
#include "ranking.h"
#include "runner.h"
#include "stopwatch.h"
#include "task_formats.h"

namespace atom {

namespace {

constexpr size_t kTop = 3;  // clips the script is written from, as in the Python bench

// Stage timings and per-phase memory peaks. A memory phase first resets the kernel's
// high-water mark (clear_refs "5"), so "peak during load" and "peak during the run" are
// really separate; where the kernel refuses, the peak is the process's peak so far.
struct Meter {
  std::map<std::string, double> seconds, peak_mb;
  std::map<std::string, int> loads;

  template <class F>
  void phase(const std::string& stage, const std::string& memory, F&& body) {
    if (!memory.empty()) std::ofstream("/proc/self/clear_refs") << "5";
    auto t0 = Clock::now();
    body();
    seconds[stage] += seconds_since(t0);
    if (!memory.empty()) peak_mb[memory] = std::max(peak_mb[memory], peak_rss_kb() / 1024.0);
  }
};

std::vector<size_t> top_clips(Runner& minilm, const std::vector<Decoded>& captions, const std::string& prompt) {
  std::vector<size_t> top;
  for (const auto& [clip, score] : rank_captions(minilm, captions, prompt, kTop)) top.push_back(clip);
  return top;
}

std::string script_prompt(const std::vector<Decoded>& captions, const std::vector<size_t>& top, const std::string& prompt) {
  std::vector<std::string> ranked;
  for (size_t i : top) ranked.push_back(captions[i].text);
  return assembly_prompt(ranked, prompt);
}

struct Outputs {
  std::vector<Decoded> captions;
  std::vector<size_t> top;
  Decoded script;
};

Outputs no_reuse(const std::string& artifacts, const std::vector<std::string>& clips, const std::string& prompt,
                 int beam, Meter& m) {
  Outputs out;
  std::unique_ptr<Runner> video;
  m.phase("load", "load", [&] { video = std::make_unique<Runner>(artifacts, kEncoder | kDecoder); });
  m.loads["video_encoder"]++, m.loads["decoder"]++;
  const int steps = video->manifest().decode_steps;
  m.phase("captioning", "run", [&] {
    for (const auto& clip : clips) {
      std::vector<float> prefix;
      m.phase("encode", "", [&] { prefix = video->encode(video->read_clip(clip)); });
      m.phase("caption", "", [&] { out.captions.push_back(video->decode({}, prefix, beam, steps)); });
    }
  });
  video.reset();
  std::unique_ptr<Runner> index;
  m.phase("load", "load", [&] { index = std::make_unique<Runner>(artifacts, kMiniLM); });
  m.loads["minilm"]++;
  m.phase("index", "run", [&] { out.top = top_clips(*index, out.captions, prompt); });
  m.seconds["retrieval_done"] = m.seconds["load"] + m.seconds["captioning"] + m.seconds["index"];
  index.reset();
  std::unique_ptr<Runner> script;  // a separate script model: the same decoder file, loaded again
  m.phase("load", "load", [&] { script = std::make_unique<Runner>(artifacts, kDecoder); });
  m.loads["decoder"]++;
  m.phase("script", "run", [&] { out.script = script->generate(script_prompt(out.captions, out.top, prompt), 1, steps); });
  return out;
}

Outputs atom_variant(const std::string& artifacts, const std::vector<std::string>& clips, const std::string& prompt,
                     int beam, Meter& m, CaptionTimings& overlapped) {
  Outputs out;
  std::unique_ptr<Runner> r;
  m.phase("load", "load", [&] { r = std::make_unique<Runner>(artifacts); });
  for (const char* name : {"video_encoder", "decoder", "minilm"}) m.loads[name]++;
  m.phase("captioning", "run", [&] { out.captions = caption_clips(*r, clips, beam, true, overlapped); });
  m.phase("index", "run", [&] { out.top = top_clips(*r, out.captions, prompt); });
  m.seconds["retrieval_done"] = m.seconds["load"] + m.seconds["captioning"] + m.seconds["index"];
  m.phase("script", "run", [&] {
    out.script = r->generate(script_prompt(out.captions, out.top, prompt), 1, r->manifest().decode_steps);
  });
  return out;
}

template <class V>
Json numbers(const std::map<std::string, V>& values) {
  Json out = Json::object();
  for (const auto& [key, value] : values) out[key] = json_number(double(value));
  return out;
}

}  // namespace

std::string reuse_variant_json(const std::string& artifacts, const std::string& variant,
                               const std::vector<std::string>& clips, const std::string& prompt, int beam) {
  if (clips.empty()) throw std::invalid_argument("reuse-bench needs at least one clip");
  if (prompt.empty()) throw std::invalid_argument("reuse-bench needs --prompt");
  Meter m;
  CaptionTimings overlapped;
  auto t0 = Clock::now();
  Outputs out;
  if (variant == "no_reuse") {
    out = no_reuse(artifacts, clips, prompt, beam, m);
  } else if (variant == "atom") {
    out = atom_variant(artifacts, clips, prompt, beam, m, overlapped);
  } else {
    throw std::invalid_argument("--variant must be no_reuse or atom, got " + variant);
  }
  m.seconds["assembly_done"] = seconds_since(t0);
  Json captions = Json::array();
  for (const Decoded& c : out.captions) captions.push_back(c.text);
  Json j = {{"variant", variant},
            {"backend", "executorch-cpp"},
            {"clips", clips.size()},
            {"beam", beam},
            {"seconds", numbers(m.seconds)},
            {"peak_mb", numbers(m.peak_mb)},
            {"loads", m.loads},
            {"outputs", {{"captions", captions}, {"top", out.top}, {"script", out.script.text}}}};
  if (variant == "atom")  // what the overlap hid: encode and decode summed inside the overlapped stage
    j["overlap"] = {{"encode_s", json_number(overlapped.encode)},
                    {"decode_s", json_number(overlapped.decode)},
                    {"wall_s", json_number(overlapped.wall)}};
  return json_dump(j);
}

}  // namespace atom
