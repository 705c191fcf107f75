// Captions over many clips: clips decoded in batches that share decode steps, with the
// encoder a batch ahead on its own thread (encode/decode overlap), and the timings that show
// how much of the encoding the overlap hid.
#pragma once
#include <string>
#include <vector>

#include "json.h"
#include "runner.h"

namespace atom {

struct CaptionTimings {
  double wall = 0, encode = 0, decode = 0, encode_wait = 0;
};

// Overlap: the encoder works on batch i+1 on a std::thread while the decoder works on batch i.
// batch: clips decoded together, 1 .. clips_per_batch(beam); 0 means the most (1 gives the
// first caption soonest, and is the one-at-a-time baseline of the batching measurements).
std::vector<Decoded> caption_clips(Runner& r, const std::vector<std::string>& clips, int beam, bool overlap,
                                   CaptionTimings& t, int batch = 0);

// {"overlap", "wall_s", "encode_s", "decode_s", "encode_wait_s", "hidden_s", "overlap_fraction"}
Json timings_json(const CaptionTimings& t, bool overlap);

// {"captions": [{"clip", "tokens", "text"}, ...], "timings": timings_json}
Json caption_json(const std::vector<std::string>& clips, const std::vector<Decoded>& caps, const CaptionTimings& t,
                  bool overlap);

}  // namespace atom
