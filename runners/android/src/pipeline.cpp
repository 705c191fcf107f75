#include "pipeline.h"

#include <algorithm>

#include "captioning.h"
#include "ranking.h"
#include "task_formats.h"
#include "stopwatch.h"
#include "task_json.h"

namespace atom {

Json pipeline_json(Runner& r, const std::vector<std::string>& clips, const std::string& prompt, int beam, size_t top,
                   bool overlap) {
  auto t0 = Clock::now();
  CaptionTimings ct;
  std::vector<Decoded> caps = caption_clips(r, clips, beam, overlap, ct);
  auto s = Clock::now();
  auto ranked = rank_captions(r, caps, prompt, top);
  double embed_s = seconds_since(s);
  std::vector<std::string> top_captions;
  for (const auto& [clip, score] : ranked) top_captions.push_back(caps[clip].text);
  std::string script_prompt = assembly_prompt(top_captions, prompt);
  // As in Python: at least decode_steps, and all the room the prompt leaves.
  const auto& m = r.manifest();
  int prompt_len = int(r.tokenizer().encode(script_prompt).size());
  int steps = std::max(m.decode_steps, m.max_context - 1 - prompt_len);
  s = Clock::now();
  Decoded script = r.generate(script_prompt, 1, steps);  // greedy, as the Python pipelines: --beam is for captions
  double gen_s = seconds_since(s);
  Json captions = Json::array(), ranking = Json::array();
  for (const Decoded& c : caps) captions.push_back(c.text);
  for (const auto& [clip, score] : ranked) ranking.push_back({{"clip", clip}, {"score", json_number(score)}});
  return {{"captions", captions},
          {"ranked", ranking},
          {"script", decoded_json(script)},
          {"timings",
           {{"caption", timings_json(ct, overlap)},
            {"embed_rank_s", json_number(embed_s)},
            {"generate_s", json_number(gen_s)},
            {"total_s", json_number(seconds_since(t0))}}}};
}

}  // namespace atom
